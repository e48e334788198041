"""The executor: runs actions on copy-on-write snapshots (overlayfs) and caches them.

:class:`LayeredBackend` owns one :class:`~rootseed.sandbox.overlay.OverlayNamespace`
for a builder's lifetime: every action mounts its snapshot's layers read-only with a fresh
upper directory on top, runs (COPY/WORKDIR through the namespace's view of the merged
tree, RUN in bwrap started inside the namespace), unmounts, and the upper directory *is*
the action's layer (cost: what the step changed). Read-only views of finished snapshots
(``COPY --from``, image writing, output checks) are mounted once and kept.

:class:`ActionSteps` is the hook a :class:`~rootseed.engine.stage.StageRunner` calls for
each RUN/COPY/ADD/WORKDIR: key, cache lookup (a hit adds the cached layer and runs
nothing), or execution and commit. A build that fails at step N therefore resumes at
step N: the earlier actions are hits.
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

from rootseed.containerfile import Instruction
from rootseed.engine import fsops
from rootseed.engine.actions import Action, Command, builder_digest
from rootseed.engine.layers import walk
from rootseed.engine.snapshots import (
    MAX_LAYERS,
    ActionCache,
    ActionResult,
    Snapshot,
    Verifier,
)
from rootseed.engine.stage import FileStep, StageRunner
from rootseed.errors import RootseedError
from rootseed.plan import to_json
from rootseed.sandbox.logtail import escape
from rootseed.sandbox.overlay import OverlayError, OverlayNamespace

Event = dict[str, Any]
#: How often a running step's line is repeated with its elapsed time.
TICK_SECONDS = 30.0


class LayeredBackend:
    """Overlay mounts + the action cache of one builder (thread-safe)."""

    def __init__(self, ns: OverlayNamespace, cache_dir: Path, verifier: Verifier) -> None:
        self.ns = ns
        self.dir = cache_dir
        self.actions = ActionCache(cache_dir / "actions", verifier, self._drop_views)
        self.verifier = verifier
        self._views: dict[str, Path] = {}
        self._hardlinks = HardlinkRepair()
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()
        self.empty = cache_dir / "layers" / "empty"
        if not self.empty.is_dir():
            self.empty.mkdir(parents=True, exist_ok=True)
        os.chmod(self.empty, 0o755)
        self._view_root = cache_dir / "views" / secrets.token_hex(6)

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
        committed = self.actions.commit(tmp, name, name=f"flat-{name}")
        return Snapshot(snapshot.digest, (committed.layer,))

    def close(self) -> None:
        with self._lock:
            self._views.clear()
        self.ns.close()
        fsops.remove_tree(self._view_root)


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


def _summary(instruction: Instruction) -> str:
    text = escape(" ".join(instruction.original.split()))  # no terminal control from a tree
    return text if len(text) <= 80 else text[:77] + "..."


class ActionSteps:
    """The :class:`~rootseed.engine.stage.StepHook` of one stage run on layers."""

    def __init__(self, backend: LayeredBackend, base: Snapshot, *, package: str,
                 stage: str, platform: str, steps: int,
                 inputs: Callable[[FileStep], Mapping[str, str]],
                 no_cache: bool = False, no_cache_from: int | None = None,
                 events: StepEvents | None = None) -> None:
        self.backend = backend
        self.snapshot = base
        self.package = package
        self.stage = stage
        self.platform = platform
        self.steps = steps
        self.inputs = inputs
        self.no_cache = no_cache
        self.no_cache_from = no_cache_from
        self.events = events or StepEvents()
        self.executed: list[int] = []  # step numbers that ran (not cache hits)
        self.hits: list[int] = []

    # -- keys ------------------------------------------------------------------------------
    def command(self, step: FileStep) -> Command:
        """The planned instruction as the key sees it: everything already expanded by the
        planner (to_json leaves out the line and text, which change nothing)."""
        return Command(step.keyword.upper(), to_json(step), self.platform)

    # -- the hook --------------------------------------------------------------------------
    def step(self, runner: StageRunner, step: FileStep, number: int,
             apply: Callable[[], None]) -> None:
        instruction = step.instruction
        action = Action(self.command(step), self.snapshot.digest, dict(self.inputs(step)),
                        builder_digest())
        key = action.key
        where = {"package": self.package, "stage": self.stage, "step": number,
                 "steps": self.steps, "line": instruction.line,
                 "instruction": _summary(instruction), "key": key}
        forced = self.no_cache or (self.no_cache_from is not None
                                   and number >= self.no_cache_from)
        hit = None if forced else self.backend.actions.lookup(key)
        if hit is not None:
            self._advance(hit)
            self.hits.append(number)
            self.events.emit({"event": "cached", **where, "seconds": 0.0})
            return
        if len(self.snapshot.layers) >= MAX_LAYERS:
            self.snapshot = self.backend.flatten(self.snapshot)
        self.events.emit({"event": "start", **where})
        self.events.say(f"stage {self.stage}: step {number}/{self.steps}: "
                        f"{_summary(instruction)}")
        started = time.monotonic()

        def run_here(view: Path, mount_root: Path) -> None:
            runner.rootfs, runner.mount_root = view, mount_root
            runner.enter = self.backend.ns.enter()
            try:
                apply()
            finally:
                runner.rootfs, runner.mount_root, runner.enter = view, None, ()

        stop = threading.Event()

        def tick() -> None:  # the live line of a long step: still running, for how long
            while not stop.wait(TICK_SECONDS):
                self.events.say(f"stage {self.stage}: step {number}/{self.steps}: "
                                f"{_summary(instruction)} ({time.monotonic() - started:.0f}s)")

        if self.events.live:
            threading.Thread(target=tick, daemon=True, name="rootseed-step-ticker").start()
        try:
            result = self.backend.run_action(self.snapshot, key, run_here)
        except (RootseedError, OverlayError) as e:
            seconds = time.monotonic() - started
            self.events.emit({"event": "failed", **where, "seconds": round(seconds, 3),
                              "error": e.message})
            raise
        finally:
            stop.set()
        seconds = time.monotonic() - started
        self._advance(result)
        self.executed.append(number)
        self.events.emit({"event": "end", **where, "seconds": round(seconds, 3),
                          "empty": result.empty})
        self.events.say(f"stage {self.stage}: step {number}/{self.steps} done in "
                        f"{seconds:.2f}s")

    def _advance(self, result: ActionResult) -> None:
        if not result.empty:
            self.snapshot = self.snapshot.push(result.layer)

