"""The image history BuildKit's Dockerfile frontend writes, from a plan.

``frontend/dockerfile/dockerfile2llb/convert.go`` appends one history entry per
instruction (``commitToHistory``): ``created_by`` is the instruction as BuildKit prints
it (expanded, flags it keeps, `` # buildkit`` after those that change files through LLB),
``comment`` ``buildkit.dockerfile.v0``, and ``empty_layer`` for those that add no layer.
A stage built ``FROM`` another stage starts with that stage's history (and its build
arguments, which a RUN's entry lists as ``|N NAME=value ...``); a stage built from an
image starts with the image's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rootseed.oci.buildkit.documents import HistoryEntry
from rootseed.plan import (
    InlineFile,
    Planned,
    PlannedArg,
    PlannedCmd,
    PlannedCopy,
    PlannedEntrypoint,
    PlannedEnv,
    PlannedLabel,
    PlannedRun,
    PlannedShell,
    PlannedUser,
    PlannedWorkdir,
    StagePlan,
)

SUFFIX = " # buildkit"


@dataclass(frozen=True)
class Step:
    """One instruction of the image's stage chain with its history entry; ``layer`` is
    true when BuildKit gives it a layer (RUN, COPY, ADD, WORKDIR other than ``/``)."""

    stage: int  # StagePlan.index
    number: int  # 1-based, as ``step N/M`` counts the stage's instructions
    planned: Planned
    entry: HistoryEntry

    @property
    def layer(self) -> bool:
        return not self.entry.empty_layer


def _go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``) for printable text; other characters
    as Go escapes them."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _quoted_list(argv: Sequence[str]) -> str:
    return "[" + " ".join(_go_quote(a) for a in argv) + "]"


def _run_text(step: PlannedRun, build_args: Sequence[tuple[str, str | None]]) -> str:
    """``runCommandString``: the stage's build arguments (``|N K=V ...``), then argv."""
    env = dict(step.env)
    values: dict[str, str] = {}
    for key, value in build_args:
        values[key] = env.get(key, value if value is not None else "")
    prefix = [f"|{len(values)}", *(f"{k}={v}" for k, v in values.items())] if values else []
    return " ".join([*prefix, *step.argv])


def created_by(step: Planned, build_args: Sequence[tuple[str, str | None]]) -> tuple[str, bool]:
    """(``created_by``, whether it has a layer) of one planned instruction."""
    if isinstance(step, PlannedArg):
        return "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in step.values), False
    if isinstance(step, PlannedEnv):
        return "ENV " + " ".join(f"{k}={v}" for k, v in step.pairs), False
    if isinstance(step, PlannedLabel):
        return "LABEL " + " ".join(f"{k}={v}" for k, v in step.pairs), False
    if isinstance(step, PlannedWorkdir):
        return "WORKDIR " + step.path, step.path != "/"
    if isinstance(step, PlannedUser):
        return "USER " + step.user, False
    if isinstance(step, PlannedShell):
        return "SHELL [" + " ".join(step.argv) + "]", False
    if isinstance(step, PlannedEntrypoint):
        return "ENTRYPOINT " + _quoted_list(step.argv), False
    if isinstance(step, PlannedCmd):
        return "CMD " + _quoted_list(step.argv), False
    if isinstance(step, PlannedRun):
        return "RUN " + _run_text(step, build_args) + SUFFIX, True
    if isinstance(step, PlannedCopy):
        words = ["ADD" if step.unpack else "COPY"]
        if step.chown is not None:
            words.append("--chown=" + step.chown)
        if step.written_chmod is not None:
            words.append("--chmod=" + step.written_chmod)
        words += step.written_sources
        words += ["<<" + s.name for s in step.sources if isinstance(s, InlineFile)]
        words.append(step.written_dest)
        return " ".join(words) + SUFFIX, True
    raise TypeError(f"no history for {type(step).__name__}")


def stage_history(chain: Sequence[StagePlan], created: str) -> list[Step]:
    """The history entries of the last stage of ``chain`` (the stage and the stages it is
    built ``FROM``, base first), one per instruction."""
    steps: list[Step] = []
    build_args: list[tuple[str, str | None]] = []
    for stage in chain:
        for number, planned in enumerate(stage.steps, start=1):
            if isinstance(planned, PlannedArg):
                build_args += planned.values
            text, layer = created_by(planned, build_args)
            steps.append(Step(stage.index, number, planned,
                              HistoryEntry(created_by=text, empty_layer=not layer,
                                           created=created)))
    return steps
