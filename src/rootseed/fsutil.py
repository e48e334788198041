"""Two file primitives everything else relies on: hash a file, write a file atomically.

Written here rather than taken from a library because they are the trust boundary of
every cache, output and record: a reader either sees the old file or the complete new
one, never a torn write, and digests are computed one way everywhere.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError
from rootseed.names import check_name

CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


#: Mode of the cache and out roots: images keep their setuid/setgid bits (as root's files
#: when rootseed runs as root), so no other local user may even traverse these trees.
PRIVATE_MODE = 0o700


def private_dir(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) if needed and make it private (0700) to its owner.

    An existing directory owned by someone else is refused: another user could change
    what rootseed reads from it, or reach setuid files in it.
    """
    try:
        path.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as e:  # a parent is a file, a read-only or virtual file system, ...
        raise RootseedError(f"cannot create the {what} {path}: {e.strerror or e}",
                            hint=f"pass a {what} in a writable place you own",
                            kind=ErrorKind.USAGE, file=str(path)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise RootseedError(f"{what} {path} is not a directory", kind=ErrorKind.USAGE,
                            file=str(path))
    if st.st_uid != os.geteuid():
        raise RootseedError(f"{what} {path} belongs to uid {st.st_uid}, not to you "
                            f"(uid {os.geteuid()})",
                            hint=f"use a {what} of your own (rootseed keeps it private: "
                                 "0700)", kind=ErrorKind.REFUSED, file=str(path))
    if st.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
        raise RootseedError(f"{what} {path} is a shared directory (world-writable or "
                            "sticky, like /tmp)", hint=f"use a subdirectory of it as the {what}",
                            kind=ErrorKind.REFUSED, file=str(path))
    if stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
        os.chmod(path, PRIVATE_MODE)
    return path


class SpecialFileError(RootseedError):
    """A FIFO, socket or device node where rootseed only takes files, dirs and symlinks."""

    kind = ErrorKind.REFUSED


def special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None


def _refuse_special(path: Path, mode: int) -> None:
    kind = special_kind(mode) or "not a regular file"
    raise SpecialFileError(
        f"{path} is {kind}: a build context may hold only regular files, directories and "
        "symlinks", hint="remove it from the package directory (rootseed never reads or "
                         "copies special files: reading a FIFO would block forever)")


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file (symlink: of its target text), sorted.

    A FIFO, socket or device node anywhere in the tree is refused (SpecialFileError):
    files are opened with O_NONBLOCK | O_NOFOLLOW and checked with fstat, so nothing can
    make this block or read through a link."""
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(
                os.path.join(dirpath, d))]):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            check_name(root, rel)  # a non-UTF-8 name: one clear problem of this package
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                hashes[rel] = hashlib.sha256(b"symlink:" + os.readlink(path).encode()).hexdigest()
                continue
            if not stat.S_ISREG(st.st_mode):
                _refuse_special(path, st.st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    _refuse_special(path, os.fstat(fd).st_mode)
                h = hashlib.sha256()
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                hashes[rel] = h.hexdigest()
    return dict(sorted(hashes.items()))


def mode_bits(root: Path, rel: str) -> int:
    path = root / rel
    return 0 if path.is_symlink() else stat.S_IMODE(path.stat().st_mode) & 0o111
