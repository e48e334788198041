"""Layer directories: what one action changed, as overlayfs left it in its upper directory.

A layer is a directory tree in overlayfs's own upper-layer format (so it can be stacked
again as a lower layer as it is): a *whiteout* (a 0/0 character device) hides the entry
of that name below it; an *opaque* directory (``user.overlay.opaque=y``) hides everything
below it in lower layers. Layers are also the cache's unit of trust: :func:`layer_digest`
hashes everything that matters (paths, types, modes, contents, link targets, hardlinks,
whiteouts, opaqueness) and is recorded when a layer is written and checked before a
layer is reused.

:func:`write_diff_tar` turns a layer into an OCI layer tar (whiteouts as ``.wh.<name>``,
opaque directories as ``<dir>/.wh..wh..opq``) with :mod:`rootseed.oci.layer`'s one tar
writer (sorted, uid/gid 0, mtime clamped, PAX).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.entries import check_entry
from rootseed.oci.layer import DiffMarks, write_tar

OPAQUE_XATTR = "user.overlay.opaque"
#: overlayfs's private attributes; only opaqueness has a meaning in a finished layer.
OVERLAY_XATTR_PREFIX = "user.overlay."


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return []
        raise


def finish_layer(upper: Path) -> None:
    """Drop overlayfs's bookkeeping from a finished upper directory (origin, impure,
    uuid, ...), keeping only opaque markers: the layer is then a plain, stackable tree."""
    for path, st in walk(upper, include_root=True):
        if stat.S_ISLNK(st.st_mode):
            continue
        for name in _xattrs(path):
            if name.startswith(OVERLAY_XATTR_PREFIX) and not (
                    name == OPAQUE_XATTR and stat.S_ISDIR(st.st_mode)):
                with contextlib.suppress(OSError):
                    os.removexattr(path, name, follow_symlinks=False)


class PathTooLong(RootseedError):
    """A layer holds a path the system cannot name (ENAMETOOLONG: over PATH_MAX)."""

    kind = ErrorKind.REFUSED


def walk(root: Path, *, include_root: bool = False) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry below ``root`` with its lstat, sorted by path bytes (depth first)."""
    if include_root:
        yield root, os.lstat(root)

    def too_long(path: str) -> PathTooLong:
        rel = os.path.relpath(path, root)
        return PathTooLong(
            f"a path in the layer is longer than this system's limit: /{rel[:80]}... "
            f"({len(rel)} characters)", hint="a build step made it (directories nested "
            "too deep or with very long names); rootseed cannot store it: change the step")

    def listing(directory: Path) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as it:
                return iter(sorted(it, key=lambda e: os.fsencode(e.name)))
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise too_long(str(directory)) from None
            raise

    # a stack, not recursion: a step may make directories thousands deep
    stack = [listing(root)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise too_long(entry.path) from None
            raise
        path = Path(entry.path)
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            stack.append(listing(path))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def layer_digest(root: Path) -> str:
    """The content digest of a layer directory: "sha256:<hex>" of a canonical listing.

    Each entry contributes its relative path, kind, permission bits and what it holds
    (file content sha256, symlink target, the first path of a hardlink group, whiteout,
    opaque). Times and owners are not part of a layer (images clamp and reset them).
    """
    h = hashlib.sha256()
    links: dict[tuple[int, int], str] = {}
    root_st = os.lstat(root)
    if not stat.S_ISDIR(root_st.st_mode):
        raise RootseedError(f"layer {root} is not a directory")
    h.update(f"/\0d\0{stat.S_IMODE(root_st.st_mode):o}\0{int(is_opaque(root))}\n".encode())
    for path, st in walk(root):
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(st.st_mode)
        if not is_whiteout(st):
            check_entry(rel, st.st_mode)  # no .wh.* names, FIFOs, sockets, devices
        if stat.S_ISDIR(st.st_mode):
            item = f"d\0{mode:o}\0{int(is_opaque(path))}"
        elif stat.S_ISLNK(st.st_mode):
            item = f"l\0{os.readlink(path)}"
        elif is_whiteout(st):
            item = "w"
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                item = f"h\0{links[key]}"
            else:
                if st.st_nlink > 1:
                    links[key] = rel
                item = f"f\0{mode:o}\0{st.st_size}\0{_file_sha256(path)}"
        else:  # refused by check_entry
            raise RootseedError(f"layer {root} holds /{rel}, not a file, directory or link")
        h.update(os.fsencode(rel) + b"\0" + item.encode("utf-8", "surrogateescape") + b"\n")
    return "sha256:" + h.hexdigest()


def is_empty(root: Path) -> bool:
    """True when a finished layer changes nothing (no entries, root not opaque)."""
    with os.scandir(root) as it:
        return next(it, None) is None and not is_opaque(root)


#: how a layer directory marks removals (overlayfs's upper-directory format)
MARKS = DiffMarks(is_whiteout=is_whiteout, is_opaque=is_opaque)


def write_diff_tar(layer: Path, out: BinaryIO, *, epoch: int = 1) -> None:
    """Write ``layer`` as an uncompressed OCI layer tar (OCI whiteouts) to ``out``, with
    the one tar writer (:func:`rootseed.oci.layer.write_tar`)."""
    write_tar(layer, out, epoch=epoch, marks=MARKS)
