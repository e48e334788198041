"""Typed, frozen Containerfile instructions (what was written; nothing is expanded here).

Words that Docker expands (FROM, ARG defaults, ENV, LABEL, WORKDIR, USER, COPY/ADD
paths and flags) are kept exactly as written; the planner (:mod:`rootseed.plan`) expands
them, once, for every consumer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Build contexts that are not stages or images (the verified sources of a package).
NAMED_CONTEXTS = frozenset({"fetch"})


@dataclass(frozen=True)
class Heredoc:
    """A here-document body; ``content`` already has leading tabs removed for ``<<-``."""

    name: str
    content: str
    chomp: bool = False  # written as <<-NAME
    expand: bool = True  # false when the delimiter was quoted: <<"NAME" / <<'NAME'
    fd: int = 0


@dataclass(frozen=True, kw_only=True)
class Instruction:
    line: int  # first line of the instruction (1-based)
    original: str  # the instruction as written (continuations joined)

    @property
    def keyword(self) -> str:
        return type(self).__name__.upper()


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    image: str  # "scratch", a stage name, or an image reference (unexpanded)
    platform: str | None = None
    name: str | None = None  # "AS name", lower-cased as Docker does


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    args: tuple[tuple[str, str | None], ...]  # (name, default as written or None)


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[tuple[str, str], ...]  # (key, value as written, quotes kept)


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    command: tuple[str, ...]  # shell form: one string; exec form: the argv
    shell_form: bool
    heredocs: tuple[Heredoc, ...] = ()
    network: str | None = None  # "none" or "default" (builds never have a network)


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    sources: tuple[str | Heredoc, ...]  # paths as written, or inline heredoc files
    dest: str
    from_: str | None = None  # --from (stage name/index, package image, or "fetch")
    chmod: str | None = None
    chown: str | None = None


@dataclass(frozen=True, kw_only=True)
class Add(Copy):
    """ADD: like COPY, but local tar archives (gz/xz/bz2/plain) are unpacked."""


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    argv: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    argv: tuple[str, ...]
    shell_form: bool


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lower-cased "AS" name
    base: str  # FROM operand as written (unexpanded)
    platform: str | None
    line: int  # line of the FROM
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def label(self) -> str:
        """How to name this stage to people: its name, else its index."""
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True)
class Containerfile:
    path: Path
    display: str  # path shown in messages (relative to the tree when known)
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...] = field(default=())

    def where(self, line: int) -> str:
        return f"{self.display}:{line}"

    def stage(self, ref: str) -> Stage | None:
        """A stage by name (case-insensitive) or by index, else None."""
        lowered = ref.lower()
        for stage in self.stages:
            if stage.name == lowered:
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None
