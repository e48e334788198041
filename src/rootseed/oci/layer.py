"""Deterministic layer tarballs of a root filesystem directory.

The same tree gives the same bytes on any machine, in any directory, at any time:

* entries sorted by path (byte order of the relative path; no ``./`` prefix, no entry for
  the root itself), so creation order does not matter;
* uid/gid 0 and empty user/group names; mode bits kept (setuid, setgid, sticky too);
* mtime clamped to ``SOURCE_DATE_EPOCH`` (``min(mtime, epoch)``); no atime/ctime, no
  xattrs, device numbers always 0 (device nodes are refused: a build cannot make them);
* files with several links: the first path (in sort order) is a regular file, the others
  are hardlink entries to it; symlinks are kept as symlinks;
* one tar format: **PAX** (POSIX.1-2001). It is the standard format that represents long
  paths and link targets and non-ASCII names without GNU extensions; Python's writer emits
  a plain ustar header for every entry that fits one and adds an extended header only
  where ustar cannot hold the value, so the output is ustar wherever ustar suffices;
* gzip with no file name, mtime 0 and a fixed level (:data:`GZIP_LEVEL`).

The uncompressed stream's digest is the OCI ``diff_id``; the compressed one is the blob
digest. (zlib's output is fixed for a given zlib version and level; the ``diff_id`` does not
depend on zlib at all.)
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rootseed.errors import RootseedError
from rootseed.oci.digest import HashingWriter
from rootseed.oci.entries import check_entry

#: zlib's default level: a good size/speed trade-off, fixed so blob digests are stable.
GZIP_LEVEL = 6
MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layer:
    diff_id: str  # sha256 of the uncompressed tar
    digest: str  # sha256 of the gzip blob
    size: int  # bytes of the gzip blob


def walk(rootfs: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every path below ``rootfs`` (relative, '/'-separated) with its lstat, sorted by path."""
    found: list[tuple[bytes, str, os.stat_result]] = []
    todo = [""]
    while todo:
        rel = todo.pop()
        with os.scandir(rootfs / rel if rel else rootfs) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                found.append((os.fsencode(path), path, st))
                if stat.S_ISDIR(st.st_mode):
                    todo.append(path)
    found.sort(key=lambda f: f[0])
    for _, path, st in found:
        yield path, st


def _tarinfo(path: str, st: os.stat_result, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = min(max(int(st.st_mtime), 0), epoch)
    info.devmajor = info.devminor = 0
    return info


@dataclass(frozen=True)
class DiffMarks:
    """How a layer *directory* marks what it removes from the layers below it (e.g. an
    overlayfs upper directory): written as OCI whiteouts, ``<dir>/.wh.<name>`` for a
    removed entry and ``<dir>/.wh..wh..opq`` for a directory that hides everything
    below it."""

    is_whiteout: Callable[[os.stat_result], bool]
    is_opaque: Callable[[Path], bool]


WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def _entries(rootfs: Path, epoch: int, marks: DiffMarks | None
             ) -> list[tuple[bytes, tarfile.TarInfo, str | None]]:
    """The tar entries of ``rootfs``, in tar order: (name, header, file to read)."""
    first_link: dict[tuple[int, int], str] = {}
    entries: list[tuple[bytes, tarfile.TarInfo, str | None]] = []

    def marker(name: str, st: os.stat_result | None) -> None:
        info = _tarinfo(name, st, epoch) if st is not None else tarfile.TarInfo(name)
        info.mode = 0o644
        if st is None:
            info.mtime = 0
        entries.append((os.fsencode(name), info, None))

    if marks is not None and marks.is_opaque(rootfs):
        marker(OPAQUE_MARKER, None)
    for path, st in walk(rootfs):  # in path order, so a hardlink follows its first path
        mode = st.st_mode
        if marks is not None and marks.is_whiteout(st):
            parent, _, name = path.rpartition("/")
            marker(f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name,
                   st)
            continue
        check_entry(path, mode)  # never a .wh.* name, FIFO, socket or device
        info = _tarinfo(path, st, epoch)
        key = (st.st_dev, st.st_ino)
        src: str | None = None
        if not stat.S_ISDIR(mode) and st.st_nlink > 1 and key in first_link:
            info.type = tarfile.LNKTYPE
            info.linkname = first_link[key]
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                first_link[key] = path
            info.type = tarfile.REGTYPE
            info.size = st.st_size
            src = path
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            if marks is not None and marks.is_opaque(rootfs / path):
                marker(f"{path}/{OPAQUE_MARKER}", st)
        elif stat.S_ISLNK(mode):
            if st.st_nlink > 1:
                first_link[key] = path
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(rootfs / path)
        else:  # refused by check_entry
            raise RootseedError(f"cannot put /{path} into an image layer (from {rootfs})")
        entries.append((os.fsencode(path), info, src))
    if marks is not None:  # whiteout names sort apart from the names they hide
        entries.sort(key=lambda e: e[0])
    return entries


def write_tar(rootfs: Path, out: BinaryIO | HashingWriter, *, epoch: int = 1,
              marks: DiffMarks | None = None) -> None:
    """Write the uncompressed layer tar of ``rootfs`` to ``out`` (the one tar writer:
    a whole tree, or with ``marks`` a layer directory whose removals become OCI
    whiteouts)."""
    if not rootfs.is_dir():
        raise RootseedError(f"cannot make a layer of {rootfs}: not a directory")
    entries = _entries(rootfs, epoch, marks)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tar:
        for _, info, src in entries:
            if src is None:
                tar.addfile(info)
            else:
                with open(rootfs / src, "rb") as f:
                    tar.addfile(info, f)


def write_layer(rootfs: Path, out: BinaryIO, *, epoch: int = 1) -> Layer:
    """Write the gzipped layer of ``rootfs`` to ``out``; return its digests and size."""
    blob = HashingWriter(out)
    with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL,
                       fileobj=blob, mtime=0) as gz:
        tar = HashingWriter(gz)
        write_tar(rootfs, tar, epoch=epoch)
    blob.flush()
    return Layer(diff_id=tar.digest, digest=blob.digest, size=blob.size)
