"""A lock file is locked only where the cache's own check found its place, and only as a
regular file.

Every lock first clears its place with :func:`rootseed.safefs.lock_file` (its
directory reached from the cache root without a link, anything but a regular file at the
name removed), then locks. Someone who can write the cache (hostile, per the trust model)
and acts between the two can swap the lock's directory (``<cache>/locks``) for a link to
a host directory, or plant a FIFO, socket or directory at the name. Opened by its full
path, the lock file was then created in the host directory, and a FIFO was locked as if
it were the lock file.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from hostile import Canaries
from rootseed import safefs
from rootseed.engine.maintenance import _busy
from rootseed.fetch.cache import SourceCache
from rootseed.safefs import Problem, UnsafePath

DIGEST = "cd" * 32


def _race(monkeypatch: pytest.MonkeyPatch, attack: Callable[[Path, Path], None]) -> None:
    """The attacker acts right after the lock's ``lock_file`` check."""
    real = safefs.lock_file

    def lock_file(root: Path, path: Path) -> Path:
        found = real(root, path)
        attack(Path(root), Path(path))
        return found

    monkeypatch.setattr(safefs, "lock_file", lock_file)


def test_a_lock_directory_swapped_for_a_link_creates_nothing_on_the_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    sources = SourceCache(cache)

    def swap(root: Path, path: Path) -> None:
        os.rename(path.parent, root / "locks-aside")
        path.parent.symlink_to(host.subdir)

    _race(monkeypatch, swap)
    with pytest.raises(UnsafePath) as e, sources.locked(DIGEST):
        pass
    assert e.value.problem is Problem.LINK
    assert not (host.subdir / f"source-{DIGEST}.lock").exists()
    host.assert_unchanged()


def test_a_work_directory_swapped_for_a_link_creates_nothing_on_the_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cache prune``'s look for running builds (``<cache>/work/*.lock``)."""
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    (cache / "work").mkdir(parents=True, mode=0o700)
    (cache / "work" / "0123.lock").write_bytes(b"")

    def swap(root: Path, path: Path) -> None:
        os.rename(path.parent, root / "work-aside")
        path.parent.symlink_to(host.subdir)

    _race(monkeypatch, swap)
    with pytest.raises(UnsafePath):
        _busy(cache)
    assert not (host.subdir / "0123.lock").exists()
    host.assert_unchanged()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    here = os.getcwd()
    os.chdir(path.parent)  # a socket's path is bounded (108 bytes): bound by its name
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(path.name)
        s.close()
    finally:
        os.chdir(here)


@pytest.mark.parametrize("plant", [_fifo, _socket, Path.mkdir],
                         ids=["fifo", "socket", "directory"])
def test_a_special_file_planted_at_the_lock_is_refused_never_locked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        plant: Callable[[Path], None]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    sources = SourceCache(cache)
    _race(monkeypatch, lambda _root, path: plant(path))
    with pytest.raises(UnsafePath) as e, sources.locked(DIGEST):
        pytest.fail("locked what the attacker planted")
    assert e.value.problem is Problem.NOT_REGULAR
