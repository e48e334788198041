"""The typed plan of a Containerfile: every stage and instruction, every variable expanded.

A :class:`Plan` is what :func:`rootseed.plan.plan` makes of (Containerfile, build args,
platform, target). Nothing in it is left to interpret: words are expanded exactly once,
as BuildKit's dockerfile frontend does (``frontend/dockerfile/dockerfile2llb/convert.go``),
operands are typed values (:data:`Base`, :data:`CopySource`), WORKDIR and COPY
destinations are absolute, and each RUN carries its final argv, environment, working
directory and user. Consumers (the builder, the tree's dependency scan, ``check``,
``challenge``, ``crosscheck``) read plans; none of them expands a variable again.

Every planned instruction also records :attr:`Planned.undeclared`: the variable names it
referenced that had no value in scope (BuildKit's "unmatched" names). They expand to
nothing, as in BuildKit; ``rootseed check`` reports them where a value was probably meant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rootseed.containerfile.model import Instruction

# -- platform ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform ``os/architecture[/variant]`` (``linux/386``, ``linux/arm64/v8``)."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


# -- operands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    """``FROM scratch``: an empty root filesystem."""


@dataclass(frozen=True)
class StageRef:
    """Another stage of the same Containerfile."""

    index: int
    name: str | None = None  # its ``AS`` name (lower-cased), for messages

    @property
    def label(self) -> str:
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True)
class ImageRef:
    """An image by reference, as written after expansion (``stagex/core-gcc:1.2``).

    rootseed never pulls: the builder maps it to another package's image of the tree.
    """

    reference: str


#: What a stage starts from.
Base = Scratch | StageRef | ImageRef


@dataclass(frozen=True)
class ContextPath:
    """A path in the package directory (the build context), relative to it."""

    path: str


@dataclass(frozen=True)
class FetchPath:
    """A path among the package's verified sources.

    Both spellings StageX uses land here: ``COPY --from=fetch PATH`` (the named build
    context ``fetch``) and ``ADD fetch/PATH`` (StageX copies the same files into the
    ``fetch/`` directory of the build context); ``path`` is relative to the sources.
    """

    path: str


@dataclass(frozen=True)
class StagePath:
    """A path in another stage's root filesystem (``COPY --from=<stage>``)."""

    stage: StageRef
    path: str


@dataclass(frozen=True)
class ImagePath:
    """A path in an image's root filesystem (``COPY --from=<image>``)."""

    image: ImageRef
    path: str


@dataclass(frozen=True)
class InlineFile:
    """A heredoc source of COPY/ADD (``COPY <<EOF /dest``), its content expanded."""

    name: str
    content: str


#: One source of a COPY/ADD.
CopySource = ContextPath | FetchPath | StagePath | ImagePath | InlineFile


# Every path of a source above is relative to its root, cleaned ("." for the root itself);
# wildcards (``*``, ``?``, ``[...]``) are kept for the builder to match.


# -- planned instructions ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Planned:
    """One instruction with everything resolved.

    ``instruction`` is the parsed original (line, text, keyword for messages);
    ``undeclared`` the names it referenced that had no value (they expanded to "").
    """

    instruction: Instruction
    undeclared: frozenset[str] = frozenset()

    @property
    def line(self) -> int:
        return self.instruction.line

    @property
    def keyword(self) -> str:
        return self.instruction.keyword

    @property
    def changes_files(self) -> bool:
        """Whether executing it can change the root filesystem (RUN, COPY, ADD, WORKDIR):
        an exporter of one layer per instruction (BuildKit's) asks."""
        return False


@dataclass(frozen=True, kw_only=True)
class PlannedArg(Planned):
    """ARG: each name with the value it took (None: declared without any value)."""

    values: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, kw_only=True)
class PlannedEnv(Planned):
    pairs: tuple[tuple[str, str], ...]  # expanded (key, value)


@dataclass(frozen=True, kw_only=True)
class PlannedLabel(Planned):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class PlannedWorkdir(Planned):
    """WORKDIR: ``path`` is absolute and clean; BuildKit creates the directory."""

    path: str

    @property
    def changes_files(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class PlannedUser(Planned):
    user: str


@dataclass(frozen=True, kw_only=True)
class PlannedShell(Planned):
    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PlannedRun(Planned):
    """RUN, ready to execute.

    ``argv`` is final (the stage's SHELL already prepended for the shell form; a heredoc
    body already placed). ``script`` is a ``#!`` heredoc that BuildKit mounts read-only
    at ``/dev/pipes/<name>`` (the path the shell form's argv names). ``env`` is the process
    environment (ARG values and ENV, PATH always set), in order.
    """

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str  # absolute
    user: str
    network: str | None = None  # as written: "none" / "default" (never a network here)
    script: InlineFile | None = None

    @property
    def changes_files(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class PlannedCopy(Planned):
    """COPY (and ADD, ``unpack=True``: local tar archives are extracted).

    ``dest`` is absolute; ``dest_is_dir`` is true when the destination was written as a
    directory (trailing ``/``, ``.``) or there is more than one source, as BuildKit
    decides it. ``chmod`` is the parsed octal mode, ``chown`` as expanded.
    """

    sources: tuple[CopySource, ...]
    dest: str
    dest_is_dir: bool
    chmod: int | None = None
    chown: str | None = None
    unpack: bool = False
    #: as written, once expanded: the source paths (not heredocs), the destination and
    #: the --chmod value (the image history's ``created_by`` quotes them)
    written_sources: tuple[str, ...] = ()
    written_dest: str = ""
    written_chmod: str | None = None

    @property
    def changes_files(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class PlannedEntrypoint(Planned):
    argv: tuple[str, ...]  # final: the stage's SHELL prepended for the shell form


@dataclass(frozen=True, kw_only=True)
class PlannedCmd(Planned):
    argv: tuple[str, ...]


# -- stages and the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSettings:
    """An image's configuration as a stage carries it forward (Docker keeps SHELL too).

    ``env`` holds ENV only (ARGs never reach an image), PATH always set.
    """

    env: tuple[tuple[str, str], ...] = ()
    workdir: str = ""
    user: str = ""
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StagePlan:
    """One stage: what it starts from and its instructions, planned in order.

    ``start`` is the configuration it inherits (from the base stage, the base image's
    config as given to the planner, or scratch); ``final`` what it hands on.
    ``scope`` is the stage's variables after its last instruction (ARG values and ENV,
    what a stage built ``FROM`` this one starts with).
    """

    index: int
    name: str | None
    line: int  # of the FROM
    base: Base
    platform: Platform
    steps: tuple[Planned, ...]
    start: ImageSettings
    final: ImageSettings
    scope: tuple[tuple[str, str], ...] = ()
    undeclared: frozenset[str] = frozenset()  # of the FROM line itself

    @property
    def label(self) -> str:
        return self.name if self.name is not None else str(self.index)

    @property
    def ref(self) -> StageRef:
        return StageRef(self.index, self.name)

    def needs(self) -> frozenset[int]:
        """Indexes of the stages this one reads (its base and ``COPY --from`` stages)."""
        found = {self.base.index} if isinstance(self.base, StageRef) else set()
        for step in self.steps:
            if isinstance(step, PlannedCopy):
                found.update(s.stage.index for s in step.sources if isinstance(s, StagePath))
        return frozenset(found)

    def images(self) -> tuple[tuple[ImageRef, int], ...]:
        """The images this stage reads, each with the line that names it, in order."""
        found: list[tuple[ImageRef, int]] = []
        if isinstance(self.base, ImageRef):
            found.append((self.base, self.line))
        for step in self.steps:
            if isinstance(step, PlannedCopy):
                found += [(s.image, step.line) for s in step.sources if isinstance(s, ImagePath)]
        return tuple(found)


@dataclass(frozen=True)
class Plan:
    """A planned Containerfile for one target.

    ``stages`` holds the planned stages in file order: by default those the target needs
    (as BuildKit dispatches only reachable stages, so an error in another stage does not
    fail the build); with ``all_stages=True`` every stage. Look stages up with
    :meth:`get` (by index) or :meth:`stage` (by name or index).
    """

    display: str  # the Containerfile as named in messages
    platform: Platform
    build_args: tuple[tuple[str, str], ...]  # as given (StageX's args, then --build-arg)
    global_scope: tuple[tuple[str, str], ...]  # what FROM lines see (platform + global ARGs)
    stages: tuple[StagePlan, ...]
    target: int  # index of the stage whose root filesystem is the image
    stage_names: tuple[str | None, ...] = ()  # every stage of the file, planned or not
    undeclared_global: frozenset[str] = frozenset()  # names global ARG defaults referenced

    def get(self, index: int) -> StagePlan:
        for s in self.stages:
            if s.index == index:
                return s
        raise KeyError(index)

    def stage(self, ref: str) -> StagePlan | None:
        """A planned stage by ``AS`` name (case-insensitive) or index, else None."""
        lowered = ref.lower()
        for s in self.stages:
            if s.name == lowered:
                return s
        if ref.isdigit():
            return next((s for s in self.stages if s.index == int(ref)), None)
        return None

    @property
    def target_stage(self) -> StagePlan:
        return self.get(self.target)

    def reachable(self, target: int | None = None) -> tuple[int, ...]:
        """The stages ``target`` (default: the plan's) needs, itself included, sorted."""
        todo = [self.target if target is None else target]
        seen: set[int] = set()
        while todo:
            index = todo.pop()
            if index not in seen:
                seen.add(index)
                todo.extend(self.get(index).needs())
        return tuple(sorted(seen))

    def images(self) -> tuple[tuple[ImageRef, int], ...]:
        """Images the planned stages read (FROM and ``COPY --from``), with lines, in file
        order: what the package depends on."""
        return tuple(x for s in self.stages for x in s.images())


def to_json(value: object) -> Any:
    """A plan value as JSON data (for cache keys and ``--json`` output): dataclasses as
    objects with their ``type``, a planned instruction's ``instruction`` as its keyword
    only (its line and text do not change what it does)."""
    if isinstance(value, Planned):
        data: dict[str, Any] = {"type": type(value).__name__, "keyword": value.keyword}
        data.update({f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
                     if f.name != "instruction"})
        return data
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {"type": type(value).__name__}
        data.update({f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)})
        return data
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return sorted(to_json(v) for v in value)
    return value
