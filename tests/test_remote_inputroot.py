"""A snapshot's REAPI input root composed layer by layer (remote/inputroot.py) is exactly
the tree of the merged overlay view (remote/merkle.py's ``build_tree``), and a child's
tree costs its own layer only."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from rootseed.engine.layers import OPAQUE_XATTR
from rootseed.remote.executor import MOUNTED, STAGED_MTIME
from rootseed.remote.inputroot import InputRoots
from rootseed.remote.merkle import Tree, build_tree, file_digest
from rootseed.remote.protos import re_pb2
from rootseed.sandbox.overlay import OverlayNamespace, probe

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")


def _whiteout(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except PermissionError:
        pytest.skip("making a whiteout (0/0 character device) needs CAP_MKNOD")


def _opaque(path: Path) -> None:
    os.setxattr(path, OPAQUE_XATTR, b"y")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _layers(base: Path) -> list[Path]:
    """Three layers covering overlayfs's cases: whiteouts of a file and of a directory,
    an opaque directory, a file replaced by a directory and the reverse, a directory
    whose mode changes, links, setuid, and content under tmp/dev/proc (sent empty)."""
    one, two, three = base / "one", base / "two", base / "three"
    _write(one / "src/a.c", "a")
    _write(one / "src/sub/b.c", "b")
    _write(one / "src/gone.c", "gone")
    _write(one / "bin/tool", "#!/bin/sh\n", 0o755)
    _write(one / "bin/suid", "s", 0o4755)
    _write(one / "old/x", "x")
    _write(one / "was-file", "f")
    _write(one / "was-dir/y", "y")
    _write(one / "tmp/junk", "j")
    _write(one / "dev/null-ish", "n")
    (one / "proc").mkdir()
    (one / "empty").mkdir()
    os.symlink("bin/tool", one / "link")
    _write(two / "src/a.c", "a2")  # changed, same directory merged
    _whiteout(two / "src/gone.c")
    _write(two / "old/z", "z")
    _opaque(two / "old")  # rm -rf old && mkdir old
    _write(two / "was-file/inside", "i")  # a file replaced by a directory
    _opaque(two / "was-file")
    _write(two / "was-dir", "now a file")
    _write(two / "same-as-a", "a")  # a second name for the same content
    _write(two / "tmp/more", "m")
    _write(three / "src/sub/c.c", "c")
    os.chmod(three / "src", 0o700)
    _whiteout(three / "bin")
    _whiteout(three / "link")
    os.symlink("src/a.c", three / "link2")
    for layer in (one, two, three):
        os.chmod(layer, 0o755)
    return [one, two, three]


def _digest(path: Path, _st: os.stat_result) -> re_pb2.Digest:
    return file_digest(path)


def _merged(ns: OverlayNamespace, base: Path, lowers: list[Path]) -> Tree:
    target = base / f"view{len(lowers)}"
    target.mkdir()
    empty = base / "empty-base"
    empty.mkdir(exist_ok=True)
    os.chmod(empty, 0o755)
    ns.mount(target, [*reversed(lowers), empty])
    view = ns.view(target)
    return build_tree(view, mtime=STAGED_MTIME,
                      skip=lambda p: p.parent == view and p.name in MOUNTED)


def _same(composed: Tree, walked: Tree) -> None:
    assert composed.root == walked.root
    assert dict(composed.directories) == dict(walked.directories)
    assert set(composed.files) == set(walked.files)


def test_composed_input_roots_are_the_merged_views_trees(tmp_path: Path) -> None:
    layers = _layers(tmp_path / "layers")
    roots = InputRoots(_digest, mtime=STAGED_MTIME, emptied=MOUNTED)
    stack = [(p, f"sha256:{i}") for i, p in enumerate(layers)]
    with probe(tmp_path / "probe") as ns:
        for n in range(1, len(layers) + 1):
            _same(roots.tree(stack[:n]), _merged(ns, tmp_path, layers[:n]))


def test_a_childs_tree_applies_only_its_own_layer(tmp_path: Path) -> None:
    layers = _layers(tmp_path / "layers")
    roots = InputRoots(_digest, mtime=STAGED_MTIME, emptied=MOUNTED)
    stack = [(p, f"sha256:{i}") for i, p in enumerate(layers)]
    roots.tree(stack[:2])
    assert roots.layers_applied == 2
    roots.tree(stack)  # the parent's tree is known: one more layer
    assert roots.layers_applied == 3
    roots.tree(stack)  # known
    assert roots.layers_applied == 3
    roots.tree([stack[0], stack[2]])  # another stack over the same first layer
    assert roots.layers_applied == 4


def test_a_directory_asked_for_by_digest_is_found_without_a_walk(tmp_path: Path) -> None:
    layers = _layers(tmp_path / "layers")
    roots = InputRoots(_digest, mtime=STAGED_MTIME, emptied=MOUNTED)
    tree = roots.tree([(p, f"sha256:{i}") for i, p in enumerate(layers)])
    root = re_pb2.Directory()
    root.ParseFromString(tree.directories[tree.root.hash])
    src = next(d for d in root.directories if d.name == "src")
    sub = re_pb2.Directory()
    sub.ParseFromString(tree.directories[src.digest.hash])
    assert sorted(f.name for f in sub.files) == ["a.c"]
    tmp = next(d for d in root.directories if d.name == "tmp")
    empty = re_pb2.Directory()
    empty.ParseFromString(tree.directories[tmp.digest.hash])
    assert not empty.files and not empty.directories  # sent empty
