"""The builder: packages in dependency order, stages as a DAG, cache, OCI output.

The parts, each in its own module: the planner (:mod:`rootseed.plan`, shared with
``check``) turns a Containerfile into typed stages; the scheduler
(:mod:`rootseed.engine.scheduler`) runs packages, and the stages of a package, as DAGs
with ``--jobs`` slots, cancellation and typed failures; the executor
(:mod:`rootseed.engine.executor`, :mod:`rootseed.engine.stage`) runs a stage's actions in
the sandbox on snapshots; the publisher (:mod:`rootseed.engine.publish`) writes verified
OCI layouts and provenance. What is left here: cache keys, parent images, and wiring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import __version__
from rootseed.console import err
from rootseed.engine import fsops, scheduler
from rootseed.engine.cache import BuildCache, CachedStage
from rootseed.engine.errors import Cancelled
from rootseed.engine.executor import ActionSteps, StepEvents
from rootseed.engine.executors import SNAPSHOT_MODES, RemoteTarget, open_executor
from rootseed.engine.export import SquashedExporter, image_request, layout_name
from rootseed.engine.export_buildkit import (
    choose_exporter,
    chosen_layout_name,
    fits,
    stage_actions,
)
from rootseed.engine.interface import Executor, ImageExporter, ImageIdent, SharedImages
from rootseed.engine.planner import NoCacheFrom, Node, PackagePlan
from rootseed.engine.publish import Publisher, check_outputs, layout_files, linked_dirs
from rootseed.engine.refs import LayerRef
from rootseed.engine.shared import SharedCache, why_refused
from rootseed.engine.slots import Slots
from rootseed.engine.snapshots import Layer, Snapshot, Verifier
from rootseed.engine.stage import FileStep, StageContext, StageRunner, StageState, step_log_name
from rootseed.engine.verify import layout_problem
from rootseed.errors import RootseedError
from rootseed.fetch import Fetcher
from rootseed.plan import (
    ImageRef,
    Plan,
    Scratch,
    StagePlan,
    StageRef,
)
from rootseed.provenance.record import BuildRecord, ParentImage, ResolvedSource
from rootseed.sandbox.spec import EnteredRoot
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT
from rootseed.tree import Package, Tree

__all__ = ["SNAPSHOT_MODES", "BuildOptions", "BuildResult", "Builder", "NoCacheFrom",
           "StageTree"]


@dataclass(frozen=True)
class BuildOptions:
    target: str | None = None  # for the packages named on the command line
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    jobs: int = 1
    debug: bool = False
    progress: bool = True
    #: wall-clock limit of one RUN step in seconds (None: none); never part of a cache key
    step_timeout: float | None = DEFAULT_STEP_TIMEOUT
    no_cache_from: NoCacheFrom | None = None  # for the packages named on the command line
    snapshots: str = "auto"
    #: receives one dict per step event (start, end, cached, failed) — ``--json``
    events: Callable[[dict[str, Any]], None] | None = None
    #: run RUN steps on this REAPI service (None: locally)
    remote: RemoteTarget | None = None


@dataclass(frozen=True)
class BuildResult:
    package: str
    image: Path  # <out>/<package>/ (OCI image layout)
    manifest_digest: str  # "sha256:<hex>"
    cached: bool  # nothing had to be executed
    record: BuildRecord
    stages_built: tuple[str, ...] = ()
    stages_cached: tuple[str, ...] = ()
    seconds: float = 0.0
    #: the image was taken whole from a shared cache: where from, who recorded it
    #: (engine/shared.py); None: built or taken from this builder's own cache
    shared: Mapping[str, object] | None = None

    def images(self) -> dict[str, tuple[Path, str]]:
        """The image this build wrote: image name → (layout, manifest digest). (A package
        is one image: StageX's subpackages are packages of their own.)"""
        return {self.package: (self.image, self.manifest_digest)}


@dataclass(frozen=True)
class StageTree:
    """A built stage's tree as other parts read it."""

    rootfs: Path  # read only
    #: an overlay view, visible from this process only: a sandbox cannot bind it from
    #: outside the executor's namespace (start it in :attr:`entered`, or copy the tree)
    view: bool = False
    #: where a sandbox binds the tree (None: ``rootfs`` as it is)
    entered: EnteredRoot | None = None


@dataclass(frozen=True)
class _Run:
    """What one :meth:`Builder.build` call shares between its packages and stages."""

    slots: Slots
    cancel: threading.Event
    keep_going: bool = False


class Builder:
    """Build packages of ``tree`` into ``out`` using ``cache_dir`` (see docs/architecture.md)."""

    def __init__(self, tree: Tree, *, cache_dir: Path, out: Path,
                 fetcher: Fetcher | None = None, mirrors: Sequence[Path] = (),
                 offline: bool = False, exporter: ImageExporter | None = None):
        self.tree = tree
        self._print_lock = threading.Lock()
        self.warnings: list[str] = []
        self.verifier = Verifier(self._warn)
        self.cache = BuildCache(cache_dir, self.verifier)
        self.out = out
        self.publisher = Publisher(out, self.cache, self._warn)
        self.executor: Executor | None = None
        self.exporter: ImageExporter = exporter or SquashedExporter()
        self._executor_mode: tuple[str, RemoteTarget | None] | None = None
        self.fetcher = fetcher or Fetcher(cache_dir, mirrors, offline=offline, progress=False,
                                          base_dir=tree.root)

    def _warn(self, text: str) -> None:
        with self._print_lock:  # stages and packages warn from threads of their own
            if text in self.warnings:
                return
            self.warnings.append(text)
            err.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)

    def _snapshots(self, options: BuildOptions) -> Executor:
        """The executor for ``options.snapshots`` (opened once per mode)."""
        mode = (options.snapshots, options.remote)
        if self.executor is not None and self._executor_mode == mode:
            return self.executor
        self.close()
        executor = open_executor(options.snapshots, self.cache.store,
                                 lambda text: self._say(options, text), options.remote)
        self.executor, self._executor_mode = executor, mode
        return executor

    def close(self) -> None:
        """End the executor (an overlay namespace's read-only views go with it)."""
        if self.executor is not None:
            self.executor.close()
        self.executor = None
        self._executor_mode = None

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------
    def build(self, names: Iterable[str], options: BuildOptions | None = None
              ) -> list[BuildResult]:
        """Build ``names`` and everything they need; results in build order. The first
        failure stops the build and is raised (its consequences are not)."""
        report = self._run_packages(list(names), options or BuildOptions(), keep_going=False)
        report.raise_first()
        return [report.results[name] for name in report.order]

    def build_each(self, names: Iterable[str], options: BuildOptions | None = None,
                   on_settled: Callable[[str, BuildResult | BaseException, float], None]
                   | None = None) -> scheduler.Report[str, BuildResult]:
        """Build ``names`` and what they need, going on past failures: a package whose
        dependency failed is blocked (:class:`~rootseed.engine.errors.DependencyFailed`),
        the others are built side by side within ``--jobs``."""
        return self._run_packages(list(names), options or BuildOptions(), keep_going=True,
                                  on_settled=on_settled)

    def _run_packages(self, names: list[str], options: BuildOptions, *, keep_going: bool,
                      on_settled: Callable[[str, BuildResult | BaseException, float], None]
                      | None = None) -> scheduler.Report[str, BuildResult]:
        requested = list(dict.fromkeys(names))
        for name in requested:
            self.tree.get(name)
        order = self.tree.order(requested)
        self._snapshots(options)
        run = _Run(Slots(options.jobs), threading.Event(), keep_going)
        tasks: list[scheduler.Task[str, BuildResult]] = []
        for name in order:
            wanted = name in requested
            opts = options if wanted else dataclasses.replace(options, no_cache_from=None)
            tasks.append(scheduler.Task(
                key=name, needs=frozenset(self.tree.get(name).deps),
                work=self._package_work(name, options.target if wanted else None, opts, run)))
        return scheduler.run(tasks, keep_going=keep_going, cancel=run.cancel,
                             name="rootseed-pkg", on_settled=on_settled,
                             on_interrupt=self._interrupted)

    def _interrupted(self, packages: Sequence[str]) -> None:
        """Ctrl-C (or SIGTERM): say why the build has not ended at once (running steps
        are being killed and their work directories removed; nothing starts after them,
        and nothing half-written is left)."""
        with self._print_lock:
            err.print(f"interrupted: stopping; waiting for the running steps of "
                      f"{', '.join(packages)} to end", markup=False, highlight=False,
                      soft_wrap=True)

    def _package_work(self, name: str, target: str | None, options: BuildOptions, run: _Run
                      ) -> Callable[[Mapping[str, BuildResult]], BuildResult]:
        def work(deps: Mapping[str, BuildResult]) -> BuildResult:
            # with keep_going, a failing package cancels only its own stages (and all of
            # them stop with the whole run: Ctrl-C)
            own = _Run(run.slots, scheduler.LinkedEvent(run.cancel)) if run.keep_going \
                else run
            return _PackageBuild(self, self.tree.get(name), deps, target, options, own).run()
        return work

    def plan(self, package: str, target: str | None = None,
             options: BuildOptions | None = None) -> Plan:
        """The plan a build of ``package`` executes (its dependencies are built first, as
        a stage FROM another package's image starts from that image's configuration)."""
        options = options or BuildOptions(progress=False)
        pkg = self.tree.get(package)
        deps = {r.package: r for r in self.build(pkg.deps, options)} if pkg.deps else {}
        run = _Run(Slots(options.jobs), threading.Event())
        return _PackageBuild(self, pkg, deps, target, options, run).plan

    def stage(self, package: str, stage: str, options: BuildOptions | None = None
              ) -> CachedStage:
        """One stage of ``package``: its cache entry, built first if needed.

        After a build of the package this is a cache hit (stages are cached by key). The
        package's own output ``<out>/<package>/`` is not written; packages it depends on
        are built as :meth:`build` builds them.
        """
        options = options or BuildOptions(progress=False)
        pkg = self.tree.get(package)
        deps = {r.package: r for r in self.build(pkg.deps, options)} if pkg.deps else {}
        executor = self._snapshots(options)
        run = _Run(Slots(options.jobs), threading.Event())
        build = _PackageBuild(self, pkg, deps, stage, options, run)
        hit = None if options.no_cache else self.cache.lookup(
            build.nodes[build.target.index].key, executor)
        return hit if hit is not None else build.execute()

    def stage_tree(self, package: str, stage: str, options: BuildOptions | None = None
                   ) -> StageTree:
        """One stage's tree (see :meth:`stage`): read it, never change it."""
        options = options or BuildOptions(progress=False)
        entry = self.stage(package, stage, options)
        if entry.snapshot is None:
            return StageTree(entry.rootfs)
        return StageTree(entry.rootfs, view=True,
                         entered=self._snapshots(options).entered(entry.snapshot))

    def image_rootfs(self, layout: Path, digest: str) -> Path:
        """The tree of the image ``digest`` in ``layout``, unpacked once into the cache
        (verified before each reuse): read it, never change it."""
        return self.cache.rootfs(layout, digest)

    def scratch(self) -> contextlib.AbstractContextManager[Path]:
        """A private scratch directory in the cache, removed afterwards."""
        return self.cache.workdir()

    @property
    def log_root(self) -> Path:
        """Where step logs go (``<cache>/logs/<package>/``)."""
        return self.cache.logs

    def step_log(self, package: str, stage: str, line: int) -> Path:
        """The log the last run of the RUN at ``line`` of ``package``'s ``stage`` wrote in
        this cache (it may be missing, and it is as hostile as the cache)."""
        return self.cache.logs / package / step_log_name(stage, line)

    def fetch_sources(self, package: str) -> dict[str, Path]:
        """``package``'s pinned sources, fetched and verified: source id → file."""
        return self.fetcher.fetch_package(self.tree.get(package))

    def stage_rootfs(self, package: str, stage: str, options: BuildOptions | None = None
                     ) -> Path:
        """The root filesystem of one stage of ``package`` (see :meth:`stage`), as the
        cache keeps it: read it, never change it."""
        return self.stage(package, stage, options).rootfs

    def _say(self, options: BuildOptions, text: str) -> None:
        if options.progress:
            with self._print_lock:
                err.print(text, markup=False, highlight=False, soft_wrap=True)


class _PackageBuild:
    """One package's image: plan, keys, stages through the scheduler, then publish."""

    def __init__(self, builder: Builder, package: Package, deps: Mapping[str, BuildResult],
                 target: str | None, options: BuildOptions, run: _Run):
        self.b = builder
        self.pkg = package
        self.deps = deps
        self.options = options
        self.run_ = run
        # everything decided before anything runs (engine/planner.py)
        self.planned = PackagePlan(
            builder.tree, package, {name: r.images() for name, r in deps.items()}, target,
            build_args=options.build_args, no_cache_from=options.no_cache_from)
        self.display = self.planned.display
        self.build_args = self.planned.build_args
        self.parents = self.planned.parents
        self.plan = self.planned.plan
        self.target = self.planned.target
        self.context_files = self.planned.context_files
        self.nodes = self.planned.nodes
        self.forced = self.planned.forced
        self.urgency = self.planned.urgency
        self.built: list[str] = []
        self.cached: list[str] = []
        self._lists = threading.Lock()
        #: the target's image came whole from a shared cache (its origin)
        self.shared: dict[str, object] | None = None

    def say(self, text: str) -> None:
        self.b._say(self.options, f"{self.pkg.name}: {text}")

    @property
    def executor(self) -> Executor:
        """The builder's executor (opened before any stage runs)."""
        assert self.b.executor is not None
        return self.b.executor

    def _emit(self, event: dict[str, Any]) -> None:
        """One step event to ``options.events``: one at a time, as stages and packages
        run in threads (their lines must never interleave)."""
        if self.options.events is not None:
            with self.b._print_lock:
                self.options.events(event)

    def _position(self, node: Node) -> str:
        """`` (2 of 4)``: the stage's place among the stages this build needs."""
        order = sorted(self.nodes)
        return f" ({order.index(node.stage.index) + 1} of {len(order)})" \
            if node.stage.index in self.nodes else ""

    def describe(self, index: int) -> str:
        return f"{self.pkg.name}: stage {self.nodes[index].stage.label}"

    # -- running -----------------------------------------------------------------------
    def run(self) -> BuildResult:
        """Build the package's image (its ``[outputs]`` checked), then publish it."""
        started = time.monotonic()
        final = self._final()
        check_outputs(self.pkg, final, self.b.out)
        assert final.manifest_digest is not None
        record = self._record(final.manifest_digest)
        image = self.b.publisher.publish(self.pkg.name, final, record)
        if self.built and self.shared is None:
            self._share(final)
        seconds = time.monotonic() - started
        result = BuildResult(
            package=self.pkg.name, image=image, manifest_digest=record.manifest_digest,
            cached=not self.built, record=record, stages_built=tuple(dict.fromkeys(self.built)),
            stages_cached=tuple(s for s in dict.fromkeys(self.cached) if s not in self.built),
            seconds=seconds, shared=self.shared)
        state = "cached" if result.cached else f"built ({len(result.stages_built)} stages)"
        self.say(f"{state} {result.manifest_digest} in {seconds:.2f}s")
        return result

    @property
    def _uncached(self) -> bool:
        """``--no-cache``, or ``--no-cache-from`` forcing stages: the target is built
        again, from no cache of any kind, and its image is no claim to share."""
        return self.options.no_cache or bool(self.forced)

    # -- images shared with other builders (engine/shared.py) ----------------------------
    def _shared_ident(self) -> tuple[SharedImages, ImageIdent] | None:
        images = self.executor.shared_images()
        if images is None:
            return None
        name = chosen_layout_name(self.b.exporter, self.b.tree.namespace, self.executor)
        return images, ImageIdent(self.nodes[self.target.index].key, name, self.pkg.name)

    def _take_shared(self) -> CachedStage | None:
        """The target's image taken whole from the executor's shared cache, when another
        builder recorded it there (None: build it; also when what is recorded is refused,
        with a warning: the build then records its own image in its place)."""
        found = self._shared_ident()
        if found is None:
            return None
        images, ident = found
        try:
            taken = SharedCache(self.b.cache).take(images, ident)
            if taken is None:
                return None
            final = CachedStage(key=ident.key, state={}, entry=taken.layout.parent,
                                layout=taken.layout, manifest_digest=taken.manifest_digest,
                                # [outputs] are checked on the image's own tree
                                tree=self.b.image_rootfs(taken.layout, taken.manifest_digest)
                                if self.pkg.outputs else None)
            # an image that fails the package's own pins is refused as well
            check_outputs(self.pkg, final, self.b.out)
        except (RootseedError, OSError) as e:  # refused, unreadable, or no room to take
            # it (a record may name any blobs the CAS has): never used, built instead
            self.b._warn(f"{self.pkg.name}: the image recorded on {images.where} was not "
                         f"taken: {why_refused(e)}; building it step by step instead")
            return None
        self.shared = dict(taken.origin)
        self.cached.append(self.target.label)
        self.say(f"image {taken.manifest_digest} {'' if taken.fetched else '(kept) '}taken "
                 f"from {images.where} (recorded by {taken.origin.get('worker', '?')}; a "
                 "claim: `rootseed challenge` rebuilds it)")
        self._emit({"event": "image", "package": self.pkg.name, "stage": self.target.label,
                    "manifest_digest": taken.manifest_digest, **taken.origin,
                    "fetched": taken.fetched})
        return final

    def _share(self, final: CachedStage) -> None:
        """Record the image this build made for other builders (a failure is a warning:
        the build itself is done)."""
        found = None if self._uncached else self._shared_ident()
        if found is None or final.layout is None or final.manifest_digest is None:
            return
        images, ident = found
        if final.layout.name != ident.layout:
            return  # another exporter's layout than a builder would ask for
        try:
            images.store(ident, final.layout, layout_files(final.layout,
                                                           final.manifest_digest))
        except (RootseedError, OSError, ValueError, KeyError, TypeError) as e:
            self.b._warn(f"{self.pkg.name}: the image was not recorded on {images.where} "
                         f"for other builders: {why_refused(e)}")

    def _final(self) -> CachedStage:
        """The target stage's cache entry with its OCI layout (built first if needed)."""
        key = self.nodes[self.target.index].key
        hit = None if self._uncached else self.b.cache.lookup(key, self.executor)
        if hit is not None:
            self.cached.append(self.target.label)
            final = hit
        elif not self._uncached and (taken := self._take_shared()) is not None:
            return taken  # verified as a whole layout; exported by another builder
        else:
            final = self.execute()
        final = self._with_image(final)
        assert final.layout is not None
        problem = linked_dirs(final.layout) or layout_problem(final.layout,
                                                              self.b.cache.dir / "seals")
        if problem is not None:  # the cached image was changed: never publish it
            self.b._warn(f"cached image {final.layout}: {problem}; writing it again")
            final = self._with_image(final, replace=True)
        elif not fits(self._exporter(final)):  # another package's image of the stage
            final = self._with_image(final, replace=True)
        return final

    def _with_image(self, final: CachedStage, *, replace: bool = False) -> CachedStage:
        """``final`` with its image, exported once into its cache entry."""
        exporter = self._exporter(final)
        name = layout_name(exporter)
        with self.b.cache.image_slot(final, self.executor, name=name,
                                     replace=replace) as target:
            if target is not None:
                exporter.export(image_request(
                    final.rootfs, final.snapshot, StageState.from_json(final.state["config"]),
                    self.plan.platform, self.pkg.version), target)
        return self.b.cache.with_image(final, self.executor, name=name)

    def _exporter(self, final: CachedStage) -> ImageExporter:
        """How the image is written: BuildKit's layers for a StageX tree (on layered
        snapshots), the builder's exporter (rootseed's squashed one) otherwise
        (engine/export_buildkit.py)."""
        return choose_exporter(self.b.exporter, self.b.tree.namespace, self.pkg, self.plan,
                               {r: p.layout for r, p in self.parents.items()},
                               self.executor, self.b.cache.store, final, self.b._warn)

    def execute(self) -> CachedStage:
        """Fetch the sources, then run the stages the target needs (cache hits first)."""
        with self.b.cache.workdir() as work:
            fetch_dir = work / "fetch"
            fetch_dir.mkdir()
            if self.pkg.sources:
                self.say("fetching sources")
                for sid, path in self.b.fetcher.fetch_package(self.pkg).items():
                    link = fetch_dir / self.pkg.source(sid).file
                    try:
                        os.link(path, link)
                    except OSError:
                        link.write_bytes(path.read_bytes())
            tasks = [scheduler.Task(
                key=index, needs=node.needs, priority=self.urgency[index],
                work=self._stage_work(index, work, fetch_dir))
                for index, node in self.nodes.items()]
            report = scheduler.run(tasks, cancel=self.run_.cancel,
                                   name=f"rootseed-{self.pkg.name}", describe=self.describe)
            report.raise_first()
            return report.results[self.target.index]

    def _stage_work(self, index: int, work: Path, fetch_dir: Path
                    ) -> Callable[[Mapping[int, CachedStage]], CachedStage]:
        def run(needed: Mapping[int, CachedStage]) -> CachedStage:
            node = self.nodes[index]
            with self.b.cache.lock(f"build-{node.key}"):
                if not self.options.no_cache and index not in self.forced:
                    hit = self.b.cache.lookup(node.key, self.executor)
                    if hit is not None:
                        with self._lists:
                            self.cached.append(node.stage.label)
                        return hit
                with self.run_.slots.hold(self.urgency[index]):
                    if self.run_.cancel.is_set():
                        raise Cancelled(f"{self.describe(index)} stopped because another "
                                        "step failed")
                    self.say(f"stage {node.stage.label}: building")
                    entry = self._build_stage(node, needed, work, fetch_dir)
                with self._lists:
                    self.built.append(node.stage.label)
                return entry
        return run

    def _source_root(self, needed: Mapping[int, CachedStage]
                     ) -> Callable[[StageRef | ImageRef], Path]:
        def source_root(ref: StageRef | ImageRef) -> Path:
            if isinstance(ref, StageRef):
                return needed[ref.index].rootfs  # read only (a view with overlay)
            image = self.parents[ref.reference]
            return self.b.cache.rootfs(image.layout, image.digest)
        return source_root

    def _context(self, stage_dir: Path, needed: Mapping[int, CachedStage], fetch_dir: Path,
                 steps: ActionSteps) -> StageContext:
        return StageContext(
            package=self.pkg.name, display=self.display, context_dir=self.pkg.directory,
            fetch_dir=fetch_dir, work=stage_dir, log_dir=self.b.cache.logs / self.pkg.name,
            source_root=self._source_root(needed), debug=self.options.debug,
            cancelled=self.run_.cancel, step_timeout=self.options.step_timeout, steps=steps,
            platform=str(self.plan.platform))

    def _stage_base(self, stage: StagePlan, needed: Mapping[int, CachedStage]) -> Snapshot:
        """The snapshot a stage starts from (its configuration comes from the plan)."""
        if isinstance(stage.base, Scratch):
            return Snapshot.base("scratch")
        if isinstance(stage.base, StageRef):
            parent = needed[stage.base.index]
            if parent.snapshot is not None:
                return parent.snapshot
            # an entry holding its whole tree (made by the copy executor)
            ref = LayerRef.stage(parent.key)
            return Snapshot.base(str(ref), (Layer(parent.rootfs, str(parent.state["content"]),
                                                  ref),))
        image = self.parents[stage.base.reference]
        layer = self.b.cache.image_layer(image.layout, image.digest)
        return Snapshot.base(f"image:{image.digest}", (layer,))

    def _inputs(self, needed: Mapping[int, CachedStage]) -> Callable[[FileStep], dict[str, str]]:
        """The digests of what a step reads besides its snapshot (for its action key)."""
        def snapshot_digest(index: int) -> str:
            used = needed[index]
            return used.snapshot.digest if used.snapshot else used.key

        def inputs(step: FileStep) -> dict[str, str]:
            return self.planned.inputs(step, snapshot_digest)
        return inputs

    def _build_stage(self, node: Node, needed: Mapping[int, CachedStage],
                     work: Path, fetch_dir: Path) -> CachedStage:
        """Run a stage as actions on snapshots, by the builder's executor (see
        engine/interface.py)."""
        executor = self.executor
        stage = node.stage
        stage_dir = work / f"stage-{stage.index}"
        stage_dir.mkdir()
        base = self._stage_base(stage, needed)
        steps = ActionSteps(
            executor, base, package=self.pkg.name, stage=stage.label,
            platform=str(self.plan.platform), steps=len(stage.steps),
            inputs=self._inputs(needed), work=stage_dir, no_cache=self.options.no_cache,
            no_cache_from=self.forced.get(stage.index),
            events=StepEvents(emit=self._emit, say=self.say, live=self.options.progress,
                              position=self._position(node)),
            stop=self.run_.cancel)
        state = StageRunner(self._context(stage_dir, needed, fetch_dir, steps), stage).execute()
        entry = work / f"entry-{stage.index}"
        entry.mkdir()
        executor.keep(steps.snapshot, entry)
        fsops.remove_tree(stage_dir)
        meta = {"package": self.pkg.name, "stage": stage.label, "config": state.to_json(),
                "actions": stage_actions(stage, needed, steps.results)}
        replace = self.options.no_cache or stage.index in self.forced
        if executor.layered:
            return self.b.cache.commit_snapshot(entry, node.key, meta, steps.snapshot,
                                                executor, replace=replace)
        # The finished tree is the entry's snapshot as it is (a rename, no copy); an image
        # is written only for a stage that is a build's image.
        return self.b.cache.commit(entry, node.key, meta, executor, replace=replace)

    # -- provenance --------------------------------------------------------------------
    def _record(self, digest: str) -> BuildRecord:
        used = {p.reference: p for p in self.parents.values()}
        return BuildRecord(
            package=self.pkg.name, version=self.pkg.version, namespace=self.b.tree.namespace,
            containerfile_sha256=hashlib.sha256(self.pkg.containerfile.read_bytes()).hexdigest(),
            target=(self.target.label if self.plan.target != len(self.plan.stage_names) - 1
                    else None),
            build_args=dict(sorted(self.build_args.items())),
            sources=tuple(ResolvedSource(id=s.id, file=s.file, sha256=s.hash,
                                         uri=s.mirrors[0] if s.mirrors else "", seed=s.seed)
                          for s in self.pkg.sources),
            parents=tuple(ParentImage(package=p.package, reference=p.reference,
                                      manifest_digest=p.digest)
                          for _, p in sorted(used.items())),
            manifest_digest=digest, rootseed_version=__version__,
            context_files=dict(self.context_files))
