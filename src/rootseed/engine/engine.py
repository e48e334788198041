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

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rootseed import __version__
from rootseed.console import canonical_json, err
from rootseed.containerfile import parse_file
from rootseed.engine import fsops, scheduler
from rootseed.engine.actions import builder_digest
from rootseed.engine.cache import BuildCache, CachedStage
from rootseed.engine.errors import Cancelled
from rootseed.engine.executor import ActionSteps, LayeredBackend, StepEvents
from rootseed.engine.publish import Publisher, check_outputs, image_writer, linked_dirs
from rootseed.engine.record import BuildRecord, ParentImage, ResolvedSource
from rootseed.engine.slots import Slots
from rootseed.engine.snapshots import Layer, Snapshot, Verifier
from rootseed.engine.stage import FileStep, StageContext, StageRunner
from rootseed.engine.verify import layout_problem
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fetch import Fetcher
from rootseed.oci import read_image
from rootseed.plan import (
    ContextPath,
    CopySource,
    FetchPath,
    ImageRef,
    ImageSettings,
    InlineFile,
    Plan,
    PlanError,
    PlannedCopy,
    PlannedRun,
    Scratch,
    StagePath,
    StagePlan,
    StageRef,
    plan_package,
    to_json,
)
from rootseed.plan.planner import DEFAULT_PATH
from rootseed.sandbox.overlay import OverlayUnavailable, probe
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT
from rootseed.tree import Package, Tree
from rootseed.tree.references import strip_tag


@dataclass(frozen=True)
class NoCacheFrom:
    """``--no-cache-from [STAGE:]N``: step N (1-based, as ``step N/M`` counts the
    stage's instructions) of STAGE (default: the target stage) and everything after it,
    and every stage built on it, run again; earlier steps may be cache hits."""

    step: int
    stage: str | None = None

    @classmethod
    def parse(cls, text: str) -> NoCacheFrom:
        stage, _, number = text.rpartition(":")
        if not number.isdigit() or int(number) < 1:
            raise RootseedError(f"--no-cache-from {text!r}: expected N or STAGE:N (N >= 1)",
                                hint="N counts the stage's instructions from 1, as the "
                                     "build's `step N/M` lines do")
        return cls(int(number), stage or None)


#: How snapshots are made: "auto" (overlay where the kernel allows it, else copies),
#: "overlay" (required) or "copy" (today's full copies per stage).
SNAPSHOT_MODES = ("auto", "overlay", "copy")


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

    def images(self) -> dict[str, tuple[Path, str]]:
        """The image this build wrote: image name → (layout, manifest digest). (A package
        is one image: StageX's subpackages are packages of their own.)"""
        return {self.package: (self.image, self.manifest_digest)}


@dataclass(frozen=True)
class _Parent:
    reference: str
    package: str
    layout: Path
    digest: str


class _Input(StrEnum):
    """What a COPY source reads (its digest goes into the step's key)."""

    CONTEXT = "context"
    FETCH = "fetch"
    STAGE = "stage"
    IMAGE = "image"


@dataclass(frozen=True)
class _Node:
    """One stage to run: its plan, cache key and the stages it needs."""

    stage: StagePlan
    key: str
    needs: frozenset[int]


@dataclass(frozen=True)
class _Run:
    """What one :meth:`Builder.build` call shares between its packages and stages."""

    slots: Slots
    cancel: threading.Event
    keep_going: bool = False


def _sha(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


class Builder:
    """Build packages of ``tree`` into ``out`` using ``cache_dir`` (see docs/architecture.md)."""

    def __init__(self, tree: Tree, *, cache_dir: Path, out: Path,
                 fetcher: Fetcher | None = None, mirrors: Sequence[Path] = (),
                 offline: bool = False):
        self.tree = tree
        self._print_lock = threading.Lock()
        self.warnings: list[str] = []
        self.verifier = Verifier(self._warn)
        self.cache = BuildCache(cache_dir, self.verifier)
        self.out = out
        self.publisher = Publisher(out, self.cache, self._warn)
        self._backend: LayeredBackend | None = None
        self._backend_mode: str | None = None
        self.snapshot_mode = "copy"  # what the last build used: "overlay" or "copy"
        self.fetcher = fetcher or Fetcher(cache_dir, mirrors, offline=offline, progress=False,
                                          base_dir=tree.root)

    def _warn(self, text: str) -> None:
        with self._print_lock:  # stages and packages warn from threads of their own
            if text in self.warnings:
                return
            self.warnings.append(text)
            err.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)

    def _snapshots(self, options: BuildOptions) -> None:
        """Start the overlay namespace (once) or fall back to copies, and say so."""
        if options.snapshots not in SNAPSHOT_MODES:
            raise RootseedError(f"unknown snapshot mode {options.snapshots!r}",
                                hint="use " + ", ".join(SNAPSHOT_MODES))
        if self._backend_mode == options.snapshots:
            return
        self.close()
        self._backend_mode = options.snapshots
        if options.snapshots == "copy":
            self.snapshot_mode = "copy"
            return
        try:
            ns = probe(self.cache.dir / "work")
        except OverlayUnavailable as e:
            if options.snapshots == "overlay":
                raise
            self._say(options, f"copy-on-write snapshots are not available here ({e.message}); "
                               "copying whole snapshots per stage instead (slower; a failed "
                               "stage starts again from its first step)")
            self.snapshot_mode = "copy"
            return
        self._backend = LayeredBackend(ns, self.cache.dir, self.verifier)
        self.cache.layers = self._layer
        self.cache.view = self._backend.view
        self.snapshot_mode = "overlay"

    def _layer(self, ref: str, digest: str) -> Layer | None:
        """A layer named by a stage entry, verified (None: missing or damaged)."""
        assert self._backend is not None
        kind, _, name = ref.partition(":")
        if kind == "image":
            path = self.cache.images / name / "rootfs"
            if not path.is_dir():
                return None  # pruned: a miss
            return Layer(path, digest, ref) if self.verifier.check(path, digest, ref[:22]) \
                else None
        return self._backend.actions.layer(ref, digest)

    def close(self) -> None:
        """End the overlay namespace (its read-only views go with it)."""
        if self._backend is not None:
            self._backend.close()
        self._backend = None
        self._backend_mode = None
        self.cache.layers = None
        self.cache.view = None

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
        """Ctrl-C: say why the build has not ended yet (a running step is not cut short;
        nothing starts after it, and nothing half-written is left)."""
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
        self._snapshots(options)
        run = _Run(Slots(options.jobs), threading.Event())
        build = _PackageBuild(self, pkg, deps, stage, options, run)
        hit = None if options.no_cache else self.cache.lookup(
            build.nodes[build.target.index].key)
        return hit if hit is not None else build.execute()

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
        try:
            display = package.containerfile.relative_to(builder.tree.root.parent).as_posix()
        except ValueError:
            display = str(package.containerfile)
        self.display = display
        self.build_args = {**package.build_args(), **options.build_args}
        self.parents: dict[str, _Parent] = {}
        self.plan = self._make_plan(target if target is not None else package.target)
        self.target = self.plan.target_stage
        self.context_files = fsops.hash_tree(self.pkg.directory)
        context_modes = {rel: fsops.mode_bits(self.pkg.directory, rel)
                         for rel in self.context_files}
        self.context_key = _sha({"files": self.context_files, "modes": context_modes})
        self.sources_key = _sha({s.file: s.hash for s in self.pkg.sources})
        self.nodes = self._nodes()
        self.forced = self._forced()
        self.urgency = self._urgency()
        self.built: list[str] = []
        self.cached: list[str] = []
        self._lists = threading.Lock()

    def say(self, text: str) -> None:
        self.b._say(self.options, f"{self.pkg.name}: {text}")

    def _emit(self, event: dict[str, Any]) -> None:
        """One step event to ``options.events``: one at a time, as stages and packages
        run in threads (their lines must never interleave)."""
        if self.options.events is not None:
            with self.b._print_lock:
                self.options.events(event)

    def describe(self, index: int) -> str:
        return f"{self.pkg.name}: stage {self.nodes[index].stage.label}"

    # -- planning ----------------------------------------------------------------------
    def _make_plan(self, target: str | None) -> Plan:
        """The package's plan (the one planner: rootseed.plan), made twice: first to learn
        which images it starts from, then with those images' configurations (ENV,
        WORKDIR, USER), as BuildKit reads a base image's config before dispatching."""
        cf = parse_file(self.pkg.containerfile, display=self.display)
        first = self._planned(lambda: plan_package(
            self.pkg, build_args=self.options.build_args, target=target, containerfile=cf))
        for ref, line in first.images():
            self._parent(ref.reference, line)
        bases = {s.base.reference for s in first.stages if isinstance(s.base, ImageRef)}
        configs = {ref: self._image_settings(self.parents[ref]) for ref in sorted(bases)}
        return self._planned(lambda: plan_package(
            self.pkg, build_args=self.options.build_args, target=target, containerfile=cf,
            base_images=configs))

    def _planned(self, make: Callable[[], Plan]) -> Plan:
        try:
            return make()
        except PlanError as e:
            if e.package is not None:  # the message names the package already
                raise
            raise PlanError(f"{self.pkg.name}: {e.message}", hint=e.hint,
                            package=self.pkg.name) from e

    @staticmethod
    def _image_settings(parent: _Parent) -> ImageSettings:
        config = read_image(parent.layout).config
        return ImageSettings(
            env=tuple((e.partition("=")[0], e.partition("=")[2]) for e in config.env),
            workdir=config.working_dir, user=config.user, entrypoint=config.entrypoint,
            cmd=config.cmd, labels=tuple(sorted(config.labels.items())))

    def _parent(self, ref: str, line: int) -> _Parent:
        if ref in self.parents:
            return self.parents[ref]
        dep = self.b.tree.package_for_image(ref)
        image = strip_tag(ref).removeprefix(self.b.tree.namespace + "/")
        result = self.deps.get(dep) if dep is not None else None
        if result is None or image not in result.images():
            raise RootseedError(
                f"{self.pkg.name}: {self.display}:{line}: image {ref!r} is not built by this "
                f"tree (namespace {self.b.tree.namespace!r})",
                hint="rootseed never pulls images: refer to another package as "
                     f"{self.b.tree.namespace}/<stage>-<name>, or to a stage of this file",
                kind=ErrorKind.PLAN, package=self.pkg.name, file=self.display, line=line)
        layout, digest = result.images()[image]
        parent = _Parent(reference=ref, package=image, layout=layout, digest=digest)
        self.parents[ref] = parent
        return parent

    def _nodes(self) -> dict[int, _Node]:
        """The stages the target needs, each with its cache key (needs first)."""
        reachable = self.plan.reachable()
        needs = {i: frozenset(self.plan.get(i).needs()) for i in reachable}
        try:
            order = scheduler.check_graph(needs)
        except scheduler.CycleError as e:
            first = self.plan.get(next(i for i in reachable if i in e.cycle))
            raise RootseedError(f"{self.pkg.name}: {self.display}: stages depend on each "
                                f"other in a cycle (stage {first.label})") from e
        nodes: dict[int, _Node] = {}
        for index in order:
            stage = self.plan.get(index)
            nodes[index] = _Node(stage, self._key(stage, nodes), needs[index])
        return dict(sorted(nodes.items()))

    def _key(self, stage: StagePlan, done: Mapping[int, _Node]) -> str:
        """A stage's cache key: the builder's code, platform, build args, version, base
        and every planned instruction with the digests of what it reads."""
        base: str
        if isinstance(stage.base, Scratch):
            base = "scratch"
        elif isinstance(stage.base, StageRef):
            base = "stage:" + done[stage.base.index].key
        else:
            base = "image:" + self.parents[stage.base.reference].digest
        steps: list[dict[str, Any]] = []
        for step in stage.steps:
            data: dict[str, Any] = {"step": to_json(step)}
            if isinstance(step, PlannedCopy):
                read = (self._input(source, lambda i: done[i].key) for source in step.sources)
                data["inputs"] = [f"{r[0]}:{r[1]}" for r in read if r is not None]
            steps.append(data)
        return _sha({
            "builder": builder_digest(), "platform": str(self.plan.platform),
            "args": self.build_args, "version": self.pkg.version, "base": base,
            "steps": steps,
        })

    def _input(self, source: CopySource, stage_digest: Callable[[int], str]
               ) -> tuple[_Input, str] | None:
        """What a COPY source reads, and the digest that stands for it (None: a heredoc,
        whose text is part of the planned step itself)."""
        if isinstance(source, InlineFile):
            return None
        if isinstance(source, ContextPath):
            return _Input.CONTEXT, self.context_key
        if isinstance(source, FetchPath):
            return _Input.FETCH, self.sources_key
        if isinstance(source, StagePath):
            return _Input.STAGE, stage_digest(source.stage.index)
        return _Input.IMAGE, self.parents[source.image.reference].digest

    def _forced(self) -> dict[int, int]:
        """``--no-cache-from``: the stages it forces to run again, and from which step
        (stages built on a forced stage run again from their first step)."""
        ncf = self.options.no_cache_from
        if ncf is None:
            return {}
        labels = {n.stage.label: i for i, n in self.nodes.items()}
        index = self.target.index if ncf.stage is None else labels.get(ncf.stage.lower())
        if index is None:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: no stage {ncf.stage!r} "
                                "in this build", hint="stages built: " + ", ".join(labels))
        steps = len(self.nodes[index].stage.steps)
        if ncf.step > steps:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: stage "
                                f"{self.nodes[index].stage.label} has {steps} steps, "
                                f"not {ncf.step}")
        forced = {index: ncf.step}
        for i in scheduler.check_graph({i: n.needs for i, n in self.nodes.items()}):
            if i not in forced and self.nodes[i].needs & forced.keys():
                forced[i] = 1
        return forced

    def _urgency(self) -> dict[int, float]:
        """Each stage's longest path to the target, counted in RUN steps (a stand-in for
        work): with fewer ``--jobs`` than ready stages, the critical path goes first."""
        weight = {i: sum(isinstance(x, PlannedRun) for x in n.stage.steps) + 0.1
                  for i, n in self.nodes.items()}
        return scheduler.critical_path({i: n.needs for i, n in self.nodes.items()}, weight)

    # -- running -----------------------------------------------------------------------
    def run(self) -> BuildResult:
        """Build the package's image (its ``[outputs]`` checked), then publish it."""
        started = time.monotonic()
        final = self._final()
        check_outputs(self.pkg, final, self.b.out)
        assert final.manifest_digest is not None
        record = self._record(final.manifest_digest)
        image = self.b.publisher.publish(self.pkg.name, final, record)
        seconds = time.monotonic() - started
        result = BuildResult(
            package=self.pkg.name, image=image, manifest_digest=record.manifest_digest,
            cached=not self.built, record=record, stages_built=tuple(dict.fromkeys(self.built)),
            stages_cached=tuple(s for s in dict.fromkeys(self.cached) if s not in self.built),
            seconds=seconds)
        state = "cached" if result.cached else f"built ({len(result.stages_built)} stages)"
        self.say(f"{state} {result.manifest_digest} in {seconds:.2f}s")
        return result

    def _final(self) -> CachedStage:
        """The target stage's cache entry with its OCI layout (built first if needed)."""
        key = self.nodes[self.target.index].key
        hit = None if self.options.no_cache or self.forced else self.b.cache.lookup(key)
        if hit is not None:
            self.cached.append(self.target.label)
            final = hit
        else:
            final = self.execute()
        write = image_writer(final, self.plan.platform, self.pkg.version)
        final = self.b.cache.ensure_image(final, write)
        assert final.layout is not None
        problem = linked_dirs(final.layout) or layout_problem(final.layout,
                                                              self.b.cache.dir / "seals")
        if problem is not None:  # the cached image was changed: never publish it
            self.b._warn(f"cached image {final.layout}: {problem}; writing it again")
            final = self.b.cache.rewrite_image(final, write)
        return final

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
                    hit = self.b.cache.lookup(node.key)
                    if hit is not None:
                        with self._lists:
                            self.cached.append(node.stage.label)
                        return hit
                with self.run_.slots.hold(self.urgency[index]):
                    if self.run_.cancel.is_set():
                        raise Cancelled(f"{self.describe(index)} stopped because another "
                                        "step failed")
                    self.say(f"stage {node.stage.label}: building")
                    if self.b._backend is not None:
                        entry = self._build_stage_layered(node, needed, work, fetch_dir)
                    else:
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
                 steps: ActionSteps | None = None) -> StageContext:
        return StageContext(
            package=self.pkg.name, display=self.display, context_dir=self.pkg.directory,
            fetch_dir=fetch_dir, work=stage_dir, log_dir=self.b.cache.logs / self.pkg.name,
            source_root=self._source_root(needed), debug=self.options.debug,
            cancelled=self.run_.cancel, step_timeout=self.options.step_timeout, steps=steps)

    def _build_stage(self, node: _Node, needed: Mapping[int, CachedStage], work: Path,
                     fetch_dir: Path) -> CachedStage:
        """Copy mode: the stage runs on a full copy of its base."""
        stage = node.stage
        stage_dir = work / f"stage-{stage.index}"
        rootfs = stage_dir / "rootfs"
        # The plan knows the configuration the stage starts with; only files move here.
        if isinstance(stage.base, Scratch):
            rootfs.mkdir(parents=True)
            os.chmod(rootfs, 0o755)
        elif isinstance(stage.base, StageRef):
            # a real copy: the snapshot stays as is
            fsops.copy_tree(needed[stage.base.index].rootfs, rootfs)
        else:
            image = self.parents[stage.base.reference]
            fsops.copy_tree(self.b.cache.rootfs(image.layout, image.digest), rootfs)
        state = StageRunner(self._context(stage_dir, needed, fetch_dir), stage,
                            rootfs).execute()
        if "PATH" not in dict(state.env):  # Docker gives every image a PATH
            state.env = [("PATH", DEFAULT_PATH), *state.env]
        # The finished root filesystem becomes the cache entry's snapshot as it is (a
        # rename, no copy); an image is written only for a stage that is a build's image.
        entry = work / f"entry-{stage.index}"
        entry.mkdir()
        os.replace(rootfs, entry / "rootfs")
        fsops.remove_tree(stage_dir)
        return self.b.cache.commit(entry, node.key, {
            "package": self.pkg.name, "stage": stage.label, "config": state.to_json()},
            replace=self.options.no_cache or stage.index in self.forced)

    def _stage_base(self, stage: StagePlan, needed: Mapping[int, CachedStage]) -> Snapshot:
        """The snapshot a stage starts from (its configuration comes from the plan)."""
        if isinstance(stage.base, Scratch):
            return Snapshot.base("scratch")
        if isinstance(stage.base, StageRef):
            parent = needed[stage.base.index]
            assert parent.snapshot is not None
            return parent.snapshot
        image = self.parents[stage.base.reference]
        layer = self.b.cache.image_layer(image.layout, image.digest)
        return Snapshot.base(f"image:{image.digest}", (layer,))

    def _inputs(self, needed: Mapping[int, CachedStage]) -> Callable[[FileStep], dict[str, str]]:
        """The digests of what a step reads besides its snapshot (for its action key)."""
        def snapshot_digest(index: int) -> str:
            used = needed[index]
            return used.snapshot.digest if used.snapshot else used.key

        def inputs(step: FileStep) -> dict[str, str]:
            if not isinstance(step, PlannedCopy):
                return {}
            found: dict[str, str] = {}
            for n, source in enumerate(step.sources):
                read = self._input(source, snapshot_digest)
                if read is not None:
                    found[f"{n}:{read[0]}"] = read[1]
            return found
        return inputs

    def _build_stage_layered(self, node: _Node, needed: Mapping[int, CachedStage],
                             work: Path, fetch_dir: Path) -> CachedStage:
        """Run a stage as actions on copy-on-write snapshots (see engine/executor.py)."""
        backend = self.b._backend
        assert backend is not None
        stage = node.stage
        stage_dir = work / f"stage-{stage.index}"
        stage_dir.mkdir()
        base = self._stage_base(stage, needed)
        steps = ActionSteps(
            backend, base, package=self.pkg.name, stage=stage.label,
            platform=str(self.plan.platform), steps=len(stage.steps),
            inputs=self._inputs(needed), no_cache=self.options.no_cache,
            no_cache_from=self.forced.get(stage.index),
            events=StepEvents(emit=self._emit, say=self.say, live=self.options.progress))
        state = StageRunner(self._context(stage_dir, needed, fetch_dir, steps), stage,
                            backend.view(base)).execute()
        if "PATH" not in dict(state.env):  # Docker gives every image a PATH
            state.env = [("PATH", DEFAULT_PATH), *state.env]
        fsops.remove_tree(stage_dir)
        entry = work / f"entry-{stage.index}"
        entry.mkdir()
        return self.b.cache.commit_snapshot(entry, node.key, {
            "package": self.pkg.name, "stage": stage.label, "config": state.to_json()},
            steps.snapshot, replace=self.options.no_cache or stage.index in self.forced)

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
