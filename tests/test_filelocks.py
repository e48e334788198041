"""rootseed's own lock (:mod:`rootseed.filelocks`): exclusive, non-blocking on request, and
one lock with the ``filelock`` package's on the same file (both ``flock``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import filelock
import pytest

from rootseed.filelocks import FileLock, Timeout


def test_a_held_lock_is_refused_at_once_and_free_after_release(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with FileLock(path), pytest.raises(Timeout), FileLock(path, timeout=0):
        pass
    with FileLock(path, timeout=0):
        pass
    assert path.is_file()  # stays: waiters share its inode


def test_a_waiter_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    order: list[str] = []
    with FileLock(path):
        def wait() -> None:
            with FileLock(path):
                order.append("waiter")
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.2)
        order.append("holder")
    t.join(10)
    assert order == ["holder", "waiter"]


def test_it_excludes_the_filelock_package_and_back(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with filelock.FileLock(str(path)), pytest.raises(Timeout), FileLock(path, timeout=0):
        pass
    with FileLock(path), pytest.raises(filelock.Timeout), \
            filelock.FileLock(str(path), timeout=0):
        pass


def test_only_waiting_or_not_waiting(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileLock(tmp_path / "x.lock", timeout=5)
