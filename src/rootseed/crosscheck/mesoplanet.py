"""Cover what M2-Mesoplanet links: rerun it with ``--dirty-mode`` and replay its spawns.

M2-Mesoplanet preprocesses a C file, then spawns ``M2-Planet`` (C → M1), ``blood-elf``
(debug footer), ``M1`` (→ hex2) and ``hex2`` (→ the program) on temporaries it removes
afterwards. Each spawned command line is printed to stderr before it runs. To check the
last three with the Python tools, the chain-built M2-Mesoplanet runs again in the sandbox
on the stage's files (read-only) with the same arguments plus ``--dirty-mode`` (which only
keeps the temporaries) and its output elsewhere; the printed commands are then
replayed in Python on the kept temporaries. The Python hex2 output is compared with the
program the original build produced, and the rerun must have produced that same program.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from rootseed.crosscheck.compare import first_difference
from rootseed.crosscheck.model import ArtifactCheck, Status
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.sandboxroot import bind_source, entered_root, stage_binds
from rootseed.crosscheck.steps import Args, Step, command_step, file_args, in_image
from rootseed.engine.api import StageTree, clean, makedirs
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.sandbox.rootpath import resolve

#: the programs M2-Mesoplanet spawns, in order
SPAWNED = ("M2-Planet", "blood-elf", "M1", "hex2")
DIRTY = "--dirty-mode"
#: where a rerun writes (a directory of its own root, never a path of the stage)
RERUN_DIR = "/.rootseed-rerun"

#: checks the C → M1 step an M2-Mesoplanet run spawned: (the RUN step, the spawned
#: M2-Planet command as printed, the root its files are in) → the check of its output
CompileCheck = Callable[[Step, Sequence[str], Path], ArtifactCheck]


def spawned_commands(log: str) -> list[list[str]]:
    """The command lines M2-Mesoplanet printed before spawning them."""
    commands = []
    for line in log.splitlines():
        words = line.split()
        if len(words) > 2 and words[0] in SPAWNED and words[1] == "--file":
            commands.append(words)
    return commands


def rerun_argv(argv: tuple[str, ...]) -> tuple[list[str], str] | None:
    """``argv`` with ``--dirty-mode`` and its output renamed; and the original output."""
    _, out = file_args(Args.FLAGS, argv[1:])
    if out is None:
        return None
    args = list(argv)
    original = args[1 + out]
    args[1 + out] = rerun_output(original)
    return [args[0], DIRTY, *args[1:]], original


def rerun_output(original: str) -> str:
    return f"{RERUN_DIR}/out/{posixpath.basename(original) or 'program'}"


def replay_mesoplanet(step: Step, stage: StageTree, env: Mapping[str, str], work: Path,
                      log: Path, seed_hashes: Collection[str] = (),
                      compile_check: CompileCheck | None = None) -> list[ArtifactCheck]:
    """Rerun ``step`` (an M2-Mesoplanet RUN) on the files of ``stage`` and replay the
    blood-elf, M1 and hex2 commands it spawned; ``compile_check`` (diverse
    double-compiling) checks its M2-Planet command.

    The rerun's root is new (in ``work``): the stage's top-level directories are bound
    read-only, the temporaries (``TMPDIR``) and the program go to :data:`RERUN_DIR` in
    it, so nothing of the stage is copied or changed. The temporaries are named in the
    report where the build kept them (its own ``TMPDIR``)."""
    assert step.output is not None
    rootfs = stage.rootfs
    planned = rerun_argv(step.argv)
    if planned is None:
        return [_error(step, "no --output in the command line")]
    argv, original = planned
    root = work / "rerun"
    root.mkdir()
    binds, _ = stage_binds(root, stage, skip=(RERUN_DIR.strip("/"),))
    for sub in ("out", "tmp"):
        (root / RERUN_DIR.strip("/") / sub).mkdir(parents=True)
    # the stage's (hostile) working directory: made inside ``root``, following the
    # recreated top-level symlinks as the sandbox will, never on the host
    makedirs(root, step.workdir)
    # the program at its absolute path, which the sandbox can check before it starts
    argv[0] = step.program
    binds.append((bind_source(stage, resolve(rootfs, step.program)), step.program))
    tmp_in_build = in_image(step.workdir, env.get("TMPDIR", "/tmp"))
    code = sandbox_run(SandboxSpec(rootfs=root, argv=argv,
                                   env={**env, "TMPDIR": f"{RERUN_DIR}/tmp"},
                                   cwd=step.workdir, ro_binds=binds,
                                   entered=entered_root(stage, root)), log=log)
    if code != 0:
        return [_error(step, f"the rerun with {DIRTY} failed (exit {code}); log: {log}")]
    rerun_out = rerun_output(original)
    rerun = resolve(root, rerun_out)
    chain = resolve(rootfs, step.output)
    if not rerun.is_file() or not chain.is_file():
        return [_error(step, "the rerun wrote no program")]
    offset = first_difference(chain.read_bytes(), rerun.read_bytes())
    if offset is not None:
        return [_error(step, f"the rerun with {DIRTY} did not reproduce the program "
                             f"(first difference at offset {offset})")]
    commands = spawned_commands(log.read_text(encoding="utf-8", errors="replace"))
    names = [c[0] for c in commands]
    if names not in (list(SPAWNED), [n for n in SPAWNED if n != "blood-elf"]):
        return [_error(step, f"unexpected spawned commands: {', '.join(names) or 'none'}")]

    def where(path: str) -> Path:
        """The rerun's own files in its root; everything else in the stage."""
        path = clean(path)
        return resolve(root if _under(path, RERUN_DIR) else rootfs, path)

    def shown(artifact: str) -> str:
        """A temporary where the build put it (its TMPDIR), not where the rerun did."""
        tmp = f"{RERUN_DIR}/tmp"
        return tmp_in_build + artifact[len(tmp):] if _under(artifact, tmp) else artifact

    # hex2's output is compared with the program the build made
    commands = [[original if w == rerun_out else w for w in c] if c[0] == "hex2" else c
                for c in commands]
    return _replay_spawned(step, commands, rootfs, root, where, shown, seed_hashes,
                           compile_check, f"rerun with {DIRTY}")


def replay_kept(step: Step, rootfs: Path, log: str, seed_hashes: Collection[str] = (),
                compile_check: CompileCheck | None = None) -> list[ArtifactCheck] | None:
    """The checks of an M2-Mesoplanet step the build ran with ``--dirty-mode``: its
    temporaries are in the stage, and ``log`` (the build's log of the step) names the
    commands it spawned. They are replayed on the build's own files, as
    :func:`replay_mesoplanet` replays a rerun's, with nothing run again.

    None when the build kept nothing this can use (no ``--dirty-mode``, the commands not
    in ``log``, hex2 not writing the step's program, a file the commands name missing):
    the caller reruns the step then."""
    if step.output is None or DIRTY not in step.argv[1:]:
        return None
    commands = spawned_commands(log)
    if [c[0] for c in commands] not in (list(SPAWNED), [n for n in SPAWNED
                                                          if n != "blood-elf"]):
        return None
    _, out = file_args(Args.FLAGS, commands[-1][1:])
    if out is None or in_image(step.workdir, commands[-1][1 + out]) != step.output:
        return None
    for command in commands:
        ins, written = file_args(Args.FLAGS, command[1:])
        if written is None or not all(
                resolve(rootfs, in_image(step.workdir, command[1 + k])).is_file()
                for k in (*ins, written)):
            return None
    return _replay_spawned(step, commands, rootfs, rootfs, None, lambda a: a, seed_hashes,
                           compile_check, f"kept by the build's {DIRTY}")


def _replay_spawned(step: Step, commands: list[list[str]], rootfs: Path, chain_root: Path,
                    where: Callable[[str], Path] | None, shown: Callable[[str], str],
                    seed_hashes: Collection[str], compile_check: CompileCheck | None,
                    how: str) -> list[ArtifactCheck]:
    """Replay the commands M2-Mesoplanet spawned (their files in ``chain_root``, found
    through ``where``), each check named as the step's, its files as ``shown``."""
    checks: list[ArtifactCheck] = []
    for command in commands:
        spawned = command_step(step.stage, step.line, command, step.workdir)
        if command[0] == "M2-Planet" and compile_check is not None:
            found = [compile_check(step, command, chain_root)]
        else:
            found = replay(spawned, rootfs, seed_hashes, where=where)
        for check in found:
            checks.append(dataclasses.replace(
                check, artifact=shown(check.artifact), program=step.program,
                inputs=tuple(shown(i) for i in check.inputs) or step.inputs,
                detail=check.detail if check.status is Status.NOT_COVERED else
                f"spawned by M2-Mesoplanet ({how}): {check.detail}"))
    return checks


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _error(step: Step, detail: str) -> ArtifactCheck:
    return ArtifactCheck(step.stage, step.line, step.output or "?", "M2-Mesoplanet",
                         Status.ERROR, detail=detail)
