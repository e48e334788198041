"""A tree's digest as the Remote Execution API names an input root.

The Remote Execution API (``build.bazel.remote.execution.v2``) names an input root by the
digest of its root ``Directory`` message, and each subdirectory by its own: a Merkle
tree. A remote executor is handed a snapshot by this digest (and uploads what the
service lacks). The few fields needed are encoded by hand here: importing protobuf would
cost every start of rootseed a tenth of a second, and these five messages are small;
``tests/test_reapi.py`` checks the bytes against the protobuf library.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rootseed.engine.snapshots import Snapshot
from rootseed.errors import RootseedError

# Canonical encoding: fields in field-number order, default values left out,
# nodes sorted by name (UTF-8 bytes), as the API requires.
#
#   Digest        { string hash = 1; int64 size_bytes = 2; }
#   FileNode      { string name = 1; Digest digest = 2; bool is_executable = 4; }
#   DirectoryNode { string name = 1; Digest digest = 2; }
#   SymlinkNode   { string name = 1; string target = 2; }
#   Directory     { repeated FileNode files = 1; repeated DirectoryNode directories = 2;
#                   repeated SymlinkNode symlinks = 3; }


@dataclass(frozen=True)
class Digest:
    """A REAPI ``Digest``: lower-case hex sha256 and size in bytes."""

    hash: str
    size_bytes: int


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_digest(d: Digest) -> bytes:
    out = _field(1, d.hash.encode("ascii"))
    if d.size_bytes:
        out += _varint(2 << 3) + _varint(d.size_bytes)
    return out


def encode_directory(files: list[tuple[bytes, Digest, bool]],
                     directories: list[tuple[bytes, Digest]],
                     symlinks: list[tuple[bytes, bytes]]) -> bytes:
    """A canonical ``Directory`` message (each list is sorted here by name)."""
    out = bytearray()
    for name, digest, executable in sorted(files, key=lambda f: f[0]):
        node = _field(1, name) + _field(2, encode_digest(digest))
        if executable:
            node += _varint(4 << 3) + _varint(1)
        out += _field(1, node)
    for name, digest in sorted(directories, key=lambda d: d[0]):
        out += _field(2, _field(1, name) + _field(2, encode_digest(digest)))
    for name, target in sorted(symlinks, key=lambda s: s[0]):
        out += _field(3, _field(1, name) + _field(2, target))
    return bytes(out)


def _file_digest(path: Path) -> Digest:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        h = hashlib.file_digest(f, "sha256")
        size = os.fstat(f.fileno()).st_size
    return Digest(h.hexdigest(), size)


def directory_digest(root: Path) -> Digest:
    """The REAPI ``Directory`` digest of the tree at ``root`` (a snapshot's view):
    regular files (executable when the owner may execute), directories and symlinks.
    Anything else (a FIFO, a device node) has no place in an input root: an error."""
    files: list[tuple[bytes, Digest, bool]] = []
    dirs: list[tuple[bytes, Digest]] = []
    links: list[tuple[bytes, bytes]] = []
    with os.scandir(root) as it:
        entries = list(it)
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        name = os.fsencode(entry.name)
        path = Path(entry.path)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((name, directory_digest(path)))
        elif stat.S_ISLNK(st.st_mode):
            links.append((name, os.fsencode(os.readlink(path))))
        elif stat.S_ISREG(st.st_mode):
            files.append((name, _file_digest(path), bool(st.st_mode & stat.S_IXUSR)))
        else:
            raise RootseedError(f"{path}: not a file, directory or symlink; a REAPI input "
                                "root cannot hold it")
    data = encode_directory(files, dirs, links)
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


class _Viewer(Protocol):
    def view(self, snapshot: Snapshot) -> Path: ...


def snapshot_digest(viewer: _Viewer, snapshot: Snapshot) -> Digest:
    """``snapshot``'s REAPI input root digest: its whole tree as ``viewer`` (the executor
    that made it) shows it, layers merged (so no whiteout reaches the digest)."""
    return directory_digest(viewer.view(snapshot))
