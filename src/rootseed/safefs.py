"""Files under a directory rootseed does not trust: the cache, ``out/``, an image layout.

Whoever wrote such a directory may have planted a symbolic link (to a host file, to
``/dev/zero``, to an endless ``/proc`` file), a FIFO or a huge file where rootseed expects
its own record. Every open, create, rename and removal below such a *root* goes through
this module, which walks from the root one component at a time with ``O_NOFOLLOW`` and
works relative to directory descriptors, so:

* no link is followed anywhere below the root (on any component, not only the last);
* nothing blocks: files are opened ``O_NONBLOCK`` and must be regular (``fstat``);
* reads are bounded (the caller says how much a record may hold);
* new files are made under a unique temporary name with ``O_EXCL`` and renamed into
  place, so a planted temp file or link is never written through;
* a removal renames the entry out of the way, then removes it through descriptors.

The root itself is the caller's to check (the cache and ``out/`` roots are checked by
:func:`rootseed.fsutil.private_dir`; ``--out`` may not be a link). A problem is a
:class:`UnsafePath` (a :class:`RootseedError`), a missing entry ``FileNotFoundError``.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rootseed.errors import ErrorKind, RootseedError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CHUNK = 1 << 20


class Problem(enum.Enum):
    LINK = "is a symbolic link"
    NOT_A_DIRECTORY = "is not a directory"
    NOT_REGULAR = "is not a regular file"
    TOO_LARGE = "is larger than it may be"
    OUTSIDE = "is not inside the directory it belongs to"


class UnsafePath(RootseedError):
    """A path below an untrusted root that rootseed refuses to use as it is (``--json``
    says which ``path`` and its ``problem``, the name of a :class:`Problem`)."""

    kind = ErrorKind.REFUSED

    def __init__(self, path: Path, problem: Problem, detail: str = "") -> None:
        self.path = path
        self.problem = problem
        text = f"{path} {problem.value}" + (f" ({detail})" if detail else "")
        super().__init__(text, hint="it was not written by rootseed: remove it (rootseed "
                                    "never follows links or reads special files there)")

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "path": str(self.path), "problem": self.problem.name}


def kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _parts(root: Path, path: Path) -> tuple[str, ...]:
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        raise UnsafePath(Path(path), Problem.OUTSIDE, str(root)) from None
    parts = rel.parts
    if any(p in ("..", "") for p in parts):
        raise UnsafePath(Path(path), Problem.OUTSIDE, str(root))
    return parts


def _step(dir_fd: int, name: str, where: Path, create: bool, mode: int) -> int:
    """Open directory ``name`` of ``dir_fd`` without following a link (made if asked)."""
    for attempt in (0, 1):
        try:
            return os.open(name, _DIR, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create or attempt:
                raise
            with suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=dir_fd)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePath(where, Problem.LINK) from None
            raise UnsafePath(where, Problem.NOT_A_DIRECTORY, kind(st.st_mode)) from None
    raise AssertionError("unreachable")


def open_dir(root: Path, path: Path | None = None, *, create: bool = False,
             mode: int = 0o700) -> int:
    """A descriptor of directory ``path`` below ``root`` (``root`` itself when None),
    reached without following any link below ``root``; missing ones made when ``create``.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = Path(root)
    try:
        for part in _parts(root, path) if path is not None else ():
            where = where / part
            nxt = _step(fd, part, where, create, mode)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def parent(root: Path, path: Path, *, create: bool = False,
           mode: int = 0o700) -> Iterator[tuple[int, str]]:
    """(descriptor of ``path``'s directory, ``path``'s name), reached as :func:`open_dir`."""
    path = Path(path)
    if path == Path(root):
        raise UnsafePath(path, Problem.OUTSIDE, f"the root {root} itself")
    _parts(root, path)
    fd = open_dir(root, path.parent, create=create, mode=mode)
    try:
        yield fd, path.name
    finally:
        os.close(fd)


def ensure_dir(root: Path, path: Path, mode: int = 0o700) -> Path:
    """``mkdir -p path`` below ``root``, refusing a link or a non-directory on the way."""
    os.close(open_dir(root, path, create=True, mode=mode))
    return path


def is_dir(path: Path) -> bool:
    """``path`` is a directory itself (not a link to one, not missing)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def lock_file(root: Path, path: Path) -> Path:
    """``path`` (below ``root``) ready to be a lock file: its directory exists and is
    reached without a link, and anything but a regular file in its place (a planted link,
    a FIFO) is removed first, so locking never opens what someone else put there."""
    with parent(root, path, create=True) as (dir_fd, name):
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return Path(path)
        if stat.S_ISDIR(st.st_mode):
            remove_at(dir_fd, name)
        elif not stat.S_ISREG(st.st_mode):
            os.unlink(name, dir_fd=dir_fd)
    return Path(path)


def _open_regular_at(dir_fd: int, name: str, where: Path) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(name, _FILE, dir_fd=dir_fd)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise UnsafePath(where, Problem.LINK) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePath(where, Problem.NOT_REGULAR, kind(st.st_mode))
    os.set_blocking(fd, True)
    return fd, st


def open_regular(root: Path, path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file ``path`` below ``root`` (no link
    followed, no FIFO or device opened for reading) and its ``fstat``."""
    with parent(root, path) as (dir_fd, name):
        return _open_regular_at(dir_fd, name, Path(path))


def read_bytes(root: Path, path: Path, limit: int) -> bytes:
    """The content of the regular file ``path`` below ``root``, at most ``limit`` bytes
    (more is :class:`UnsafePath` ``TOO_LARGE``, whatever ``fstat`` said)."""
    fd, st = open_regular(root, path)
    with os.fdopen(fd, "rb") as f:
        if st.st_size > limit:
            raise UnsafePath(Path(path), Problem.TOO_LARGE, f"{st.st_size} bytes, at most "
                                                            f"{limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafePath(Path(path), Problem.TOO_LARGE, f"more than {limit} bytes")
    return data


def read_json(root: Path, path: Path, limit: int) -> Any:
    """A JSON record below ``root`` (bounded as :func:`read_bytes`); ValueError when it is
    not JSON (or nested too deep)."""
    data = read_bytes(root, path, limit)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, RecursionError) as e:
        raise ValueError(str(e)) from None


def sha256(root: Path, path: Path, limit: int) -> str:
    """Hex sha256 of the regular file ``path`` below ``root``, reading no more than it
    had when opened and at most ``limit`` bytes (a file that keeps growing, or one
    larger than ``limit``, is :class:`UnsafePath` ``TOO_LARGE``)."""
    fd, st = open_regular(root, path)
    if st.st_size > limit:
        os.close(fd)
        raise UnsafePath(Path(path), Problem.TOO_LARGE, f"{st.st_size} bytes, at most {limit}")
    h = hashlib.sha256()
    remaining = st.st_size
    with os.fdopen(fd, "rb") as f:
        while remaining > 0 and (chunk := f.read(min(_CHUNK, remaining))):
            h.update(chunk)
            remaining -= len(chunk)
        if f.read(1):
            raise UnsafePath(Path(path), Problem.TOO_LARGE, "it grew while being read")
    return h.hexdigest()


def _temp_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(6)}.tmp"


def write_atomic(root: Path, path: Path, data: bytes, *, mode: int = 0o644,
                 create: bool = True) -> Path:
    """Write ``data`` to ``path`` below ``root``: a new file under a unique name
    (``O_EXCL``, never through a planted link), then renamed onto ``path``."""
    with parent(root, path, create=create) as (dir_fd, name):
        tmp = _temp_name(name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                os.fchmod(f.fileno(), mode)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    return Path(path)


def create_new(root: Path, path: Path, *, mode: int = 0o644) -> int:
    """A write descriptor of an empty new regular file at ``path`` below ``root`` (a log):
    whatever was there (a file, a planted link) is unlinked first, never written through.
    """
    with parent(root, path, create=True) as (dir_fd, name):
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePath(Path(path), Problem.NOT_REGULAR, "a directory")
            os.unlink(name, dir_fd=dir_fd)
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                       | os.O_CLOEXEC, mode, dir_fd=dir_fd)


def remove(root: Path, path: Path) -> None:
    """Remove ``path`` below ``root`` (a tree, a file or a link: the link itself) without
    following any link: a directory is renamed aside in its own directory, then removed
    through descriptors. Missing: nothing to do."""
    try:
        with parent(root, path) as (dir_fd, name):
            st = os.lstat(name, dir_fd=dir_fd)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
                return
            trash = f".trash-{secrets.token_hex(6)}"
            os.replace(name, trash, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            remove_at(dir_fd, trash)
    except FileNotFoundError:
        return


def _walk(dir_fd: int, rel: str) -> int:
    """Open directory ``rel`` (slash-separated) of ``dir_fd``, following no link."""
    fd = os.dup(dir_fd)
    try:
        for part in rel.split("/"):
            if part:
                nxt = _step(fd, part, Path(rel), False, 0o700)
                os.close(fd)
                fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_at(dir_fd: int, name: str) -> None:
    """Remove the directory ``name`` of ``dir_fd`` and everything in it (read-only
    directories inside included), following no link."""
    def fix(_func: object, p: str, _exc: object) -> None:
        # a read-only directory on the way: make it writable and go again
        for rel in (os.path.dirname(p), p):
            with suppress(OSError):
                fd = _walk(dir_fd, rel)
                try:
                    os.fchmod(fd, 0o700)
                finally:
                    os.close(fd)
        with suppress(OSError):
            if stat.S_ISDIR(os.lstat(p, dir_fd=dir_fd).st_mode):
                shutil.rmtree(p, dir_fd=dir_fd, onerror=fix)
            else:
                os.unlink(p, dir_fd=dir_fd)

    with suppress(OSError):
        top = _walk(dir_fd, name)
        os.fchmod(top, 0o700)
        os.close(top)
    shutil.rmtree(name, dir_fd=dir_fd, onerror=fix)
