"""The package planner: what a package's build will do, decided before anything runs.

From the tree, a package and the images of the packages it needs, :class:`PackagePlan`
makes the package's plan (twice when a stage starts from an image: first to learn its
parent images, then with their configurations, as BuildKit reads a base image's config
before dispatching), each needed
stage's cache key (chaining the builder's code, platform, build args, base and every
planned instruction with the digests of what it reads), which stages ``--no-cache-from``
forces, and each stage's urgency (the critical path). It reads files (the Containerfile,
the build context, the parents' image configs) but builds nothing; the run is
:mod:`rootseed.engine.engine`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rootseed.console import canonical_json
from rootseed.containerfile import parse_file
from rootseed.engine import fsops, scheduler
from rootseed.engine.actions import builder_digest
from rootseed.errors import ErrorKind, RootseedError
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
    Planned,
    PlannedCopy,
    PlannedRun,
    Scratch,
    StagePath,
    StagePlan,
    StageRef,
    plan_package,
    to_json,
)
from rootseed.tree import Package, Tree
from rootseed.tree.references import strip_tag

#: image name → (OCI layout, manifest digest), per package already built
Images = Mapping[str, Mapping[str, tuple[Path, str]]]


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
                                     "build's `step N/M` lines do", kind=ErrorKind.USAGE)
        return cls(int(number), stage or None)


@dataclass(frozen=True)
class Parent:
    reference: str
    package: str
    layout: Path
    digest: str


class Input(StrEnum):
    """What a COPY source reads (its digest goes into the step's key)."""

    CONTEXT = "context"
    FETCH = "fetch"
    STAGE = "stage"
    IMAGE = "image"


@dataclass(frozen=True)
class Node:
    """One stage to run: its plan, cache key and the stages it needs."""

    stage: StagePlan
    key: str
    needs: frozenset[int]


def sha(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()




class PackagePlan:
    """One package's plan, parents, stage keys, forced stages and urgency."""

    def __init__(self, tree: Tree, package: Package, images: Images, target: str | None,
                 *, build_args: Mapping[str, str] | None = None,
                 no_cache_from: NoCacheFrom | None = None) -> None:
        self.tree = tree
        self.pkg = package
        self.images = images
        self.build_args_given = dict(build_args or {})
        self.no_cache_from = no_cache_from
        try:
            display = package.containerfile.relative_to(tree.root.parent).as_posix()
        except ValueError:
            display = str(package.containerfile)
        self.display = display
        self.build_args = {**package.build_args(), **self.build_args_given}
        self.parents: dict[str, Parent] = {}
        self.plan = self._make_plan(target if target is not None else package.target)
        self.target = self.plan.target_stage
        self.context_files = fsops.hash_tree(package.directory)
        context_modes = {rel: fsops.mode_bits(package.directory, rel)
                         for rel in self.context_files}
        self.context_key = sha({"files": self.context_files, "modes": context_modes})
        self.sources_key = sha({s.file: s.hash for s in package.sources})
        self.nodes = self._nodes()
        self.forced = self._forced()
        self.urgency = self._urgency()

    def _make_plan(self, target: str | None) -> Plan:
        """The package's plan (the one planner: rootseed.plan), made twice when a stage
        starts from an image: first to learn which images it starts from, then with those
        images' configurations (ENV, WORKDIR, USER), as BuildKit reads a base image's
        config before dispatching."""
        cf = parse_file(self.pkg.containerfile, display=self.display)
        first = self._planned(lambda: plan_package(
            self.pkg, build_args=self.build_args_given, target=target, containerfile=cf))
        for ref, line in first.images():
            self._parent(ref.reference, line)
        bases = {s.base.reference for s in first.stages if isinstance(s.base, ImageRef)}
        if not bases:  # no stage starts from an image: the second plan is the first
            return first
        configs = {ref: self._image_settings(self.parents[ref]) for ref in sorted(bases)}
        return self._planned(lambda: plan_package(
            self.pkg, build_args=self.build_args_given, target=target, containerfile=cf,
            base_images=configs))

    def _planned(self, make: Callable[[], Plan]) -> Plan:
        try:
            return make()
        except PlanError as e:
            if e.package is not None:  # the message names the package already
                raise
            raise e.at(self.pkg.name, package=self.pkg.name) from None

    @staticmethod
    def _image_settings(parent: Parent) -> ImageSettings:
        config = read_image(parent.layout).config
        return ImageSettings(
            env=tuple((e.partition("=")[0], e.partition("=")[2]) for e in config.env),
            workdir=config.working_dir, user=config.user, entrypoint=config.entrypoint,
            cmd=config.cmd, labels=tuple(sorted(config.labels.items())))

    def _parent(self, ref: str, line: int) -> Parent:
        if ref in self.parents:
            return self.parents[ref]
        dep = self.tree.package_for_image(ref)
        image = strip_tag(ref).removeprefix(self.tree.namespace + "/")
        built = self.images.get(dep) if dep is not None else None
        if built is None or image not in built:
            raise RootseedError(
                f"{self.pkg.name}: {self.display}:{line}: image {ref!r} is not built by this "
                f"tree (namespace {self.tree.namespace!r})",
                hint="rootseed never pulls images: refer to another package as "
                     f"{self.tree.namespace}/<stage>-<name>, or to a stage of this file",
                kind=ErrorKind.PLAN, package=self.pkg.name, file=self.display, line=line)
        layout, digest = built[image]
        parent = Parent(reference=ref, package=image, layout=layout, digest=digest)
        self.parents[ref] = parent
        return parent

    def _nodes(self) -> dict[int, Node]:
        """The stages the target needs, each with its cache key (needs first)."""
        reachable = self.plan.reachable()
        needs = {i: frozenset(self.plan.get(i).needs()) for i in reachable}
        try:
            order = scheduler.check_graph(needs)
        except scheduler.CycleError as e:
            first = self.plan.get(next(i for i in reachable if i in e.cycle))
            raise RootseedError(f"{self.pkg.name}: {self.display}: stages depend on each "
                                f"other in a cycle (stage {first.label})") from e
        nodes: dict[int, Node] = {}
        for index in order:
            stage = self.plan.get(index)
            nodes[index] = Node(stage, self._key(stage, nodes), needs[index])
        return dict(sorted(nodes.items()))

    def _key(self, stage: StagePlan, done: Mapping[int, Node]) -> str:
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
                data["inputs"] = self.inputs(step, lambda i: done[i].key)
            steps.append(data)
        return sha({
            "builder": builder_digest(), "platform": str(self.plan.platform),
            "args": self.build_args, "version": self.pkg.version, "base": base,
            "steps": steps,
        })

    def inputs(self, step: Planned, stage_digest: Callable[[int], str]) -> dict[str, str]:
        """The digests of what ``step`` reads besides its snapshot, by name (COPY's n-th
        source as "<n>:<kind>"): one encoding for the stage key and the action key.
        ``stage_digest`` stands for a stage ``COPY --from`` reads."""
        if not isinstance(step, PlannedCopy):
            return {}
        found: dict[str, str] = {}
        for n, source in enumerate(step.sources):
            read = self._input(source, stage_digest)
            if read is not None:
                found[f"{n}:{read[0]}"] = read[1]
        return found

    def _input(self, source: CopySource, stage_digest: Callable[[int], str]
               ) -> tuple[Input, str] | None:
        """What a COPY source reads, and the digest that stands for it (None: a heredoc,
        whose text is part of the planned step itself)."""
        if isinstance(source, InlineFile):
            return None
        if isinstance(source, ContextPath):
            return Input.CONTEXT, self.context_key
        if isinstance(source, FetchPath):
            return Input.FETCH, self.sources_key
        if isinstance(source, StagePath):
            return Input.STAGE, stage_digest(source.stage.index)
        return Input.IMAGE, self.parents[source.image.reference].digest

    def _forced(self) -> dict[int, int]:
        """``--no-cache-from``: the stages it forces to run again, and from which step
        (stages built on a forced stage run again from their first step)."""
        ncf = self.no_cache_from
        if ncf is None:
            return {}
        labels = {n.stage.label: i for i, n in self.nodes.items()}
        index = self.target.index if ncf.stage is None else labels.get(ncf.stage.lower())
        if index is None:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: no stage {ncf.stage!r} "
                                "in this build", hint="stages built: " + ", ".join(labels),
                                kind=ErrorKind.USAGE, package=self.pkg.name)
        steps = len(self.nodes[index].stage.steps)
        if ncf.step > steps:
            raise RootseedError(f"{self.pkg.name}: --no-cache-from: stage "
                                f"{self.nodes[index].stage.label} has {steps} steps, "
                                f"not {ncf.step}", kind=ErrorKind.USAGE, package=self.pkg.name)
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

