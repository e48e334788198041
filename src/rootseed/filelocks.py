"""Advisory locks between rootseed processes: one ``flock(2)`` on a lock file.

What the cache needs of a lock is small: wait for it, or (``timeout=0``) learn that
someone holds it. The ``filelock`` package does that and much more, at ~20 ms of imports
at every start (22 modules: logging, secrets, its Windows and SQLite backends); this
module is the part rootseed uses, with the same calls (``FileLock(path[, timeout=0])`` as a
context manager, :class:`Timeout`). It locks with ``flock`` as ``filelock`` does on Linux,
so the two exclude each other on the same file (tests lock with ``filelock``).

The lock file stays in place on release (waiters share its inode). It is opened without
following a link, and only a regular file is locked (a FIFO, socket or directory planted
there is refused). Given the ``root`` it lies below (the cache), the lock first clears its
place with :func:`rootseed.safefs.lock_file` (anything but a regular file there is
removed), then reaches the directory from ``root`` again as :mod:`rootseed.safefs` does,
one component at a time without a link: a directory swapped for a link after that
clearing cannot make it create a lock file elsewhere.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType

from rootseed import safefs
from rootseed.safefs import Problem, UnsafePath

_OPEN = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


class Timeout(Exception):
    """The lock is held by someone else and the caller would not wait (``timeout=0``)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is locked")
        self.path = path


class FileLock:
    """An exclusive lock on ``path`` while the ``with`` block runs.

    ``timeout``: None waits as long as it takes; 0 raises :class:`Timeout` at once when the
    lock is held (no other value is used, so no other is accepted). ``root``: the
    directory ``path`` lies below (the cache): the place is cleared first, and reached
    from there without a link."""

    def __init__(self, path: str | os.PathLike[str], timeout: float | None = None, *,
                 root: str | os.PathLike[str] | None = None) -> None:
        if timeout not in (None, 0):
            raise ValueError("FileLock waits for ever (timeout=None) or not at all (0)")
        self.path = os.fspath(path)
        self.root = None if root is None else Path(root)
        self.wait = timeout is None
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this FileLock")
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if not self.wait and e.errno in _BUSY:
                raise Timeout(self.path) from None
            raise
        except BaseException:  # Ctrl-C while waiting
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _open(self) -> int:
        try:
            if self.root is None:
                fd = os.open(self.path, _OPEN, 0o644)
            else:
                safefs.lock_file(self.root, Path(self.path))
                with safefs.parent(self.root, Path(self.path), create=True) as (dir_fd, name):
                    fd = os.open(name, _OPEN, 0o644, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePath(Path(self.path), Problem.LINK) from None
            if e.errno in (errno.ENXIO, errno.EISDIR):  # a socket, a directory
                raise UnsafePath(Path(self.path), Problem.NOT_REGULAR) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device planted after the check
            os.close(fd)
            raise UnsafePath(Path(self.path), Problem.NOT_REGULAR, safefs.kind(st.st_mode))
        return fd

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock
