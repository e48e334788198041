"""The copy executor: a stage's actions change one full copy of its base, in place.

Where overlayfs is not available (or ``--snapshots copy`` asks for it), a stage starts
from a real copy of its base (the unpacked image or the parent stage's tree, never
hardlinks into it) and each action changes that copy. There is no layer per action, so
nothing is cached per action (:attr:`CopyExecutor.layered` is False): the finished tree
becomes the stage's cache entry (``builds/<key>/rootfs``) by a rename.

A snapshot made here is a *working tree*: a single layer whose path is the stage's own
copy. Snapshots are consumed in order (the next action on it changes it), which is how a
stage uses them: the executor is copy-on-first-write, not copy-on-write.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from pathlib import Path

from rootseed.engine import fsops
from rootseed.engine.interface import LayerResult, SharedImages
from rootseed.engine.ops import Op, Root, run_op
from rootseed.engine.refs import CacheLayout, LayerRef
from rootseed.engine.snapshots import Layer, Snapshot
from rootseed.errors import RootseedError
from rootseed.sandbox.spec import EnteredRoot


class CopyExecutor:
    """An :class:`~rootseed.engine.executor.Executor` on full copies (thread-safe: each
    stage has a tree of its own)."""

    layered = False

    def __init__(self, layout: CacheLayout) -> None:
        self.empty = layout.empty
        self.empty.mkdir(parents=True, exist_ok=True)
        os.chmod(self.empty, 0o755)
        self._trees: set[Path] = set()  # the working trees this executor made
        self._lock = threading.Lock()

    def cached(self, snapshot: Snapshot, key: str) -> LayerResult | None:
        return None  # actions are not cached one by one (the stage is)

    def execute(self, snapshot: Snapshot, op: Op, key: str, *, work: Path,
                stop: threading.Event | None = None) -> LayerResult:
        tree = self._writable(snapshot, work)
        run_op(op, Root(tree), stop)
        chained = hashlib.sha256(f"{snapshot.digest}\0{key}".encode()).hexdigest()
        layer = Layer(tree, "", LayerRef.work(tree.name.removeprefix("tree-")))
        return LayerResult(Snapshot("sha256:" + chained, (layer,)), None)

    def view(self, snapshot: Snapshot) -> Path:
        if not snapshot.layers:
            return self.empty
        if len(snapshot.layers) > 1:
            raise RootseedError("internal: the copy executor cannot show a stack of layers",
                                hint="build with --snapshots overlay, or --no-cache")
        return snapshot.layers[0].path

    def entered(self, snapshot: Snapshot) -> EnteredRoot | None:
        return None  # plain directories

    def keep(self, snapshot: Snapshot, entry: Path) -> None:
        """The stage's tree becomes ``entry/rootfs`` (a rename of the working tree; a
        stage that changed nothing gets a copy of its base)."""
        os.replace(self._writable(snapshot, entry), entry / "rootfs")
        with self._lock:
            self._trees.discard(entry / "rootfs")

    def shared_images(self) -> SharedImages | None:
        return None  # a local executor shares nothing

    def close(self) -> None:
        with self._lock:
            self._trees.clear()

    def _writable(self, snapshot: Snapshot, work: Path) -> Path:
        """The working tree of ``snapshot``: its own when it is one, else a fresh copy
        of it in ``work``."""
        if len(snapshot.layers) == 1:
            with self._lock:
                if snapshot.layers[0].path in self._trees:
                    return snapshot.layers[0].path
        tree = work / f"tree-{secrets.token_hex(6)}"
        if snapshot.layers:
            fsops.copy_tree(self.view(snapshot), tree)  # a real copy: the base stays as is
        else:
            tree.mkdir(parents=True)
            os.chmod(tree, 0o755)
        with self._lock:
            self._trees.add(tree)
        return tree
