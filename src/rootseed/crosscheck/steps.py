"""Which RUN steps of a Containerfile the Python tools can replay (pure: no I/O).

A step is an exec-form ``RUN`` whose program (``argv[0]``'s base name) is a stage0 tool.
For every step this module knows which arguments are input files and which one is the
output, so the replay can read the inputs from the stage's filesystem and write the
output somewhere else.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rootseed.containerfile import Run
from rootseed.engine.api import clean
from rootseed.plan import InlineFile, PlannedCopy, PlannedRun, PlannedWorkdir, StagePlan


class Args(StrEnum):
    """How a tool's command line names its files."""

    IN_OUT = "in-out"  # TOOL INPUT OUTPUT
    OUT_INS = "out-ins"  # catm OUTPUT INPUT...
    FLAGS = "flags"  # -f/--file INPUT ... -o/--output OUTPUT


#: program base name → (``rootseed.tools.TOOLS`` key, how its arguments name files).
REPLAYABLE: dict[str, tuple[str, Args]] = {
    "hex0-seed": ("hex0", Args.IN_OUT),
    "hex0": ("hex0", Args.IN_OUT),
    "hex1": ("hex1", Args.IN_OUT),
    "hex2-0": ("hex2-0", Args.IN_OUT),
    "catm": ("catm", Args.OUT_INS),
    "M0": ("M0", Args.IN_OUT),
    # cc_x86 is written in assembly, so no C compiler can redo its compile of M2-0.c
    # (diverse double-compiling cannot reach it): the Python cc_x86 replays it instead.
    "cc_x86": ("cc_x86", Args.IN_OUT),
    "M1-0": ("M1", Args.FLAGS),
    "M1": ("M1", Args.FLAGS),
    "hex2-1": ("hex2", Args.FLAGS),
    "hex2": ("hex2", Args.FLAGS),
    "blood-elf-0": ("blood-elf", Args.FLAGS),
    "blood-elf": ("blood-elf", Args.FLAGS),
}

_C_COMPILER = "C compiler: no Python replay (crosscheck --ddc redoes it)"
MESOPLANET = "M2-Mesoplanet"
#: why an M2-Mesoplanet step is not covered unless it is rerun (see crosscheck.mesoplanet)
MESOPLANET_REASON = "C compiler driver: its M1/hex2 temporaries are deleted"
#: programs the chain runs that the Python tools do not cover → (arguments, reason).
NOT_COVERED: dict[str, tuple[Args, str]] = {
    "M2": (Args.FLAGS, _C_COMPILER),
    "M2-Planet": (Args.FLAGS, _C_COMPILER),
    # It runs M2-Planet, blood-elf, M1 and hex2 on temporaries it deletes.
    MESOPLANET: (Args.FLAGS, MESOPLANET_REASON),
    "kaem-0": (Args.FLAGS, "a shell: nothing to replay"),
    "kaem": (Args.FLAGS, "a shell: nothing to replay"),
}

_INPUT_FLAGS = ("-f", "--file")
_OUTPUT_FLAGS = ("-o", "--output")


@dataclass(frozen=True)
class Step:
    """One RUN of a stage, with its files as absolute paths inside the image."""

    stage: str  # stage label
    line: int
    argv: tuple[str, ...]
    workdir: str  # absolute, inside the image
    program: str  # argv[0] as an absolute path inside the image ("" for shell form)
    tool: str | None  # rootseed.tools key when the step is replayable
    inputs: tuple[str, ...] = ()  # absolute paths inside the image
    output: str | None = None  # absolute path inside the image
    reason: str = ""  # why the step is not covered (when tool is None or it is unsafe)

    @property
    def covered(self) -> bool:
        return self.tool is not None and not self.reason


#: chain programs whose RUNs diverse double-compiling redoes with a DDC-built M2-Planet
DDC_PROGRAMS = ("M2", "M2-Planet")


def ddc_compile(step: Step) -> bool:
    """An ``M2``/``M2-Planet`` RUN whose files are safe to redo it from."""
    return (bool(step.argv) and posixpath.basename(step.argv[0]) in DDC_PROGRAMS
            and step.output is not None and step.reason == _C_COMPILER)


def rerunnable(step: Step) -> bool:
    """An M2-Mesoplanet step whose files are safe to rerun it from."""
    return (bool(step.argv) and posixpath.basename(step.argv[0]) == MESOPLANET
            and step.output is not None and step.reason == MESOPLANET_REASON)


def command_step(stage: str, line: int, argv: Sequence[str], workdir: str) -> Step:
    """A :class:`Step` for a command some program ran (e.g. one M2-Mesoplanet spawned)."""
    name = posixpath.basename(argv[0]) if argv else ""
    program = in_image(workdir, argv[0]) if argv else ""
    if name not in REPLAYABLE:
        kind, reason = NOT_COVERED.get(name, (Args.FLAGS, f"no Python implementation of {name}"))
        _, out = file_args(kind, argv[1:])
        return Step(stage, line, tuple(argv), workdir, program, None,
                    output=in_image(workdir, argv[1 + out]) if out is not None else None,
                    reason=reason)
    tool, kind = REPLAYABLE[name]
    ins, out = file_args(kind, argv[1:])
    return Step(stage, line, tuple(argv), workdir, program, tool,
                tuple(in_image(workdir, argv[1 + k]) for k in ins),
                in_image(workdir, argv[1 + out]) if out is not None else None,
                "" if out is not None else "no output file in the command line")


def in_image(workdir: str, path: str) -> str:
    """``path`` as the step sees it (relative to ``workdir``), as an absolute path."""
    return clean(posixpath.join(workdir or "/", path))


def file_args(kind: Args, args: Sequence[str]) -> tuple[list[int], int | None]:
    """Indexes (into ``args`` = argv[1:]) of the input files and of the output file."""
    if kind is Args.IN_OUT:
        return ([0] if args else []), (1 if len(args) > 1 else None)
    if kind is Args.OUT_INS:
        return list(range(1, len(args))), (0 if args else None)
    inputs: list[int] = []
    output: int | None = None
    for i in range(len(args) - 1):
        if args[i] in _INPUT_FLAGS:
            inputs.append(i + 1)
        elif args[i] in _OUTPUT_FLAGS:
            output = i + 1
    return inputs, output


def stage_steps(stage: StagePlan) -> list[Step]:
    """Every RUN of a planned stage as a :class:`Step` (working directories, destinations
    and argv come from the plan: nothing is expanded here)."""
    steps: list[Step] = []
    later_writes: list[tuple[int, str]] = []  # (instruction index, path written)
    opaque_runs: list[int] = []  # instruction indexes of RUNs whose writes are unknown
    raw: list[tuple[int, Step]] = []
    for index, i in enumerate(stage.steps):
        if isinstance(i, PlannedWorkdir):
            continue
        if isinstance(i, PlannedCopy):
            later_writes.extend((index, p) for p in _copy_writes(i))
            continue
        if not isinstance(i, PlannedRun):
            continue
        current = i.workdir
        shell_form = isinstance(i.instruction, Run) and i.instruction.shell_form
        if shell_form:
            raw.append((index, Step(stage.label, i.line, i.argv, current, "", None,
                                    reason="shell-form RUN: not replayed")))
            opaque_runs.append(index)
            continue
        argv = i.argv
        name = posixpath.basename(argv[0]) if argv else ""
        program = in_image(current, argv[0]) if argv else ""
        if name in REPLAYABLE:
            tool, kind = REPLAYABLE[name]
            reason = ""
        elif name in NOT_COVERED:
            tool = None
            kind, reason = NOT_COVERED[name]
        else:
            tool, kind, reason = None, Args.IN_OUT, f"no Python implementation of {name}"
            opaque_runs.append(index)
        ins, out = file_args(kind, argv[1:])
        if name not in NOT_COVERED and name not in REPLAYABLE:
            ins, out = [], None
        inputs = tuple(in_image(current, argv[1 + k]) for k in ins)
        output = in_image(current, argv[1 + out]) if out is not None else None
        if tool is not None and output is None:
            reason = "no output file in the command line"
        if output is not None:
            later_writes.append((index, output))
        raw.append((index, Step(stage.label, i.line, argv, current, program, tool,
                                inputs, output, reason)))
    for index, step in raw:
        if step.covered or rerunnable(step) or ddc_compile(step):
            step = _unsafe(step, index, later_writes, opaque_runs)
        steps.append(step)
    return steps


def _copy_writes(i: PlannedCopy) -> list[str]:
    """Paths (files or trees) a COPY/ADD may write: ``dest`` itself, or each source's
    name under it when ``dest`` is a directory (ends with ``/``)."""
    dest = clean(i.dest)
    if not i.dest_is_dir or i.unpack:  # ADD may unpack an archive
        return [dest]
    names = [src.name if isinstance(src, InlineFile) else src.path for src in i.sources]
    if any("*" in n or "?" in n or "[" in n for n in names):
        return [dest]
    return [posixpath.join(dest, posixpath.basename(n.rstrip("/")) or "") for n in names]


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _unsafe(step: Step, index: int, writes: list[tuple[int, str]], opaque: list[int]) -> Step:
    """The stage's final files show what this step read and wrote only if nothing later
    in the stage wrote them again."""
    if step.output in step.inputs:
        return _with_reason(step, "it reads the file it writes")
    if any(o > index for o in opaque):
        return _with_reason(step, "a later instruction of the stage may change its files")
    files = (*step.inputs, step.program, step.output or "")
    for w_index, path in writes:
        if w_index > index and any(f and _under(f, path) for f in files):
            return _with_reason(step, f"{path} is written again later in the stage")
    return step


def _with_reason(step: Step, reason: str) -> Step:
    return Step(step.stage, step.line, step.argv, step.workdir, step.program, step.tool,
                step.inputs, step.output, reason)
