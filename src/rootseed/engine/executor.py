"""Executors: what runs an action on a snapshot, and the overlay executor.

:class:`~rootseed.engine.interface.Executor` is the interface every backend implements:
given a snapshot (the input root), an operation (:mod:`rootseed.engine.ops`: a RUN step's
argv, environment, working directory, platform and timeout, or a local file operation)
and the action's key, it returns a :class:`~rootseed.engine.interface.LayerResult` (the
snapshot after the action, and the layer it added).
:func:`~rootseed.engine.executors.open_executor` is the one place that chooses an
implementation: :class:`OverlayExecutor` here, or
:class:`~rootseed.engine.copyexec.CopyExecutor`.

:class:`OverlayExecutor` owns one :class:`~rootseed.sandbox.overlay.OverlayNamespace`
for a builder's lifetime: every action mounts its snapshot's layers read-only with a fresh
upper directory on top, runs (COPY/WORKDIR through the namespace's view of the merged
tree, RUN in bwrap started inside the namespace), unmounts, and the upper directory *is*
the action's layer (cost: what the step changed). Read-only views of finished snapshots
(``COPY --from``, image writing, output checks) are mounted once and kept.

:class:`ActionSteps` is the hook a :class:`~rootseed.engine.stage.StageRunner` calls for
each RUN/COPY/ADD/WORKDIR, whatever the executor: key, cache lookup (a hit adds the
cached layer and runs nothing), or execution. With a layered executor a build that fails
at step N therefore resumes at step N: the earlier actions are hits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import safefs
from rootseed.containerfile import Instruction
from rootseed.engine import fsops
from rootseed.engine.actions import Action, Command, builder_digest
from rootseed.engine.interface import Executor, LayerResult, SharedImages
from rootseed.engine.layers import walk
from rootseed.engine.ops import ExecOp, Op, Root, run_op
from rootseed.engine.refs import LayerRef
from rootseed.engine.snapshots import (
    MAX_LAYERS,
    ActionCache,
    ActionResult,
    LayerStore,
    Snapshot,
)
from rootseed.engine.stage import FileStep
from rootseed.engine.steplog import last_line
from rootseed.errors import RootseedError
from rootseed.plan import to_json
from rootseed.sandbox.logtail import escape
from rootseed.sandbox.overlay import OverlayError, OverlayNamespace
from rootseed.sandbox.spec import EnteredRoot

Event = dict[str, Any]
#: How often a running step's line is repeated with its elapsed time.
TICK_SECONDS = 15.0


class OverlayExecutor:
    """An :class:`Executor` on overlayfs: overlay mounts + the action cache of one
    builder (thread-safe)."""

    layered = True

    def __init__(self, ns: OverlayNamespace, store: LayerStore) -> None:
        self.ns = ns
        layout = store.layout
        self.dir = layout.root
        self.actions = ActionCache(layout, store.verifier, self._drop_views)
        self.verifier = store.verifier
        self._views: dict[str, Path] = {}
        self._hardlinks = HardlinkRepair()
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self.empty = layout.empty
        safefs.ensure_dir(layout.root, self.empty)  # never through a link planted there
        os.chmod(self.empty, 0o755)
        self._view_root = layout.views / secrets.token_hex(6)
        safefs.ensure_dir(layout.root, self._view_root.parent)

    def _lowers(self, snapshot: Snapshot) -> list[Path]:
        # top first, as overlayfs wants them; at least two without an upper layer
        return [*(x.path for x in reversed(snapshot.layers)), self.empty]

    def _drop_views(self, layer: Path) -> None:
        """Unmount the views that stack ``layer`` (it is about to be replaced)."""
        with self._lock:
            stale = [d for d, s in self._snapshots.items()
                     if any(x.path == layer for x in s.layers)]
            for digest in stale:
                del self._snapshots[digest]
                view = self._views.pop(digest)
                target = self._view_root / view.name
                with contextlib.suppress(OverlayError):
                    self.ns.umount(target)

    def view(self, snapshot: Snapshot) -> Path:
        """A read-only view of ``snapshot`` (mounted once per process), as a host path."""
        if not snapshot.layers:
            return self.empty
        with self._lock:
            found = self._views.get(snapshot.digest)
            if found is not None:
                return found
            target = self._view_root / snapshot.digest.removeprefix("sha256:")[:32]
            target.mkdir(parents=True, exist_ok=True)
            self.ns.mount(target, self._lowers(snapshot))
            view = self.ns.view(target)
            self._views[snapshot.digest] = view
            self._snapshots[snapshot.digest] = snapshot
            return view

    def entered(self, snapshot: Snapshot) -> EnteredRoot | None:
        if not snapshot.layers:
            return None  # the empty directory, a plain host path
        view = self.view(snapshot)
        return EnteredRoot(tuple(self.ns.enter()), self._view_root / view.name)

    # -- the Executor interface ----------------------------------------------------------
    def cached(self, snapshot: Snapshot, key: str) -> LayerResult | None:
        hit = self.actions.lookup(key)
        return None if hit is None else _advance(snapshot, hit)

    def execute(self, snapshot: Snapshot, op: Op, key: str, *, work: Path,
                stop: threading.Event | None = None) -> LayerResult:
        if len(snapshot.layers) >= MAX_LAYERS:
            snapshot = self.flatten(snapshot)

        def apply(view: Path, mount_root: Path) -> None:
            run_op(op, Root(view, EnteredRoot(tuple(self.ns.enter()), mount_root)), stop)

        return _advance(snapshot, self.run_action(snapshot, key, apply))

    def keep(self, snapshot: Snapshot, entry: Path) -> None:
        """Nothing to move: the snapshot's layers are action results in the cache."""

    def run_action(self, snapshot: Snapshot, key: str,
                   apply: Callable[[Path, Path], None]) -> ActionResult:
        """Run ``apply(host view, mount root)`` on a writable layer over ``snapshot``;
        commit the layer as ``key``'s result (nothing is kept when ``apply`` fails)."""
        tmp = self.actions.new_dir()
        upper, work, merged = tmp / "layer", tmp / "work", tmp / "merged"
        for d in (upper, work, merged):
            d.mkdir()
        os.chmod(upper, 0o755)
        try:
            lowers = self._lowers(snapshot)
            self.ns.mount(merged, lowers, upper, work)
            try:
                apply(self.ns.view(merged), merged)
                self._hardlinks.repair(self.ns.view(merged), upper, lowers)
            finally:
                self.ns.umount(merged)
            merged.rmdir()
            return self.actions.commit(tmp, key)
        except BaseException:
            fsops.remove_tree(tmp)
            raise

    def flatten(self, snapshot: Snapshot) -> Snapshot:
        """One layer holding the whole of ``snapshot`` (for stacks near the kernel's
        limit); the snapshot's digest stays: its contents are the same."""
        name = snapshot.digest.removeprefix("sha256:")
        found = self.actions.lookup_flat(name)
        if found is not None:
            return Snapshot(snapshot.digest, (found,))
        tmp = self.actions.new_dir()
        result = subprocess.run(["cp", "-a", "--", f"{self.view(snapshot)}/.", str(tmp / "layer")],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            fsops.remove_tree(tmp)
            raise RootseedError(f"cannot flatten a snapshot: {result.stderr.strip()}")
        committed = self.actions.commit(tmp, name, ref=LayerRef.flat(name))
        return Snapshot(snapshot.digest, (committed.layer,))

    def shared_images(self) -> SharedImages | None:
        return None  # a local executor shares nothing

    def close(self) -> None:
        with self._lock:
            self._views.clear()
        self.ns.close()
        fsops.remove_tree(self._view_root)


def _advance(snapshot: Snapshot, result: ActionResult) -> LayerResult:
    if result.empty:
        return LayerResult(snapshot, result.layer, empty=True)
    return LayerResult(snapshot.push(result.layer), result.layer)


class HardlinkRepair:
    """Keeps hardlinks whole across copy-up.

    overlayfs (without ``index=on``, which a user namespace cannot have) copies a
    hardlinked lower file up alone: the step's change shows through one name only,
    where a real file system (and a full copy) changes every name. After each action,
    every other name of a copied-up multi-link file that still shows the lower file is
    made a hardlink to the copied-up file again, so the layer has the links a real
    file system would have. Each lower layer's multi-link inodes are indexed once.

    When several names were copied up in one step (one written, another chmod-ed), they
    are joined again: the changed content and the changed mode win.

    Limitation: overlayfs does not mark copied-up files here (no "origin" without file
    handles), so a step that *replaces* one name of a lower multi-link file (unlink +
    create) is treated like a write through that name: the other names then show the
    new file, as if the step had written it in place.
    """

    def __init__(self) -> None:
        self._index: dict[Path, dict[int, list[str]]] = {}
        self._lock = threading.Lock()

    def _names(self, layer: Path) -> dict[int, list[str]]:
        with self._lock:
            found = self._index.get(layer)
        if found is not None:
            return found
        names: dict[int, list[str]] = {}
        for path, st in walk(layer):
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                names.setdefault(st.st_ino, []).append(path.relative_to(layer).as_posix())
        with self._lock:
            self._index[layer] = names
        return names

    def repair(self, view: Path, upper: Path, lowers: list[Path]) -> None:
        # lower inode → (its layer, its stat, the names copied up in this step)
        groups: dict[tuple[Path, int], tuple[os.stat_result, list[str]]] = {}
        for path, st in walk(upper):
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                continue  # (overlay's "origin" mark is not set here: look below instead)
            rel = path.relative_to(upper).as_posix()
            for layer in lowers:
                try:
                    low = os.lstat(layer / rel)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if stat.S_ISREG(low.st_mode) and low.st_nlink > 1:
                    groups.setdefault((layer, low.st_ino), (low, []))[1].append(rel)
                break
        for (layer, ino), (low, copied) in groups.items():
            self._rejoin(view, upper, layer, low, copied, self._names(layer).get(ino, []))

    @staticmethod
    def _rejoin(view: Path, upper: Path, layer: Path, low: os.stat_result, copied: list[str],
                names: list[str]) -> None:
        """Make every name of one lower multi-link file one file again: the copied-up
        name whose content changed (else the first) keeps the content, a changed mode
        wins, and all the other names become links to it."""
        if not names:
            return
        first = names[0]
        with open(layer / first, "rb") as f:
            original = f.read()

        def changed(rel: str) -> bool:
            with open(upper / rel, "rb") as f:
                return f.read() != original

        keep = next((rel for rel in sorted(copied) if changed(rel)), sorted(copied)[0])
        modes = [os.lstat(upper / rel).st_mode for rel in copied]
        new_mode = next((m for m in modes if stat.S_IMODE(m) != stat.S_IMODE(low.st_mode)),
                        None)
        if new_mode is not None:
            os.chmod(view / keep, stat.S_IMODE(new_mode))
        for other in names:
            if other == keep:
                continue
            try:
                shown = os.lstat(view / other)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed by the step
            if other not in copied and shown.st_ino != low.st_ino:
                continue  # replaced by something else
            os.unlink(view / other)
            os.link(view / keep, view / other, follow_symlinks=False)


@dataclass
class StepEvents:
    """Where step events go: ``emit`` gets one dict per event (``--json``), ``say``
    one line for people."""

    emit: Callable[[Event], None] = field(default=lambda _e: None)
    say: Callable[[str], None] = field(default=lambda _t: None)
    live: bool = False  # repeat a running step's line with its elapsed time
    position: str = ""  # " (2 of 4)": where the stage stands among the package's stages


def _summary(instruction: Instruction) -> str:
    text = escape(" ".join(instruction.original.split()))  # no terminal control from a tree
    return text if len(text) <= 80 else text[:77] + "..."


class ActionSteps:
    """The :class:`~rootseed.engine.stage.StepHook` of one stage run on an
    :class:`Executor`: each step's key, its cached result or its execution, and the
    events that tell people (and ``--json``) how it went."""

    def __init__(self, executor: Executor, base: Snapshot, *, package: str,
                 stage: str, platform: str, steps: int,
                 inputs: Callable[[FileStep], Mapping[str, str]], work: Path,
                 no_cache: bool = False, no_cache_from: int | None = None,
                 events: StepEvents | None = None,
                 stop: threading.Event | None = None) -> None:
        self.executor = executor
        self.snapshot = base
        self.package = package
        self.stage = stage
        self.platform = platform
        self.steps = steps
        self.inputs = inputs
        self.work = work
        self.no_cache = no_cache
        self.no_cache_from = no_cache_from
        self.events = events or StepEvents()
        self.stop = stop
        self.executed: list[int] = []  # step numbers that ran (not cache hits)
        self.hits: list[int] = []
        #: each action's result in order, empty ones too (the per-instruction layers an
        #: exporter writes: see engine/export_buildkit.py)
        self.results: list[dict[str, Any]] = []

    # -- keys ------------------------------------------------------------------------------
    def command(self, step: FileStep) -> Command:
        """The planned instruction as the key sees it: everything already expanded by the
        planner (to_json leaves out the line and text, which change nothing)."""
        return Command(step.keyword.upper(), to_json(step), self.platform)

    # -- the hook --------------------------------------------------------------------------
    def step(self, step: FileStep, number: int, op: Op) -> None:
        instruction = step.instruction
        action = Action(self.command(step), self.snapshot.digest, dict(self.inputs(step)),
                        builder_digest())
        key = action.key
        where = {"package": self.package, "stage": self.stage, "step": number,
                 "steps": self.steps, "line": instruction.line,
                 "instruction": _summary(instruction), "key": key}
        forced = self.no_cache or (self.no_cache_from is not None
                                   and number >= self.no_cache_from)
        hit = None if forced else self.executor.cached(self.snapshot, key)
        if hit is not None:
            self._record(hit, number)
            self.snapshot = hit.snapshot
            self.hits.append(number)
            self.events.emit({"event": "cached", **where, "seconds": 0.0})
            return
        self.events.emit({"event": "start", **where})
        head = f"stage {self.stage}{self.events.position}: step {number} of {self.steps}"
        log = op.log if isinstance(op, ExecOp) else None
        self.events.say(f"{head}: {_summary(instruction)}"
                        + (f" (log: {log})" if log is not None else ""))
        started = time.monotonic()
        stop = threading.Event()

        def tick() -> None:  # the live line of a long step: for how long, its last output
            while not stop.wait(TICK_SECONDS):
                shown = last_line(log) if log is not None else None
                self.events.say(f"{head}: {_summary(instruction)} "
                                f"({time.monotonic() - started:.0f}s)"
                                + (f": {shown}" if shown else ""))

        if self.events.live:
            threading.Thread(target=tick, daemon=True, name="rootseed-step-ticker").start()
        try:
            result = self.executor.execute(self.snapshot, op, key, work=self.work,
                                           stop=self.stop)
        except (RootseedError, OverlayError) as e:
            seconds = time.monotonic() - started
            self.events.emit({"event": "failed", **where, "seconds": round(seconds, 3),
                              "error": e.message})
            raise
        finally:
            stop.set()
        seconds = time.monotonic() - started
        self._record(result, number)
        self.snapshot = result.snapshot
        self.executed.append(number)
        origin = dict(result.origin or {})
        self.events.emit({"event": "end", **where, "seconds": round(seconds, 3),
                          "empty": result.empty, **origin})
        self.events.say(f"{head} done in {seconds:.2f}s{_origin_text(origin)}")

    def _record(self, result: LayerResult, number: int) -> None:
        """What each step added, in order (an exporter of one layer per instruction reads
        it from the stage entry)."""
        self.results.append({"step": number, "empty": result.empty,
                             "ref": None if result.layer is None else str(result.layer.ref),
                             "digest": None if result.layer is None else result.layer.digest,
                             **({"origin": dict(result.origin)} if result.origin else {})})


def _origin_text(origin: Mapping[str, object]) -> str:
    """Where a step ran, for people: " on worker-1", " (worker-1, remote cache)"."""
    if origin.get("executor") == "remote":
        return (f" ({origin.get('worker')}, remote cache)" if origin.get("remote_cached")
                else f" on {origin.get('worker')}")
    if origin.get("executor") == "local":
        return f" locally ({origin.get('reason')})"
    return ""
