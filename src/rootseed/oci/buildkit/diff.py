"""A layer directory (an overlayfs upper directory) as BuildKit's differ writes it.

BuildKit (v0.26.3) makes a layer from a snapshot's upper directory:
``util/overlay/overlay_linux.go`` ``Changes`` walks the upper directory (Go's
``filepath.Walk``: depth first, names sorted by bytes) and reports each entry as added
(absent below), modified (present below and not the same dirent), or deleted (a 0/0
character device whose name exists below); an entry the same as below is not recorded,
a whiteout of a name that does not exist below is dropped, and an *opaque* directory is
compared with the lower directory instead (adds and deletes). containerd's
``pkg/archive/tar.go`` ``ChangeWriter.HandleChange`` turns each change into tar entries:
parent directories first (``includeParents``, never the root), directories with a
trailing ``/``, a deletion as a ``.wh.<name>`` regular file with mode 0 and mtime 0, a
second path of an inode as a hard link to the first path written, sockets left out, and
a ``security.capability`` attribute as a PAX record. ``rewrite-timestamp`` then clamps
every mtime later than ``SOURCE_DATE_EPOCH`` to it (earlier ones, like the whiteouts'
0, stay).

``mount_points`` are directories runc creates in the root filesystem of a RUN step when
they are missing (``dev``, ``proc``, ``sys``): BuildKit leaves them in the RUN's layer;
rootseed's sandbox removes its own, so they are added here as BuildKit has them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.oci.buildkit.tar import Header, Kind

#: The directories runc creates for its mounts in a RUN step's root filesystem.
RUN_MOUNT_POINTS = ("dev", "proc", "sys")
WHITEOUT_PREFIX = b".wh."
_OPAQUE_KEYS = ("trusted.overlay.opaque", "user.overlay.opaque")
_CAPABILITY = "security.capability"


@dataclass(frozen=True)
class Entry:
    """One tar entry of a layer; ``source`` is the file to read for a regular file."""

    header: Header
    source: Path | None = None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _xattr(path: Path, key: str) -> bytes | None:
    try:
        return os.getxattr(path, key, follow_symlinks=False)
    except OSError:
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: Path) -> bool:
    return any(_xattr(path, key) == b"y" for key in _OPAQUE_KEYS)


def _names(directory: Path) -> list[bytes]:
    return sorted(os.fsencode(e) for e in os.listdir(directory))


def _same_content(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 16), fb.read(1 << 16)
            if ca != cb:
                return False
            if not ca:
                return True


def same_dirent(lower: os.stat_result, upper: os.stat_result, lower_path: Path,
                upper_path: Path) -> bool:
    """BuildKit's ``sameDirent``: mode, owner and rdev equal, capabilities equal, and for
    a non-directory the size and mtime seconds (and, when both mtimes are whole seconds,
    the content or link target)."""
    if (lower.st_dev, lower.st_ino) == (upper.st_dev, upper.st_ino):
        return True
    if (lower.st_mode, lower.st_uid, lower.st_gid, lower.st_rdev) != (
            upper.st_mode, upper.st_uid, upper.st_gid, upper.st_rdev):
        return False
    if _xattr(lower_path, _CAPABILITY) != _xattr(upper_path, _CAPABILITY):
        return False
    if stat.S_ISDIR(lower.st_mode):
        return True
    if lower.st_size != upper.st_size:
        return False
    if lower.st_mtime_ns // 10**9 != upper.st_mtime_ns // 10**9:
        return False
    if lower.st_mtime_ns % 10**9 == 0 and upper.st_mtime_ns % 10**9 == 0:
        if stat.S_ISLNK(lower.st_mode):
            return os.readlink(lower_path) == os.readlink(upper_path)
        if lower.st_size == 0:
            return True
        return _same_content(lower_path, upper_path)
    return lower.st_mtime_ns % 10**9 == upper.st_mtime_ns % 10**9


class _Writer:
    """containerd's ``ChangeWriter`` (entries instead of bytes)."""

    def __init__(self, upper: Path, epoch: int) -> None:
        self.upper = upper
        self.epoch = epoch
        self.added_dirs: set[bytes] = set()
        self.inode_source: dict[tuple[int, int], bytes] = {}
        self.out: list[Entry] = []

    def _parents(self, name: bytes, kind: Kind) -> None:
        trimmed = name.rstrip(b"/")
        parent = trimmed.rpartition(b"/")[0]
        if parent and parent not in self.added_dirs:
            self.added_dirs.add(parent)
            path = self.upper / os.fsdecode(parent)
            self.change(parent, os.stat(path), path)
        if kind is Kind.DIR:
            self.added_dirs.add(trimmed)

    def delete(self, rel: bytes) -> None:
        directory, _, base = rel.rpartition(b"/")
        name = (directory + b"/" if directory else b"") + WHITEOUT_PREFIX + base
        header = Header(name=name, kind=Kind.FILE, mode=0, mtime=0)
        self._parents(header.name, header.kind)
        self.out.append(Entry(header))

    def mount_point(self, rel: bytes) -> None:
        """A directory runc made (0755, root's, made during the step: mtime clamped)."""
        header = Header(name=rel + b"/", kind=Kind.DIR, mode=0o755, mtime=self.epoch)
        self._parents(header.name, header.kind)
        self.out.append(Entry(header))

    def change(self, rel: bytes, st: os.stat_result, path: Path) -> None:
        """An added or modified entry ``rel`` with stat ``st`` (``path``: where it is)."""
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        linkname = b""
        size = 0
        devices = (0, 0)
        if stat.S_ISDIR(mode):
            kind, rel = Kind.DIR, rel + b"/"
        elif stat.S_ISREG(mode):
            kind, size = Kind.FILE, st.st_size
        elif stat.S_ISLNK(mode):
            kind, linkname = Kind.SYMLINK, os.fsencode(os.readlink(path))
        elif stat.S_ISFIFO(mode):
            kind = Kind.FIFO
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = Kind.CHAR if stat.S_ISCHR(mode) else Kind.BLOCK
            devices = (os.major(st.st_rdev), os.minor(st.st_rdev))
        else:
            raise RootseedError(f"cannot put {rel!r} (an unknown file type) into a layer")
        pax: dict[str, bytes] = {}
        if not stat.S_ISLNK(mode):
            capability = _xattr(path, _CAPABILITY)
            if capability:
                pax["SCHILY.xattr." + _CAPABILITY] = capability
        header = Header(name=rel, kind=kind, mode=stat.S_IMODE(mode),
                        mtime=min(max(st.st_mtime_ns // 10**9, 0), self.epoch), size=size,
                        linkname=linkname, devmajor=devices[0], devminor=devices[1], pax=pax)
        source = path if kind is Kind.FILE and size else None
        if kind is not Kind.DIR and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.inode_source.get(key)
            if first is not None:
                header = replace(header, kind=Kind.HARDLINK, linkname=first, size=0)
                source = None
            else:
                self.inode_source[key] = rel
        self._parents(header.name, header.kind)
        self.out.append(Entry(header, source))


def layer_entries(upper: Path, lower: Path | None, *, epoch: int,
                  mount_points: Sequence[str] = ()) -> list[Entry]:
    """The tar entries of layer ``upper`` over the root filesystem ``lower`` (None: an
    empty one), in BuildKit's order, mtimes clamped to ``epoch``."""
    writer = _Writer(upper, epoch)
    extra = {os.fsencode(m) for m in mount_points}
    _walk(writer, upper, lower, b"", extra)
    return writer.out


def _walk(writer: _Writer, upper: Path, lower: Path | None, prefix: bytes,
          extra: set[bytes]) -> None:
    names = _names(upper)
    virtual = [m for m in sorted(extra) if m not in names
               and (lower is None or _lstat(lower / os.fsdecode(m)) is None)]
    for name in sorted([*names, *virtual]):
        rel = prefix + name
        if name not in names:  # a mount point runc would have created
            writer.mount_point(rel)
            continue
        path = upper / os.fsdecode(name)
        st = os.lstat(path)
        below = lower / os.fsdecode(name) if lower is not None else None
        below_st = _lstat(below) if below is not None else None
        if _is_whiteout(st):
            if below_st is not None:
                writer.delete(rel)
            continue
        if below_st is not None:
            assert below is not None
            if not same_dirent(below_st, st, below, path):
                writer.change(rel, st, path)
        else:
            writer.change(rel, st, path)
        if not stat.S_ISDIR(st.st_mode):
            continue
        below_dir = below if below_st is not None and stat.S_ISDIR(below_st.st_mode) else None
        if below_dir is not None and _opaque(path):
            _opaque_walk(writer, path, below_dir, rel + b"/")
        else:
            _walk(writer, path, below_dir, rel + b"/", set())


def _opaque_walk(writer: _Writer, upper: Path, lower: Path, prefix: bytes) -> None:
    """An opaque directory: its entries against the lower directory's (continuity's
    double walk: names only below are deleted, the others added or modified)."""
    names = [n for n in _names(upper) if not _is_whiteout(os.lstat(upper / os.fsdecode(n)))]
    lower_names = _names(lower)
    for name in sorted({*names, *lower_names}):
        rel = prefix + name
        below = lower / os.fsdecode(name)
        if name not in names:
            writer.delete(rel)
            continue
        path = upper / os.fsdecode(name)
        st = os.lstat(path)
        below_st = _lstat(below) if name in lower_names else None
        if below_st is None or not same_dirent(below_st, st, below, path):
            writer.change(rel, st, path)
        if stat.S_ISDIR(st.st_mode):
            if below_st is not None and stat.S_ISDIR(below_st.st_mode):
                _opaque_walk(writer, path, below, rel + b"/")
            else:
                _walk(writer, path, None, rel + b"/", set())
