"""A directory on disk as REAPI ``Directory`` messages: the input root's Merkle tree.

REAPI v2 (``remote_execution.proto``) names a tree by the digest of its root
``Directory``: files, subdirectories and symlinks each sorted by name, every child named
by the digest of its own serialised message. What that tree cannot say is refused here,
not silently dropped, so a remote step never sees a different root than a local one:
FIFOs, sockets and devices have no node type. Modes travel as ``node_properties.unix_mode``
(the worker must be asked to keep them); uid/gid are not part of REAPI's tree (every
file is root's inside our sandboxes anyway). Hard links become separate files with the
same digest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.remote import RemoteError
from rootseed.remote.protos import re_pb2


class UnsupportedFile(RemoteError):
    """A file the REAPI tree cannot carry (FIFO, socket, device)."""


def digest_of(data: bytes) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def file_digest(path: Path) -> re_pb2.Digest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return re_pb2.Digest(hash=h.hexdigest(), size_bytes=size)


@dataclass
class Tree:
    """A directory's Merkle tree: the root digest, every ``Directory`` message by digest
    hash, and the file on disk behind every file digest."""

    root: re_pb2.Digest
    directories: Mapping[str, bytes] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)

    def blob_digests(self) -> list[re_pb2.Digest]:
        out = [re_pb2.Digest(hash=h, size_bytes=len(b)) for h, b in self.directories.items()]
        out += [re_pb2.Digest(hash=h, size_bytes=p.stat().st_size)
                for h, p in self.files.items()]
        return out


def build_tree(root: Path, *, modes: bool = True, mtime: int | None = None,
               skip: Callable[[Path], bool] | None = None,
               digest: Callable[[Path, os.stat_result], re_pb2.Digest] | None = None) -> Tree:
    """The Merkle tree of ``root`` (never following links), iteratively (no recursion
    limit on deep trees). ``mtime``: every file and directory carries this fixed
    ``node_properties.mtime`` (the worker stages it so; the tree stays a function of
    contents and modes); ``skip(path)``: a directory whose entries are left out (it
    is sent empty); ``digest``: how a file's digest is found (e.g. memoised)."""
    directories: dict[str, bytes] = {}
    files: dict[str, Path] = {}
    digests: dict[Path, re_pb2.Digest] = {}
    # post-order without recursion: (path, children visited?)
    stack: list[tuple[Path, bool]] = [(root, False)]
    while stack:
        path, visited = stack.pop()
        entries = [] if skip is not None and path != root and skip(path) else sorted(
            os.scandir(path), key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        if not visited:
            stack.append((path, True))
            stack.extend((Path(e.path), False) for e in entries
                         if e.is_dir(follow_symlinks=False))
            continue
        msg = re_pb2.Directory()
        for e in entries:
            st = e.stat(follow_symlinks=False)
            p = Path(e.path)
            if stat.S_ISDIR(st.st_mode):
                # DirectoryNode has no node_properties in REAPI v2: a directory's mode
                # rides on its own Directory message (below).
                msg.directories.add(name=e.name, digest=digests.pop(p))
                continue
            if stat.S_ISLNK(st.st_mode):
                msg.symlinks.add(name=e.name, target=os.readlink(p))
                continue
            if not stat.S_ISREG(st.st_mode):
                raise UnsupportedFile(
                    f"{p} is neither a file, a directory nor a symlink: a remote step's "
                    "input root cannot carry it",
                    hint="remove it in the step that made it, or build without --remote")
            d = file_digest(p) if digest is None else digest(p, st)
            files.setdefault(d.hash, p)
            node = msg.files.add(name=e.name, digest=d,
                                 is_executable=bool(st.st_mode & stat.S_IXUSR))
            if mtime is not None:
                node.node_properties.mtime.seconds = mtime
            if modes:
                node.node_properties.unix_mode.value = stat.S_IMODE(st.st_mode)
        if mtime is not None:
            msg.node_properties.mtime.seconds = mtime
        if modes:
            msg.node_properties.unix_mode.value = stat.S_IMODE(os.lstat(path).st_mode)
        data = msg.SerializeToString(deterministic=True)
        d = digest_of(data)
        directories[d.hash] = data
        digests[path] = d
    return Tree(root=digests[root], directories=directories, files=files)
