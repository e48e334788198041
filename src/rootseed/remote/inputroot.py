"""A snapshot's input root composed layer by layer: no walk of the merged tree per step.

A snapshot is a stack of layer directories (overlayfs's upper-directory format, see
:mod:`rootseed.engine.layers`), and the merged tree a step runs on is what overlayfs
shows of them. :func:`rootseed.remote.merkle.build_tree` walks that merged view, every
file and directory of it, for each step; a stage of many steps over a large source tree
paid that walk again and again although each step adds one small layer.

:class:`InputRoots` keeps each snapshot's tree in memory as nodes (directory, file,
symlink) and makes a child snapshot's tree from its parent's by applying only the new
layer the way overlayfs does: a whiteout (a 0/0 character device) removes the name
below it, an opaque directory (``user.overlay.opaque=y``) hides everything below it, a
directory in the layer over a directory below merges into it (taking the layer's mode),
anything else replaces what was below. Unchanged subtrees are shared between snapshots,
and so are their ``Directory`` messages and digests: a step costs what its layer holds,
plus the directories on the paths to its changes.

The result is exactly the tree :func:`~rootseed.remote.merkle.build_tree` gives for the
merged view (same messages, same digests: ``tests/test_remote_inputroot.py`` compares
them), as a :class:`~rootseed.remote.merkle.Tree` whose ``directories`` and ``files``
are filled only when something asks for them (an upload after an action-cache miss, or
the output diff descending into a directory).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rootseed.engine.layers import is_opaque, is_whiteout
from rootseed.remote.merkle import Tree, UnsupportedFile, digest_of
from rootseed.remote.protos import re_pb2

#: How a file's digest is found (memoised by the caller).
DigestOf = Callable[[Path, os.stat_result], re_pb2.Digest]


@dataclass(frozen=True)
class _File:
    digest: re_pb2.Digest
    mode: int  # permission bits
    path: Path  # where its bytes are (in a layer)


@dataclass(frozen=True)
class _Link:
    target: str


class _Dir:
    """A directory: its permission bits and entries (never changed once made: a child
    snapshot's tree makes new ``_Dir``s along the paths it changes)."""

    __slots__ = ("_message", "entries", "mode")

    def __init__(self, mode: int, entries: dict[str, _Dir | _File | _Link]) -> None:
        self.mode = mode
        self.entries = entries
        self._message: tuple[re_pb2.Digest, bytes] | None = None

    def message(self, mtime: int | None, emptied: frozenset[str] = frozenset()
                ) -> tuple[re_pb2.Digest, bytes]:
        """This directory's ``Directory`` message and its digest, as ``build_tree``
        writes it; the subdirectories named in ``emptied`` are sent without entries."""
        if self._message is not None and not emptied:
            return self._message
        msg = re_pb2.Directory()
        for name in sorted(self.entries, key=_sort_key):
            node = self.entries[name]
            if isinstance(node, _Dir):
                if name in emptied:
                    node = _Dir(node.mode, {})
                msg.directories.add(name=name, digest=node.message(mtime)[0])
            elif isinstance(node, _Link):
                msg.symlinks.add(name=name, target=node.target)
            else:
                f = msg.files.add(name=name, digest=node.digest,
                                  is_executable=bool(node.mode & stat.S_IXUSR))
                if mtime is not None:
                    f.node_properties.mtime.seconds = mtime
                f.node_properties.unix_mode.value = node.mode
        if mtime is not None:
            msg.node_properties.mtime.seconds = mtime
        msg.node_properties.unix_mode.value = self.mode
        data = msg.SerializeToString(deterministic=True)
        found = (digest_of(data), data)
        if not emptied:
            self._message = found
        return found


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def apply_layer(below: _Dir, layer: Path, digest: DigestOf) -> _Dir:
    """The tree overlayfs shows with ``layer`` on top of ``below``."""
    return _merge(below, layer, os.lstat(layer), digest)


def _merge(below: _Dir | None, path: Path, st: os.stat_result, digest: DigestOf) -> _Dir:
    entries: dict[str, _Dir | _File | _Link] = (
        {} if below is None or is_opaque(path) else dict(below.entries))
    with os.scandir(path) as it:
        listing = list(it)
    for e in listing:
        est = e.stat(follow_symlinks=False)
        p = Path(e.path)
        if stat.S_ISDIR(est.st_mode):
            under = entries.get(e.name)
            entries[e.name] = _merge(under if isinstance(under, _Dir) else None, p, est,
                                     digest)
        elif stat.S_ISLNK(est.st_mode):
            entries[e.name] = _Link(os.readlink(p))
        elif stat.S_ISREG(est.st_mode):
            entries[e.name] = _File(digest(p, est), stat.S_IMODE(est.st_mode), p)
        elif is_whiteout(est):
            entries.pop(e.name, None)
        else:
            raise UnsupportedFile(
                f"{p} is neither a file, a directory nor a symlink: a remote step's "
                "input root cannot carry it",
                hint="remove it in the step that made it, or build without --remote")
    return _Dir(stat.S_IMODE(st.st_mode), entries)


class _Directories(Mapping[str, bytes]):
    """A composed tree's ``Directory`` messages by digest hash, found on demand: a
    directory asked for makes its subdirectories known (the output diff descends from
    the root), anything else is found by walking the whole tree once."""

    def __init__(self, root: _Dir, root_message: tuple[re_pb2.Digest, bytes],
                 mtime: int | None, emptied: frozenset[str]) -> None:
        self._mtime = mtime
        self._found: dict[str, bytes] = {root_message[0].hash: root_message[1]}
        self._known: dict[str, _Dir] = {}
        self._all = False
        self._root = root
        self._emptied = emptied
        self._learn(root, emptied)

    def _learn(self, d: _Dir, emptied: frozenset[str] = frozenset()) -> None:
        for name, node in d.entries.items():
            if isinstance(node, _Dir):
                if name in emptied:
                    node = _Dir(node.mode, {})
                self._known.setdefault(node.message(self._mtime)[0].hash, node)

    def __getitem__(self, key: str) -> bytes:
        found = self._found.get(key)
        if found is not None:
            return found
        node = self._known.get(key)
        if node is None and not self._all:
            self._walk()
            node = self._known.get(key)
        if node is None:
            raise KeyError(key)
        data = node.message(self._mtime)[1]
        self._found[key] = data
        self._learn(node)
        return data

    def _walk(self) -> None:
        stack = [self._root]
        seen: set[int] = set()
        while stack:
            d = stack.pop()
            if id(d) in seen:
                continue
            seen.add(id(d))
            self._learn(d, self._emptied if d is self._root else frozenset())
            stack.extend(n for name, n in d.entries.items() if isinstance(n, _Dir)
                         and not (d is self._root and name in self._emptied))
        self._all = True

    def __iter__(self) -> Iterator[str]:
        if not self._all:
            self._walk()
        yield from self._found.keys() | self._known.keys()

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Files(Mapping[str, Path]):
    """A composed tree's files by digest hash (one path each), found on first use."""

    def __init__(self, root: _Dir, emptied: frozenset[str]) -> None:
        self._root = root
        self._emptied = emptied
        self._files: dict[str, Path] | None = None

    def _all(self) -> dict[str, Path]:
        if self._files is None:
            files: dict[str, Path] = {}
            stack = [(self._root, True)]
            while stack:
                d, top = stack.pop()
                for name, node in d.entries.items():
                    if isinstance(node, _Dir):
                        if not (top and name in self._emptied):
                            stack.append((node, False))
                    elif isinstance(node, _File):
                        files.setdefault(node.digest.hash, node.path)
            self._files = files
        return self._files

    def __getitem__(self, key: str) -> Path:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def as_tree(root: _Dir, *, mtime: int | None, emptied: frozenset[str]) -> Tree:
    """``root`` as a :class:`~rootseed.remote.merkle.Tree` (messages made on demand)."""
    top = root.message(mtime, emptied)
    return Tree(root=top[0], directories=_Directories(root, top, mtime, emptied),
                files=_Files(root, emptied))


class InputRoots:
    """Snapshots' trees, each made from the longest prefix of its layer stack already
    known (see the module docstring). Thread-safe."""

    def __init__(self, digest: DigestOf, *, mtime: int | None, emptied: Sequence[str],
                 kept: int = 256) -> None:
        self._digest = digest
        self._mtime = mtime
        self._emptied = frozenset(emptied)
        self._kept = kept
        self._roots: dict[str, _Dir] = {}  # by layer-stack key, oldest first
        self._lock = threading.Lock()
        #: layers applied so far (how much work composing took: tests count it)
        self.layers_applied = 0

    @staticmethod
    def _keys(layers: Sequence[tuple[Path, str]]) -> list[str]:
        keys, key = [], ""
        for path, layer_digest in layers:
            key = hashlib.sha256(f"{key}\0{path}\0{layer_digest}".encode()).hexdigest()
            keys.append(key)
        return keys

    def tree(self, layers: Sequence[tuple[Path, str]]) -> Tree:
        """The tree of the layer stack ``layers`` (bottom first: each layer's directory
        and content digest) over an empty root of mode 0755."""
        keys = self._keys(layers)
        start, root = 0, _Dir(0o755, {})
        with self._lock:
            for i in range(len(keys) - 1, -1, -1):
                found = self._roots.get(keys[i])
                if found is not None:
                    start, root = i + 1, found
                    break
        for i in range(start, len(layers)):
            root = apply_layer(root, layers[i][0], self._digest)
            with self._lock:
                self.layers_applied += 1
                self._roots[keys[i]] = root
                while len(self._roots) > self._kept:
                    del self._roots[next(iter(self._roots))]
        return as_tree(root, mtime=self._mtime, emptied=self._emptied)

    def clear(self) -> None:
        with self._lock:
            self._roots.clear()
