"""Replay one step with the Python tool on the stage's files, and compare."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import posixpath
import tempfile
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from rootseed.crosscheck.compare import first_difference
from rootseed.crosscheck.model import ArtifactCheck, Status
from rootseed.crosscheck.steps import REPLAYABLE, Step, file_args
from rootseed.sandbox.rootpath import resolve
from rootseed.tools import TOOLS


def not_covered(step: Step) -> ArtifactCheck:
    name = posixpath.basename(step.argv[0]) if step.argv else "?"
    return ArtifactCheck(step.stage, step.line, step.output or f"(RUN at line {step.line})",
                         step.tool or name, Status.NOT_COVERED, detail=step.reason,
                         program=step.program, inputs=step.inputs)


_TOOL_LOCK = threading.Lock()


def run_tool(tool: str, argv: list[str]) -> tuple[int, str]:
    """Run ``rootseed.tools`` ``tool`` in-process; its exit code and what it printed."""
    module = importlib.import_module(f"rootseed.tools.{TOOLS[tool]}")
    buf = io.StringIO()
    # The redirect is process-wide: one in-process tool at a time (crosscheck runs its
    # sandboxed reruns on threads; the Python tools are CPU-bound, so nothing is lost).
    with _TOOL_LOCK, contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        try:
            code = int(module.main(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, buf.getvalue().strip()


def replay(step: Step, rootfs: Path, seed_hashes: Collection[str] = (),
           where: Callable[[str], Path] | None = None) -> list[ArtifactCheck]:
    """Run the Python tool on the step's inputs (from ``rootfs``) and compare its output
    with the file the chain wrote. When the program is a pinned seed (``seed_hashes``)
    and the chain's output equals it (the seed rebuilt itself from its source), the
    Python output is compared with the seed itself as well. ``where`` maps a path inside
    the image to the host file (default: :func:`resolve` in ``rootfs``)."""
    locate = where or (lambda path: resolve(rootfs, path))
    if not step.covered or step.tool is None or step.output is None:
        return [not_covered(step)]
    name = posixpath.basename(step.argv[0])
    _, kind = REPLAYABLE[name]
    args = list(step.argv[1:])
    ins, out = file_args(kind, args)
    missing = [p for p in step.inputs if not locate(p).is_file()]
    chain_file = locate(step.output)
    if missing or not chain_file.is_file():
        what = ", ".join(missing) if missing else step.output
        return [ArtifactCheck(step.stage, step.line, step.output, step.tool, Status.ERROR,
                              detail=f"not in the stage's files: {what}",
                              program=step.program, inputs=step.inputs)]
    for k in ins:
        args[k] = str(locate(posixpath.join(step.workdir, args[k])))
    with tempfile.TemporaryDirectory(prefix="rootseed-crosscheck-") as tmp:
        produced = Path(tmp) / "output"
        assert out is not None
        args[out] = str(produced)
        code, said = run_tool(step.tool, args)
        data = produced.read_bytes() if code == 0 and produced.is_file() else None
    if data is None:
        return [ArtifactCheck(step.stage, step.line, step.output, step.tool, Status.ERROR,
                              detail=f"the Python {step.tool} failed (exit {code}): "
                                     f"{said or 'no output file'}",
                              program=step.program, inputs=step.inputs)]
    chain = chain_file.read_bytes()
    checks = [_compare(step, step.output, chain, data,
                       f"{step.tool} {' '.join(step.argv[1:])}")]
    program = locate(step.program)
    if seed_hashes and program.is_file():
        seed = program.read_bytes()
        # The step where the chain says the seed rebuilt itself from its own source:
        # the independent Python tool must produce the seed too.
        if hashlib.sha256(seed).hexdigest() in seed_hashes and chain == seed:
            source = posixpath.basename(step.inputs[0]) if step.inputs else "?"
            check = _compare(step, step.program, seed, data,
                             f"{name} equals {step.tool}({source}) computed in Python",
                             seed=True)
            checks.insert(0, check)
    return checks


def _compare(step: Step, artifact: str, chain: bytes, python: bytes, detail: str, *,
             seed: bool = False) -> ArtifactCheck:
    offset = first_difference(chain, python)
    assert step.tool is not None
    return ArtifactCheck(step.stage, step.line, artifact, step.tool,
                         Status.IDENTICAL if offset is None else Status.DIFFERENT,
                         offset=offset, chain_size=len(chain), python_size=len(python),
                         detail=detail, seed=seed,
                         reproduced_by=(f"Python {step.tool}",) if offset is None else (),
                         program=step.program, inputs=step.inputs)
