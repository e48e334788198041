"""A lock file is never opened through a link: a link planted where rootseed locks (in the
cache, which is hostile) is refused, and what it points to on the host is neither created
nor truncated (``filelock`` opened lock files with O_TRUNC, following links)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import Canaries
from rootseed.filelocks import FileLock
from rootseed.safefs import Problem, UnsafePath


def test_a_link_in_place_of_a_lock_file_is_refused(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    locks = tmp_path / "cache" / "locks"
    locks.mkdir(parents=True)
    (locks / "a.lock").symlink_to(host.public)
    (locks / "b.lock").symlink_to(host.dir / "created-by-lock")
    for name in ("a.lock", "b.lock"):
        with pytest.raises(UnsafePath) as e, FileLock(locks / name):
            pass
        assert e.value.problem is Problem.LINK
    assert not (host.dir / "created-by-lock").exists()
    host.assert_unchanged()
