"""What one action does, independent of where it runs (BuildKit's ExecOp and FileOp).

A stage's filesystem-changing instructions become operations here, before any executor
sees them:

* :class:`ExecOp` — a RUN step: argv, environment, working directory, platform, timeout
  and the files bound in from memory (REAPI's ``Command``). An executor runs it in a
  sandbox on the snapshot's tree (or sends it elsewhere);
* :class:`FileOp` — a COPY, ADD or WORKDIR: a local change of the tree's files, with no
  container (as BuildKit's FileOp). ``apply(root)`` changes the files below ``root``.

:func:`run_op` runs either on a local tree (:class:`Root`): the one way the local
executors run an operation, so every executor reports a failing step the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import safefs
from rootseed.engine.errors import Cancelled
from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox.logtail import escape, tail
from rootseed.sandbox.spec import EnteredRoot, SandboxSpec
from rootseed.sandbox.timeout import StepStopped

TAIL_LINES = 20


class StepFailed(RootseedError):
    """A RUN step exited non-zero (``status``, also in ``--json``); ``log`` holds its full
    output."""

    kind = ErrorKind.STEP_FAILED

    def __init__(self, message: str, *, log: Path, status: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.log = log
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "status": self.status}


@dataclass(frozen=True)
class ExecOp:
    """A RUN step: what runs, where inside the tree, for how long, and where its output
    goes. ``where`` names the instruction in messages (package, file, line, keyword)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    platform: str
    log: Path
    #: the trusted directory the log lives below (the cache's logs/): the log is made new
    #: through it, so a link planted at the log's name is replaced, never written through
    log_root: Path
    where: str
    summary: str  # the instruction's first line, for a failure's message
    timeout: float | None = None
    #: files made from bytes, ``(content, path inside, mode)`` (e.g. a heredoc script)
    data_files: tuple[tuple[bytes, str, int], ...] = ()
    debug: bool = False
    #: where it is, as an error's fields (``where`` says it for people)
    package: str | None = None
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class FileOp:
    """A COPY, ADD or WORKDIR: ``apply(root)`` changes the files below ``root`` (a host
    path; it raises a :class:`RootseedError` naming the instruction)."""

    keyword: str
    apply: Callable[[Path], None] = field(compare=False)


Op = ExecOp | FileOp


@dataclass(frozen=True)
class Root:
    """A writable tree as a local executor hands it to an operation: ``path`` as rootseed
    sees it; ``entered`` when RUN's sandbox must start in the tree's own mount namespace
    (an overlay's) to see it."""

    path: Path
    entered: EnteredRoot | None = None


def run_op(op: Op, root: Root, stop: threading.Event | None = None) -> None:
    """Run ``op`` on ``root``: a file operation locally, a RUN step in the sandbox.
    A failing step raises :class:`StepFailed` (its log's tail in the message); a step
    stopped because another one failed raises :class:`Cancelled`."""
    if isinstance(op, FileOp):
        op.apply(root.path)
        return
    from rootseed.sandbox.execute import run as sandbox_run  # only when a step runs

    os.close(safefs.create_new(op.log_root, op.log))
    spec = SandboxSpec(rootfs=root.path, argv=list(op.argv), env=dict(op.env), cwd=op.cwd,
                       data_files=op.data_files, timeout=op.timeout, entered=root.entered,
                       # an overlay's upper dir beside its mount (executor.run_action): what
                       # the step writes, measured against the disk limit
                       upper=None if root.entered is None
                       else root.entered.path.parent / "layer")
    try:
        code = sandbox_run(spec, log=op.log, debug=op.debug, stop=stop)
    except StepStopped as e:  # another step failed (or Ctrl-C): not this step's fault
        raise Cancelled(f"{op.where}: stopped while running because another step "
                        f"failed ({e.message})") from None
    except RootseedError as e:  # its type and kind kept; said where it happened
        if e.kind is ErrorKind.ERROR:
            e.kind = ErrorKind.STEP
        raise e.at(op.where, package=op.package, file=op.file, line=op.line,
                   step="RUN") from None
    if code != 0:
        raise exit_failure(op, code)


def exit_failure(op: ExecOp, code: int) -> StepFailed:
    """The error of a RUN step that exited with ``code`` (its log holds the output)."""
    lines = tail(op.log, lines=TAIL_LINES)  # bounded, control characters escaped
    shown = "\n".join(f"  | {x}" for x in lines) or "  | (no output)"
    summary = escape(op.summary)
    if len(summary) > 100:
        summary = summary[:97] + "..."
    return StepFailed(
        f"{op.where} failed with exit code {code}: {summary}\n"
        f"last {len(lines)} lines of output:\n{shown}\n"
        f"full log: {op.log}", log=op.log, status=code,
        hint="fix the step (the full log has all output); rerun with --debug to see "
             "the exact sandbox command").at(package=op.package, file=op.file, line=op.line,
                                             step="RUN")
