"""Remove a directory tree of any depth and any path length.

A build step can make directories thousands deep, or paths longer than PATH_MAX:
``shutil.rmtree`` (recursive in Python 3.11) then ends in RecursionError, and anything
that names files by their full path in ENAMETOOLONG. Here the walk holds one directory
fd at a time, moves down by name and back up through ``..`` (nothing else changes the
tree meanwhile: the step has ended), and never follows a symlink.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _clear(fd: int) -> list[str]:
    """Unlink every non-directory in the directory ``fd``; the names of its directories."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o700)  # read-only directories inside: make them ours to empty
    dirs: list[str] = []
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return dirs
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
        except OSError:
            continue
    return dirs


def remove_deep(path: Path) -> None:
    """Remove ``path`` (a directory tree, a file or a link); best effort, never raises
    for what cannot be removed."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    try:
        fd = os.open(path, _DIR)
    except OSError:
        return
    pending = [_clear(fd)]  # per level: subdirectories still to remove
    names: list[str] = []  # the way down from ``path``
    try:
        while True:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError:
                    continue
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(_clear(fd))
                continue
            pending.pop()
            if not names:
                break
            name = names.pop()
            parent = os.open("..", _DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)
