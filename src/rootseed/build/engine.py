"""The builder: packages in dependency order, stages as a DAG, cache, OCI output."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import __version__
from rootseed.build import fsops
from rootseed.build.actions import builder_digest
from rootseed.build.cache import BuildCache, CachedStage, copy_layout
from rootseed.build.errors import Cancelled, DependencyFailed, Knock
from rootseed.build.executor import ActionSteps, LayeredBackend, StepEvents
from rootseed.build.record import BuildRecord, ParentImage, ResolvedSource
from rootseed.build.slots import Slots
from rootseed.build.snapshots import Layer, Snapshot, Verifier
from rootseed.build.stage import FileStep, StageContext, StageRunner, StageState
from rootseed.build.verify import layout_problem, seal_layout
from rootseed.console import canonical_json, err
from rootseed.containerfile import parse_file
from rootseed.errors import RootseedError
from rootseed.fetch import Fetcher
from rootseed.fsutil import private_dir
from rootseed.oci import ImageConfig, manifest_digest, read_image, write_image
from rootseed.oci.verified import BlobError
from rootseed.plan import (
    ContextPath,
    FetchPath,
    ImagePath,
    ImageRef,
    ImageSettings,
    Plan,
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
from rootseed.provenance.statement import write_statement
from rootseed.sandbox.overlay import OverlayUnavailable, probe
from rootseed.sandbox.rootpath import resolve
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT
from rootseed.tree import Package, Tree
from rootseed.tree.references import strip_tag

CREATED = "1970-01-01T00:00:01Z"
EPOCH = 1


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


#: The Containerfile stage a subpackage's image is built from (as StageX does it).
SUBPACKAGE_STAGE = "package-{sub}"


@dataclass(frozen=True)
class SubpackageImage:
    """One subpackage image a package build wrote beside its main image."""

    name: str  # image name "<stage>-<sub>"
    subpackage: str  # "<sub>", as listed in package.toml
    image: Path  # <out>/<stage>-<sub>/ (OCI image layout, with its own provenance.json)
    manifest_digest: str  # "sha256:<hex>"
    record: BuildRecord


@dataclass(frozen=True)
class BuildResult:
    package: str
    image: Path  # <out>/<stage>-<name>/ (OCI image layout)
    manifest_digest: str  # "sha256:<hex>"
    cached: bool  # nothing had to be executed
    record: BuildRecord
    stages_built: tuple[str, ...] = ()
    stages_cached: tuple[str, ...] = ()
    seconds: float = 0.0
    #: image name ("<stage>-<sub>") → the subpackage image, in package.toml's order
    subpackages: Mapping[str, SubpackageImage] = field(default_factory=dict)

    def images(self) -> dict[str, tuple[Path, str]]:
        """Every image this build wrote: image name → (layout, manifest digest), the
        package's main image first."""
        found = {self.package: (self.image, self.manifest_digest)}
        found.update((n, (s.image, s.manifest_digest)) for n, s in self.subpackages.items())
        return found


@dataclass(frozen=True)
class _Parent:
    image: str  # the image's name: "<stage>-<name>" or a subpackage's "<stage>-<sub>"
    reference: str
    layout: Path
    digest: str


@dataclass
class _StagePlan:
    stage: StagePlan
    key: str = ""
    base: str = "scratch"  # "scratch" | "stage:<i>" | "image:<ref>"
    needs: set[int] = field(default_factory=set)  # stage indexes this one needs


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
        self._backend: LayeredBackend | None = None
        self._backend_mode: str | None = None
        self.snapshot_mode = "copy"  # what the last build used: "overlay" or "copy"
        self.fetcher = fetcher or Fetcher(cache_dir, mirrors, offline=offline, progress=False,
                                          base_dir=tree.root)
        self._slots: Slots | None = None
        self._cancel = threading.Event()

    def _warn(self, text: str) -> None:
        if text in self.warnings:
            return
        self.warnings.append(text)
        with self._print_lock:
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
        """Build ``names`` and everything they need; results in build order."""
        options = options or BuildOptions()
        requested = list(dict.fromkeys(names))
        for name in requested:
            self.tree.get(name)
        order = self.tree.order(requested)
        self._snapshots(options)
        self._slots = Slots(options.jobs)
        self._cancel = threading.Event()
        futures: dict[str, Future[BuildResult]] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(order)),
                                thread_name_prefix="rootseed-pkg") as pool:
            for name in order:
                deps = {d: futures[d] for d in self.tree.get(name).deps}
                target = options.target if name in requested else None
                opts = options if name in requested else dataclasses.replace(
                    options, no_cache_from=None)
                futures[name] = pool.submit(self._package_task, name, deps, target, opts)
            results: list[BuildResult] = []
            first_error: BaseException | None = None  # the first real cause, if any
            for name in order:
                try:
                    results.append(futures[name].result())
                except BaseException as e:
                    self._cancel.set()
                    if first_error is None or (isinstance(first_error, Knock)
                                               and not isinstance(e, Knock)):
                        first_error = e
        if first_error is not None:
            raise first_error
        return results

    def plan(self, package: str, target: str | None = None,
             options: BuildOptions | None = None) -> Plan:
        """The plan a build of ``package`` executes (its dependencies are built first, as
        a stage FROM another package's image starts from that image's configuration)."""
        options = options or BuildOptions(progress=False)
        pkg = self.tree.get(package)
        deps = {r.package: r for r in self.build(pkg.deps, options)} if pkg.deps else {}
        return _PackageBuild(self, pkg, deps, target, options).plan

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
        self._slots = Slots(options.jobs)
        self._cancel = threading.Event()
        run = _PackageBuild(self, pkg, deps, stage, options)
        hit = None if options.no_cache else self.cache.lookup(run.plans[run.target.index].key)
        return hit if hit is not None else run._execute([], [])

    def stage_rootfs(self, package: str, stage: str, options: BuildOptions | None = None
                     ) -> Path:
        """The root filesystem of one stage of ``package`` (see :meth:`stage`), as the
        cache keeps it: read it, never change it."""
        return self.stage(package, stage, options).rootfs

    # -- packages ----------------------------------------------------------------------
    def _say(self, options: BuildOptions, text: str) -> None:
        if options.progress:
            with self._print_lock:
                err.print(text, markup=False, highlight=False, soft_wrap=True)

    def _package_task(self, name: str, deps: Mapping[str, Future[BuildResult]],
                      target: str | None, options: BuildOptions) -> BuildResult:
        dep_results = {}
        for dep, future in deps.items():
            try:
                dep_results[dep] = future.result()
            except BaseException as e:
                raise DependencyFailed(f"{name}: not built because its dependency {dep} failed"
                                    ) from e
        return _PackageBuild(self, self.tree.get(name), dep_results, target, options).run()


class _PackageBuild:
    """One image of ``package``: its main image (``image`` None, the package's name), or
    with ``image`` = "<stage>-<sub>" a subpackage's, built from ``target`` package-<sub>."""

    def __init__(self, builder: Builder, package: Package, deps: Mapping[str, BuildResult],
                 target: str | None, options: BuildOptions, *, image: str | None = None):
        self.b = builder
        self.pkg = package
        self.deps = deps
        self.options = options
        self.image_name = image or package.name
        try:
            display = package.containerfile.relative_to(builder.tree.root.parent).as_posix()
        except ValueError:
            display = str(package.containerfile)
        self.display = display
        self.build_args = {**package.build_args(), **options.build_args}
        self.parents: dict[str, _Parent] = {}
        # A subpackage is built from its own stage (StageX: --target package-<sub>).
        self.plan = self._make_plan(target if target is not None else package.target)
        self.platform = str(self.plan.platform)
        self.target = self.plan.target_stage
        # Subpackage images come with the package's default image only (not with --target).
        self.subpackages = (self._subpackage_stages()
                            if target is None and image is None else {})
        self.plans = self._plan()
        self.urgency = self._urgency(self.plans)
        self.forced = self._forced()  # stage index → first step that must run again

    def say(self, text: str) -> None:
        self.b._say(self.options, f"[{self.image_name}] {text}")

    # -- planning ----------------------------------------------------------------------
    def _forced(self) -> dict[int, int]:
        """``--no-cache-from``: the stages it forces to run again, and from which step
        (stages built on a forced stage run again from their first step)."""
        ncf = self.options.no_cache_from
        if ncf is None:
            return {}
        labels = {p.stage.label: i for i, p in self.plans.items()}
        index = self.target.index if ncf.stage is None else labels.get(ncf.stage.lower())
        if index is None:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: no stage {ncf.stage!r} "
                                "in this build", hint="stages built: " + ", ".join(labels))
        steps = len(self.plans[index].stage.steps)
        if ncf.step > steps:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: stage "
                                f"{self.plans[index].stage.label} has {steps} steps, "
                                f"not {ncf.step}")
        forced = {index: ncf.step}
        for i in self._topo(self.plans):
            if i not in forced and self.plans[i].needs & forced.keys():
                forced[i] = 1
        return forced

    def _make_plan(self, target: str | None) -> Plan:
        """The package's plan (the one planner: rootseed.plan), made twice: first to learn
        which images it starts from, then with those images' configurations (ENV,
        WORKDIR, USER), as BuildKit reads a base image's config before dispatching."""
        cf = parse_file(self.pkg.containerfile, display=self.display)
        try:
            first = plan_package(self.pkg, build_args=self.options.build_args, target=target,
                                 containerfile=cf)
            for ref, line in first.images():
                self._parent(ref.reference, line)
            bases = {s.base.reference for s in first.stages if isinstance(s.base, ImageRef)}
            configs = {ref: self._image_settings(self.parents[ref]) for ref in sorted(bases)}
            return plan_package(self.pkg, build_args=self.options.build_args, target=target,
                                containerfile=cf, base_images=configs)
        except RootseedError as e:
            if e.message.startswith(self.pkg.name + ":"):
                raise
            raise RootseedError(f"{self.pkg.name}: {e.message}", hint=e.hint) from e

    @staticmethod
    def _image_settings(parent: _Parent) -> ImageSettings:
        config = read_image(parent.layout).config
        return ImageSettings(
            env=tuple((e.partition("=")[0], e.partition("=")[2]) for e in config.env),
            workdir=config.working_dir, user=config.user, entrypoint=config.entrypoint,
            cmd=config.cmd, labels=tuple(sorted(config.labels.items())))

    def _subpackage_stages(self) -> dict[str, str]:
        """Image name "<stage>-<sub>" → subpackage "<sub>"; each one's stage package-<sub>
        must exist (checked before anything is built)."""
        stages: dict[str, str] = {}
        for sub in self.pkg.subpackages:
            wanted = SUBPACKAGE_STAGE.format(sub=sub)
            if wanted not in self.plan.stage_names:
                names = ", ".join(n if n is not None else str(i)
                                  for i, n in enumerate(self.plan.stage_names))
                raise RootseedError(
                    f"{self.pkg.name}: {self.display} has no stage {wanted!r} for "
                    f"subpackage {sub!r}",
                    hint=f"each entry of [package] subpackages is built from the stage "
                         f"`FROM ... AS {wanted}`; add that stage or remove {sub!r} from "
                         f"subpackages (stages: {names})")
            stages[f"{self.pkg.stage}-{sub}"] = sub
        return stages

    def _parent(self, ref: str, line: int) -> _Parent:
        if ref in self.parents:
            return self.parents[ref]
        dep = self.b.tree.package_for_image(ref)
        image = strip_tag(ref).removeprefix(self.b.tree.namespace + "/")
        if dep == self.pkg.name and image != self.pkg.name:
            raise RootseedError(
                f"{self.pkg.name}: {self.display}:{line}: image {ref!r} is a subpackage of "
                "this package itself",
                hint=f"use its stage instead: --from={SUBPACKAGE_STAGE.format(sub='<sub>')}")
        if dep is None or dep not in self.deps:
            raise RootseedError(
                f"{self.pkg.name}: {self.display}:{line}: image {ref!r} is not built by this "
                f"tree (namespace {self.b.tree.namespace!r})",
                hint="rootseed never pulls images: refer to another package as "
                     f"{self.b.tree.namespace}/<stage>-<name>, or to a stage of this file")
        found = self.deps[dep].images().get(image)
        if found is None:
            raise RootseedError(
                f"{self.pkg.name}: {self.display}:{line}: image {ref!r} (a subpackage of "
                f"{dep}) was not built",
                hint=f"subpackage images are built with {dep}'s default image; build {dep} "
                     "without --target")
        parent = _Parent(image=image, reference=ref, layout=found[0], digest=found[1])
        self.parents[ref] = parent
        return parent

    @staticmethod
    def _base_operand(stage: StagePlan) -> str:
        """A stage's base as "scratch", "stage:<i>" or "image:<ref>"."""
        if isinstance(stage.base, Scratch):
            return "scratch"
        if isinstance(stage.base, StageRef):
            return f"stage:{stage.base.index}"
        return f"image:{stage.base.reference}"

    def _plan(self) -> dict[int, _StagePlan]:
        plans = {index: _StagePlan(stage=self.plan.get(index),
                                   base=self._base_operand(self.plan.get(index)),
                                   needs=set(self.plan.get(index).needs()))
                 for index in self.plan.reachable()}
        self._check_cycles(plans)
        self.context_files = fsops.hash_tree(self.pkg.directory)
        context_modes = {rel: fsops.mode_bits(self.pkg.directory, rel)
                         for rel in self.context_files}
        self.context_key = _sha({"files": self.context_files, "modes": context_modes})
        self.sources_key = _sha({s.file: s.hash for s in self.pkg.sources})
        for index in self._topo(plans):
            plans[index].key = self._key(plans[index], plans)
        return plans

    def _check_cycles(self, plans: Mapping[int, _StagePlan]) -> None:
        state: dict[int, int] = {}

        def visit(i: int) -> None:
            if state.get(i) == 1:
                raise RootseedError(f"{self.pkg.name}: {self.display}: stages depend on "
                                    f"each other in a cycle (stage {plans[i].stage.label})")
            if state.get(i) == 2:
                return
            state[i] = 1
            for n in plans[i].needs:
                visit(n)
            state[i] = 2

        for i in plans:
            visit(i)

    def _topo(self, plans: Mapping[int, _StagePlan]) -> list[int]:
        done: list[int] = []

        def visit(i: int) -> None:
            if i in done:
                return
            for n in sorted(plans[i].needs):
                visit(n)
            done.append(i)

        for i in sorted(plans):
            visit(i)
        return done

    def _urgency(self, plans: Mapping[int, _StagePlan]) -> dict[int, float]:
        """Each stage's longest path to the target, counted in RUN steps (a stand-in for
        work): with fewer ``--jobs`` than ready stages, the critical path goes first."""
        users: dict[int, list[int]] = {i: [] for i in plans}
        for i, plan in plans.items():
            for n in plan.needs:
                users[n].append(i)
        urgency: dict[int, float] = {}
        for i in reversed(self._topo(plans)):
            runs = sum(isinstance(x, PlannedRun) for x in plans[i].stage.steps)
            urgency[i] = runs + 0.1 + max((urgency[u] for u in users[i]), default=0.0)
        return urgency

    def _key(self, plan: _StagePlan, plans: Mapping[int, _StagePlan]) -> str:
        def operand_key(operand: str) -> str:
            if operand.startswith("stage:"):
                return "stage:" + plans[int(operand[6:])].key
            if operand.startswith("image:"):
                return "image:" + self.parents[operand[6:]].digest
            return operand

        steps: list[dict[str, Any]] = []
        for step in plan.stage.steps:  # the planned instruction and the digests it reads
            data: dict[str, Any] = {"step": to_json(step)}
            if isinstance(step, PlannedCopy):
                inputs: list[str] = []
                for source in step.sources:
                    if isinstance(source, ContextPath):
                        inputs.append("context:" + self.context_key)
                    elif isinstance(source, FetchPath):
                        inputs.append("fetch:" + self.sources_key)
                    elif isinstance(source, StagePath):
                        inputs.append("stage:" + plans[source.stage.index].key)
                    elif isinstance(source, ImagePath):
                        inputs.append("image:" + self.parents[source.image.reference].digest)
                data["inputs"] = inputs
            steps.append(data)
        return _sha({
            "builder": builder_digest(), "platform": self.platform, "args": self.build_args,
            "version": self.pkg.version, "base": operand_key(plan.base), "steps": steps,
        })

    # -- running -----------------------------------------------------------------------
    def run(self) -> BuildResult:
        """Build the package's image and its subpackage images, then write them all.

        Every image is built (and the main one's ``[outputs]`` verified) before any is
        written to ``<out>``; the subpackage targets reuse the stages already built.
        """
        started = time.monotonic()
        built: list[str] = []
        cached: list[str] = []
        final = self._final(built, cached)
        self._verify_outputs(final)  # [outputs] pins the main image only
        subs: list[tuple[str, _PackageBuild, CachedStage]] = []
        for name, sub in self.subpackages.items():
            run = _PackageBuild(self.b, self.pkg, self.deps, SUBPACKAGE_STAGE.format(sub=sub),
                                self.options, image=name)
            subs.append((sub, run, run._final(built, cached)))
        image, record = self._publish(final)
        sub_images: dict[str, SubpackageImage] = {}
        for sub, run, entry in subs:
            sub_layout, sub_record = run._publish(entry)
            sub_images[run.image_name] = SubpackageImage(
                name=run.image_name, subpackage=sub, image=sub_layout,
                manifest_digest=sub_record.manifest_digest, record=sub_record)
        digest = record.manifest_digest
        seconds = time.monotonic() - started
        result = BuildResult(
            package=self.pkg.name, image=image, manifest_digest=digest,
            cached=not built, record=record, stages_built=tuple(dict.fromkeys(built)),
            stages_cached=tuple(s for s in dict.fromkeys(cached) if s not in built),
            seconds=seconds, subpackages=sub_images)
        state = "cached" if result.cached else f"built ({len(result.stages_built)} stages)"
        self.say(f"{state} {digest} in {seconds:.2f}s")
        for sub_image in result.subpackages.values():
            self.say(f"subpackage {sub_image.name}: {sub_image.manifest_digest}")
        return result

    def _final(self, built: list[str], cached: list[str]) -> CachedStage:
        """The target stage's cache entry with its OCI layout (built first if needed)."""
        target_plan = self.plans[self.target.index]
        hit = None if self.options.no_cache or self.forced else self.b.cache.lookup(
            target_plan.key)
        if hit is not None:
            cached.append(self.target.label)
            final = hit
        else:
            final = self._execute(built, cached)
        final = self.b.cache.ensure_image(final, self._image_writer(final))
        assert final.layout is not None and final.manifest_digest is not None
        problem = layout_problem(final.layout, self.b.cache.dir / "seals")
        if problem is not None:  # the cached image was changed: never publish it
            self.b._warn(f"cached image {final.layout}: {problem}; writing it again")
            final = self.b.cache.rewrite_image(final, self._image_writer(final))
        return final

    def _publish(self, final: CachedStage) -> tuple[Path, BuildRecord]:
        """Write ``final``'s image and provenance to ``<out>/<image name>/`` atomically."""
        assert final.layout is not None and final.manifest_digest is not None
        layout = final.layout
        private_dir(self.b.out, "output directory")  # 0700: see fsutil.private_dir
        image = self.b.out / self.image_name
        record = self._record(final.manifest_digest)
        with self.b.cache.lock("out-" + hashlib.sha256(str(image).encode()).hexdigest()[:16]):
            if self._same_output(image, final.manifest_digest):
                write_statement(image, record)  # deterministic: same bytes when present
            else:
                copy_layout(layout, image, prepare=lambda d: write_statement(d, record))
                seal_layout(image, self.b.cache.dir / "seals")
        return image, record

    def _same_output(self, image: Path, digest: str) -> bool:
        """``image`` in out/ holds exactly ``digest``'s image, every blob re-hashed (a
        damaged out/ is written again, i.e. repaired)."""
        try:
            if manifest_digest(image) != digest:
                return False
        except BlobError as e:  # a blob in out/ was changed: say so, then repair it
            self.b._warn(f"{image}: {e.message}; writing it again")
            return False
        except (RootseedError, OSError, ValueError, KeyError):
            return False
        problem = layout_problem(image, self.b.cache.dir / "seals")
        if problem is not None:
            self.b._warn(f"{image}: {problem}; writing it again")
            return False
        return True

    def _execute(self, built: list[str], cached: list[str]) -> CachedStage:
        with self.b.cache.workdir() as work:
            fetch_dir = work / "fetch"
            fetch_dir.mkdir()
            if self.pkg.sources:
                self.say("fetching sources")
                for sid, path in self.b.fetcher.fetch_package(self.pkg).items():
                    source = self.pkg.source(sid)
                    link = fetch_dir / source.file
                    try:
                        os.link(path, link)
                    except OSError:
                        link.write_bytes(path.read_bytes())
            results: dict[int, Future[CachedStage]] = {}
            order = self._topo(self.plans)
            ctx_lock = threading.Lock()
            with ThreadPoolExecutor(max_workers=len(order),
                                    thread_name_prefix=f"rootseed-{self.pkg.name}") as pool:
                for index in order:
                    results[index] = pool.submit(self._stage_task, index, results, work,
                                                 fetch_dir, built, cached, ctx_lock)
                errors: list[BaseException] = []
                for index in order:
                    try:
                        results[index].result()
                    except BaseException as e:
                        self.b._cancel.set()
                        errors.append(e)
            if errors:
                real = [e for e in errors if not isinstance(e, Knock)]
                raise (real or errors)[0]
            return results[self.target.index].result()

    def _stage_task(self, index: int, results: Mapping[int, Future[CachedStage]], work: Path,
                    fetch_dir: Path, built: list[str], cached: list[str],
                    lock: threading.Lock) -> CachedStage:
        plan = self.plans[index]
        needed: dict[int, CachedStage] = {}
        for n in sorted(plan.needs):
            try:
                needed[n] = results[n].result()
            except BaseException as e:
                raise RootseedError(f"{self.pkg.name}: stage {plan.stage.label} not built "
                                    "because a stage it needs failed") from e
        with self.b.cache.lock(f"build-{plan.key}"):
            if not self.options.no_cache and index not in self.forced:
                hit = self.b.cache.lookup(plan.key)
                if hit is not None:
                    with lock:
                        cached.append(plan.stage.label)
                    return hit
            assert self.b._slots is not None
            with self.b._slots.hold(self.urgency[index]):
                if self.b._cancel.is_set():
                    raise Cancelled(f"{self.pkg.name}: stage {plan.stage.label} stopped "
                                    "because another step failed")
                self.say(f"stage {plan.stage.label}: building")
                if self.b._backend is not None:
                    entry = self._build_stage_layered(plan, needed, work, fetch_dir)
                else:
                    entry = self._build_stage(plan, needed, work, fetch_dir)
            with lock:
                built.append(plan.stage.label)
            return entry

    def _build_stage(self, plan: _StagePlan, needed: Mapping[int, CachedStage], work: Path,
                     fetch_dir: Path) -> CachedStage:
        stage = plan.stage
        stage_dir = work / f"stage-{stage.index}"
        rootfs = stage_dir / "rootfs"
        # The plan knows the configuration the stage starts with; only files move here.
        if plan.base == "scratch":
            rootfs.mkdir(parents=True)
            os.chmod(rootfs, 0o755)
        elif plan.base.startswith("stage:"):
            parent = needed[int(plan.base[6:])]
            fsops.copy_tree(parent.rootfs, rootfs)  # a real copy: the snapshot stays as is
        else:
            image = self.parents[plan.base[6:]]
            fsops.copy_tree(self.b.cache.rootfs(image.layout, image.digest), rootfs)

        def source_root(ref: StageRef | ImageRef) -> Path:
            if isinstance(ref, StageRef):
                return needed[ref.index].rootfs  # read only
            image = self.parents[ref.reference]
            return self.b.cache.rootfs(image.layout, image.digest)

        ctx = StageContext(
            package=self.pkg.name, display=self.display, context_dir=self.pkg.directory,
            fetch_dir=fetch_dir, work=stage_dir, log_dir=self.b.cache.logs / self.pkg.name,
            source_root=source_root, debug=self.options.debug, cancelled=self.b._cancel,
            step_timeout=self.options.step_timeout)
        state = StageRunner(ctx, stage, rootfs).execute()
        env = dict(state.env)
        if "PATH" not in env:  # Docker gives every image a PATH
            state.env = [("PATH", DEFAULT_PATH), *state.env]
        # The finished root filesystem becomes the cache entry's snapshot as it is (a
        # rename, no copy); an image is written only for a stage that is a build's image.
        entry = work / f"entry-{stage.index}"
        entry.mkdir()
        os.replace(rootfs, entry / "rootfs")
        fsops.remove_tree(stage_dir)
        return self.b.cache.commit(entry, plan.key, {
            "package": self.pkg.name, "stage": stage.label, "config": state.to_json()},
            replace=self.options.no_cache or stage.index in self.forced)

    def _stage_base(self, plan: _StagePlan, needed: Mapping[int, CachedStage]) -> Snapshot:
        """The snapshot a stage starts from (its configuration comes from the plan)."""
        if plan.base == "scratch":
            return Snapshot.base("scratch")
        if plan.base.startswith("stage:"):
            parent = needed[int(plan.base[6:])]
            assert parent.snapshot is not None
            return parent.snapshot
        image = self.parents[plan.base[6:]]
        layer = self.b.cache.image_layer(image.layout, image.digest)
        return Snapshot.base(f"image:{image.digest}", (layer,))

    def _inputs(self, needed: Mapping[int, CachedStage]) -> Callable[[FileStep], dict[str, str]]:
        """The digests of what a step reads besides its snapshot (for its action key)."""
        def inputs(step: FileStep) -> dict[str, str]:
            if not isinstance(step, PlannedCopy):
                return {}
            found: dict[str, str] = {}
            for n, source in enumerate(step.sources):
                if isinstance(source, ContextPath):
                    found[f"{n}:context"] = self.context_key
                elif isinstance(source, FetchPath):
                    found[f"{n}:fetch"] = self.sources_key
                elif isinstance(source, StagePath):
                    used = needed[source.stage.index]
                    found[f"{n}:stage"] = used.snapshot.digest if used.snapshot else used.key
                elif isinstance(source, ImagePath):
                    found[f"{n}:image"] = self.parents[source.image.reference].digest
            return found
        return inputs

    def _build_stage_layered(self, plan: _StagePlan, needed: Mapping[int, CachedStage],
                             work: Path, fetch_dir: Path) -> CachedStage:
        """Run a stage as actions on copy-on-write snapshots (see build/executor.py)."""
        backend = self.b._backend
        assert backend is not None
        stage = plan.stage
        stage_dir = work / f"stage-{stage.index}"
        stage_dir.mkdir()
        base = self._stage_base(plan, needed)

        def source_root(ref: StageRef | ImageRef) -> Path:
            if isinstance(ref, StageRef):
                return needed[ref.index].rootfs  # a read-only view
            image = self.parents[ref.reference]
            return self.b.cache.rootfs(image.layout, image.digest)

        emit = self.options.events
        steps = ActionSteps(
            backend, base, package=self.pkg.name, stage=stage.label, platform=self.platform,
            steps=len(stage.steps), inputs=self._inputs(needed),
            no_cache=self.options.no_cache, no_cache_from=self.forced.get(stage.index),
            events=StepEvents(emit=emit or (lambda _e: None), say=self.say,
                              live=self.options.progress))
        ctx = StageContext(
            package=self.pkg.name, display=self.display, context_dir=self.pkg.directory,
            fetch_dir=fetch_dir, work=stage_dir, log_dir=self.b.cache.logs / self.pkg.name,
            source_root=source_root, debug=self.options.debug, cancelled=self.b._cancel,
            step_timeout=self.options.step_timeout, steps=steps)
        state = StageRunner(ctx, stage, backend.view(base)).execute()
        if "PATH" not in dict(state.env):  # Docker gives every image a PATH
            state.env = [("PATH", DEFAULT_PATH), *state.env]
        fsops.remove_tree(stage_dir)
        entry = work / f"entry-{stage.index}"
        entry.mkdir()
        return self.b.cache.commit_snapshot(entry, plan.key, {
            "package": self.pkg.name, "stage": stage.label, "config": state.to_json()},
            steps.snapshot, replace=self.options.no_cache or stage.index in self.forced)

    def _image_writer(self, stage: CachedStage) -> Callable[[Path, Path], str]:
        state = StageState.from_json(stage.state["config"])
        config = ImageConfig(
            architecture=self.platform.split("/")[1] if "/" in self.platform else "386",
            os=self.platform.split("/")[0], env=tuple(f"{k}={v}" for k, v in state.env),
            entrypoint=state.entrypoint, cmd=state.cmd, working_dir=state.workdir,
            user=state.user, labels=state.labels)

        def write(layout_dir: Path, rootfs: Path) -> str:
            return write_image(layout_dir, rootfs, config, self._annotations(), epoch=EPOCH)

        return write

    def _annotations(self) -> dict[str, str]:
        return {"org.opencontainers.image.created": CREATED,
                "org.opencontainers.image.ref.name": self.pkg.version}

    # -- after the build ---------------------------------------------------------------
    def _verify_outputs(self, final: CachedStage) -> None:
        if not self.pkg.outputs:
            return
        rootfs = final.rootfs  # the tree the image was written from
        problems: list[str] = []
        for path, (sha, size) in sorted(self.pkg.outputs.items()):
            host = resolve(rootfs, path)
            if not host.is_file():
                problems.append(f"  {path}: missing from the image (expected sha256 {sha}, "
                                f"{size} bytes)")
                continue
            actual = hashlib.sha256(host.read_bytes()).hexdigest()
            actual_size = host.stat().st_size
            if actual != sha or actual_size != size:
                problems.append(f"  {path}: expected sha256 {sha} ({size} bytes), "
                                f"got sha256 {actual} ({actual_size} bytes)")
        if problems:
            raise RootseedError(
                f"{self.pkg.name}: {len(problems)} declared output(s) do not match the built "
                f"image {final.manifest_digest} (nothing was written to {self.b.out}):\n"
                + "\n".join(problems),
                hint="the build is not what package.toml [outputs] pins: find the cause "
                     "before updating the pins")

    def _record(self, digest: str) -> BuildRecord:
        used = {p.reference: p for p in self.parents.values()}
        return BuildRecord(
            package=self.image_name, version=self.pkg.version, namespace=self.b.tree.namespace,
            containerfile_sha256=hashlib.sha256(self.pkg.containerfile.read_bytes()).hexdigest(),
            target=(self.target.label if self.plan.target != len(self.plan.stage_names) - 1
                    else None),
            build_args=dict(sorted(self.build_args.items())),
            sources=tuple(ResolvedSource(id=s.id, file=s.file, sha256=s.hash,
                                         uri=s.mirrors[0] if s.mirrors else "", seed=s.seed)
                          for s in self.pkg.sources),
            parents=tuple(ParentImage(package=p.image, reference=p.reference,
                                      manifest_digest=p.digest)
                          for _, p in sorted(used.items())),
            manifest_digest=digest, rootseed_version=__version__,
            context_files=dict(self.context_files))

