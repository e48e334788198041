"""Diverse double-compiling (Wheeler, 2009) of the chain's C-compiler steps.

M2-Planet and M2-Mesoplanet are built from the package's own pinned sources by each
independent host compiler (gcc, clang, tcc), each compile in the sandbox with the host's
``/usr`` bound read-only and nothing else of the host. The programs they yield then redo
the chain's compile steps, again in the sandbox: the stage's top-level directories bound
read-only at their own paths, the output written elsewhere, so the command line is the
chain's own except for the program and the output name. Their output must equal, byte
for byte, the file the chain's compiler wrote.

Nothing here runs a binary of the chain: an M2-Mesoplanet rerun spawns the DDC-built
M2-Planet, and its blood-elf, M1 and hex2 are ``true`` (the Python tools replay those
steps on the same bytes, see :mod:`rootseed.crosscheck.mesoplanet`).
"""

from __future__ import annotations

import posixpath
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.crosscheck.compare import first_difference
from rootseed.crosscheck.compilers import Compiler, Missing
from rootseed.crosscheck.ddc_sources import DdcSources, scan
from rootseed.crosscheck.mesoplanet import DIRTY, spawned_commands
from rootseed.crosscheck.model import ArtifactCheck, Status
from rootseed.crosscheck.recipe import Recipe
from rootseed.crosscheck.sandboxroot import entered_root, host_runtime, stage_binds
from rootseed.crosscheck.steps import Args, Step, file_args, in_image
from rootseed.engine.api import StageTree, extract_archive, makedirs
from rootseed.errors import RootseedError
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.sandbox.rootpath import resolve

#: where a DDC program sees its own things (never a path of the stage0 tree)
DDC_DIR = "/.rootseed-ddc"
_BIN = f"{DDC_DIR}/bin"
_OUT = f"{DDC_DIR}/out"
_TMP = f"{DDC_DIR}/tmp"
#: what M2-Mesoplanet's blood-elf, M1 and hex2 are in a DDC rerun (the Python tools do
#: that work on the same bytes): nothing of the chain runs.
_TRUE = Path("/usr/bin/true")
_LOG_TAIL = 1500


@dataclass(frozen=True)
class Built:
    compiler: Compiler
    programs: Mapping[str, Path]  # program → the binary it built (host path)
    failures: Mapping[str, str]  # program → why it did not build


@dataclass
class Toolset:
    built: list[Built] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    problem: str = ""  # why no DDC program could be built at all

    def programs(self, program: str) -> list[tuple[Compiler, Path]]:
        return [(b.compiler, b.programs[program]) for b in self.built
                if program in b.programs]

    def skipped(self, program: str) -> list[str]:
        """Every compiler that did not yield ``program``, with the reason."""
        out = [f"{m.name}: {m.reason}" for m in self.missing]
        out += [f"{b.compiler.name} {b.compiler.version}: {b.failures[program]}"
                for b in self.built if program in b.failures]
        if self.problem:
            out.append(self.problem)
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "compilers": [{"name": b.compiler.name, "version": b.compiler.version,
                           "label": b.compiler.label,
                           "flags": list(self.flags(b.compiler)),
                           "built": sorted(b.programs), "failed": dict(b.failures)}
                          for b in self.built],
            "missing": [{"name": m.name, "reason": m.reason} for m in self.missing],
            "recipes": {p: {"sources": list(r.sources), "cflags": list(r.cflags)}
                        for p, r in sorted(self.recipes.items())},
            "problem": self.problem,
        }

    def flags(self, compiler: Compiler, program: str = "M2-Planet") -> tuple[str, ...]:
        """The flags ``compiler`` built ``program`` with (the makefile's, then its own)."""
        recipe = self.recipes.get(program)
        return (*(recipe.cflags if recipe else ()), *compiler.flags)


def _tail(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-_LOG_TAIL:].strip()


# -- building the DDC compilers ----------------------------------------------------------
def _unpack(archive: Path, top: str, dest: Path, scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    extract_archive(archive, scratch, "/")
    inner = scratch / top
    if not inner.is_dir() or inner.is_symlink():
        raise RootseedError(f"{archive.name} has no directory {top}")
    inner.rename(dest)


def prepare_sources(sources: DdcSources, work: Path) -> dict[str, Path]:
    """Each project unpacked under ``work/src/<program>``, M2libc in its ``M2libc/``."""
    trees: dict[str, Path] = {}
    for program, project in sorted(sources.projects.items()):
        dest = work / "src" / program
        dest.parent.mkdir(parents=True, exist_ok=True)
        _unpack(project.archive, project.top, dest, work / f"unpack-{program}")
        if project.recipe.uses_m2libc:
            if sources.m2libc is None:
                raise RootseedError(f"{program}'s makefile compiles M2libc files, but no "
                                    "pinned source of the package is M2libc")
            libc = dest / "M2libc"
            if libc.is_symlink() or (libc.exists() and not libc.is_dir()):
                raise RootseedError(f"{project.archive.name}: M2libc is not a directory")
            if libc.is_dir():
                shutil.rmtree(libc)  # the empty git-submodule directory
            _unpack(*sources.m2libc, libc, work / f"unpack-m2libc-{program}")
        trees[program] = dest
    return trees


def compile_program(compiler: Compiler, recipe: Recipe, flags: Sequence[str], tree: Path,
                    work: Path, log: Path) -> Path:
    """Build ``recipe.program`` from ``tree`` with ``compiler`` in the sandbox."""
    root = work / "root"
    (root / "src").mkdir(parents=True)
    (root / "out").mkdir()
    binds = [*host_runtime(root), (tree, "/src"),
             # the driver itself at its own path: the sandbox checks the command is there
             (compiler.path, str(compiler.path))]
    argv = [str(compiler.path), *flags, *recipe.sources, "-o", f"/out/{recipe.program}"]
    code = sandbox_run(SandboxSpec(rootfs=root, argv=argv, env={"PATH": "/usr/bin",
                                                                "LC_ALL": "C"},
                                   cwd="/src", ro_binds=binds), log=log)
    built = root / "out" / recipe.program
    if code != 0 or not built.is_file() or built.is_symlink():
        raise RootseedError(f"exit {code}; log {log}: {_tail(log)[-300:]}")
    return built


def build_toolset(sources: DdcSources, compilers: Sequence[Compiler],
                  missing: Sequence[Missing], work: Path, logs: Path, jobs: int = 1,
                  progress: Callable[[str], None] | None = None) -> Toolset:
    """Build every program of ``sources`` with every compiler (``jobs`` at a time)."""
    recipes = {p: proj.recipe for p, proj in sources.projects.items()}
    toolset = Toolset(missing=list(missing), recipes=recipes)
    if "M2-Planet" not in sources.projects:
        toolset.problem = "no pinned source of the package has M2-Planet's makefile"
        return toolset
    try:
        trees = prepare_sources(sources, work)
    except RootseedError as e:
        toolset.problem = f"the pinned sources could not be prepared: {e.message}"
        return toolset
    logs.mkdir(parents=True, exist_ok=True)
    jobs_list = [(c, p) for c in compilers for p in sorted(recipes)]

    def one(item: tuple[Compiler, str]) -> tuple[Compiler, str, Path | str]:
        compiler, program = item
        if progress is not None:
            progress(f"DDC: building {program} with {compiler.name} {compiler.version}")
        log = logs / f"ddc-build-{compiler.name}-{program}.log"
        log.write_bytes(b"")
        flags = (*recipes[program].cflags, *compiler.flags)
        try:
            return compiler, program, compile_program(
                compiler, recipes[program], flags, trees[program],
                work / f"build-{compiler.name}-{program}", log)
        except RootseedError as e:
            return compiler, program, f"{compiler.name} could not build {program}: {e.message}"

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, jobs_list))
    for compiler in compilers:
        programs = {p: r for c, p, r in results if c is compiler and isinstance(r, Path)}
        failures = {p: r for c, p, r in results if c is compiler and isinstance(r, str)}
        toolset.built.append(Built(compiler, programs, failures))
    return toolset


# -- replaying a compile step ------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one DDC program produced for one step."""

    compiler: Compiler
    data: bytes | None  # None: it failed
    message: str = ""  # why it failed
    #: other files compared on the way: (offset, size, what) of each difference
    differences: tuple[tuple[int, int, str], ...] = ()
    notes: tuple[str, ...] = ()  # what else was seen (e.g. a difference in layout only)


def layout_free(source: bytes) -> bytes:
    """Preprocessed source without what carries no meaning for M2-Planet: blank lines
    and the ``// #FILENAME <file> <line>`` markers (comments)."""
    return b"\n".join(line for line in source.splitlines()
                      if line.strip() and not line.startswith(b"// #FILENAME "))


def compare_preprocessed(chain: bytes, ddc: bytes, label: str
                         ) -> tuple[tuple[tuple[int, int, str], ...], tuple[str, ...]]:
    """A difference of the preprocessed sources, or a note when only layout differs."""
    offset = first_difference(chain, ddc)
    if offset is None:
        return (), ()
    what = f"{label}: M2-Mesoplanet's preprocessed source"
    if layout_free(chain) == layout_free(ddc):
        return (), (f"{what} differs from the chain's in blank lines and // #FILENAME "
                    f"line markers only (first at offset {offset})",)
    return ((offset, len(ddc), f"{what} differs at offset {offset}"),), ()


def _sandbox_root(work: Path, stage: StageTree, workdir: str
                  ) -> tuple[Path, list[tuple[Path, str]]]:
    root = work / "root"
    root.mkdir(parents=True)
    binds, taken = stage_binds(root, stage, skip=(DDC_DIR.strip("/"),))
    binds += host_runtime(root, taken)
    for sub in (_OUT, _TMP, _BIN):
        (root / sub.strip("/")).mkdir(parents=True, exist_ok=True)
    # The working directory is the stage's (hostile): created inside ``root``, following
    # the recreated top-level symlinks the way the sandbox will, never on the host.
    makedirs(root, workdir)
    return root, binds


def run_m2(compiler: Compiler, binary: Path, step: Step, stage: StageTree, work: Path,
           log: Path) -> Outcome:
    """Redo ``step`` (an ``M2``/``M2-Planet`` RUN) with the DDC-built M2-Planet."""
    _, out = file_args(Args.FLAGS, step.argv[1:])
    if out is None:
        return Outcome(compiler, None, "no -o in the command line")
    root, binds = _sandbox_root(work, stage, step.workdir)
    args = list(step.argv[1:])
    args[out] = f"{_OUT}/output"
    program = f"{_BIN}/M2-Planet"
    code = sandbox_run(SandboxSpec(rootfs=root, argv=[program, *args],
                                   env={"PATH": _BIN}, cwd=step.workdir,
                                   ro_binds=[*binds, (binary, program)],
                                   entered=entered_root(stage, root)), log=log)
    produced = root / _OUT.strip("/") / "output"
    if code != 0 or not produced.is_file():
        return Outcome(compiler, None, f"exit {code}; log {log}: {_tail(log)[-300:]}")
    return Outcome(compiler, produced.read_bytes())


def run_mesoplanet(compiler: Compiler, mesoplanet: Path, planet: Path, step: Step,
                   env: Mapping[str, str], stage: StageTree, chain_root: Path,
                   chain_command: Sequence[str], work: Path, log: Path) -> Outcome:
    """Redo ``step`` (an M2-Mesoplanet RUN) with the DDC-built M2-Mesoplanet driving the
    DDC-built M2-Planet; the result is the C → M1 output of its M2-Planet spawn, compared
    with the chain's (``chain_command``, run in ``chain_root``). The preprocessed source
    M2-Mesoplanet handed to M2-Planet is compared as well."""
    _, out = file_args(Args.FLAGS, step.argv[1:])
    if out is None:
        return Outcome(compiler, None, "no --output in the command line")
    root, binds = _sandbox_root(work, stage, step.workdir)
    args = list(step.argv[1:])
    args[out] = f"{_OUT}/program"
    binds += [(mesoplanet, f"{_BIN}/M2-Mesoplanet"), (planet, f"{_BIN}/M2-Planet")]
    binds += [(_TRUE, f"{_BIN}/{name}") for name in ("blood-elf", "M1", "hex2")]
    run_env = {**env, "PATH": f"{_BIN}:{env.get('PATH', '')}", "TMPDIR": _TMP}
    code = sandbox_run(SandboxSpec(rootfs=root, argv=[f"{_BIN}/M2-Mesoplanet", DIRTY, *args],
                                   env=run_env, cwd=step.workdir, ro_binds=binds,
                                   entered=entered_root(stage, root)), log=log)
    if code != 0:
        return Outcome(compiler, None, f"exit {code}; log {log}: {_tail(log)[-300:]}")
    mine = [c for c in spawned_commands(log.read_text(encoding="utf-8", errors="replace"))
            if c[0] == "M2-Planet"]
    if len(mine) != 1:
        return Outcome(compiler, None, f"it spawned M2-Planet {len(mine)} times; log {log}")
    files = []
    for command, where in ((mine[0], root), (list(chain_command), chain_root)):
        ins, output = file_args(Args.FLAGS, command[1:])
        if len(ins) != 1 or output is None:
            return Outcome(compiler, None, f"unexpected M2-Planet command: {command}")
        paths = [resolve(where, in_image(step.workdir, command[1 + k]))
                 for k in (ins[0], output)]
        if not all(p.is_file() for p in paths):
            return Outcome(compiler, None, f"a temporary of {' '.join(command)} is missing")
        files.append([p.read_bytes() for p in paths])
    (ddc_pre, ddc_m1), (chain_pre, _) = files
    differences, notes = compare_preprocessed(chain_pre, ddc_pre, compiler.label)
    return Outcome(compiler, ddc_m1, differences=differences, notes=notes)


def summarize(step: Step, artifact: str, chain: bytes, outcomes: Sequence[Outcome],
              skipped: Sequence[str], flags: Callable[[Compiler], Sequence[str]],
              what: str) -> ArtifactCheck:
    """One check from every compiler's outcome (pure). Different if any DDC program
    disagrees; an error if one failed; identical when every one that ran agrees."""
    program = posixpath.basename(step.argv[0]) if step.argv else "?"
    if not outcomes:
        why = "; ".join(skipped) or "no compiler"
        return ArtifactCheck(step.stage, step.line, artifact, program, Status.NOT_COVERED,
                             detail=f"C compiler: no independent compiler available ({why})",
                             program=step.program, inputs=step.inputs)
    same: list[str] = []
    problems: list[str] = []
    offsets: list[tuple[int, int, str]] = []
    for o in outcomes:
        if o.data is None:
            problems.append(f"{o.compiler.label} failed: {o.message}")
            continue
        offsets.extend(o.differences)
        offset = first_difference(chain, o.data)
        if offset is None:
            same.append(o.compiler.label)
        else:
            offsets.append((offset, len(o.data), f"{o.compiler.label}: differs at offset "
                                                  f"{offset} ({len(o.data)} bytes)"))
    labels = tuple(same)
    how = "; ".join(f"{o.compiler.name} {o.compiler.version} "
                    f"({' '.join(flags(o.compiler))})" for o in outcomes)
    skip = f"; skipped: {'; '.join(skipped)}" if skipped else ""
    skip += "".join(f"; {n}" for o in outcomes for n in o.notes)
    if offsets:
        first = min(offsets)
        return ArtifactCheck(step.stage, step.line, artifact, "DDC", Status.DIFFERENT,
                             offset=first[0], chain_size=len(chain), python_size=first[1],
                             detail="; ".join(o[2] for o in offsets) + f" (built with {how})",
                             reproduced_by=labels, program=step.program,
                             inputs=step.inputs)
    if problems:
        return ArtifactCheck(step.stage, step.line, artifact, "DDC", Status.ERROR,
                             detail="; ".join(problems), reproduced_by=labels, program=step.program,
                             inputs=step.inputs)
    return ArtifactCheck(step.stage, step.line, artifact, "DDC", Status.IDENTICAL,
                         chain_size=len(chain), python_size=len(chain),
                         detail=f"{what} built from the pinned sources by {how}{skip}",
                         reproduced_by=labels, program=step.program,
                             inputs=step.inputs)


# -- one package's diverse double-compiling ----------------------------------------------
class Diverse:
    """The DDC programs of one package (built once, in the background) and the checks of
    its compile steps. ``work`` must outlive every check."""

    def __init__(self, pool: ThreadPoolExecutor, archives: Sequence[Path],
                 compilers: Sequence[Compiler], missing: Sequence[Missing], work: Path,
                 logs: Path, jobs: int = 1,
                 progress: Callable[[str], None] | None = None) -> None:
        self.work = work
        self.logs = logs
        self._counter = 0
        self._lock = threading.Lock()
        self.future: Future[Toolset] = pool.submit(
            lambda: build_toolset(scan(archives), compilers, missing, work / "ddc",
                                  logs, jobs, progress))

    @property
    def toolset(self) -> Toolset:
        return self.future.result()

    def _scratch(self, what: str) -> tuple[Path, Path]:
        with self._lock:
            self._counter += 1
            n = self._counter
        log = self.logs / f"ddc-{n}-{what}.log"
        log.write_bytes(b"")  # a log of an earlier crosscheck is not this one's
        return self.work / f"run-{n}", log

    def m2_step(self, step: Step, stage: StageTree) -> list[ArtifactCheck]:
        """Redo an ``M2`` RUN with every DDC-built M2-Planet."""
        assert step.output is not None
        toolset = self.toolset
        chain_file = resolve(stage.rootfs, step.output)
        if not chain_file.is_file():
            return [ArtifactCheck(step.stage, step.line, step.output, "DDC", Status.ERROR,
                                  detail=f"not in the stage's files: {step.output}")]
        outcomes = []
        for compiler, binary in toolset.programs("M2-Planet"):
            work, log = self._scratch(f"{compiler.name}-{posixpath.basename(step.output)}")
            outcomes.append(run_m2(compiler, binary, step, stage, work, log))
        return [summarize(step, step.output, chain_file.read_bytes(), outcomes,
                          toolset.skipped("M2-Planet"), toolset.flags,
                          "M2-Planet")]

    def mesoplanet_check(self, env: Mapping[str, str], stage: StageTree
                         ) -> Callable[[Step, Sequence[str], Path], ArtifactCheck]:
        """The check of the M2-Planet command an M2-Mesoplanet rerun spawned."""
        def check(step: Step, command: Sequence[str], chain_root: Path) -> ArtifactCheck:
            toolset = self.toolset
            _, out = file_args(Args.FLAGS, command[1:])
            artifact = in_image(step.workdir, command[1 + out]) if out is not None else "?"
            chain_file = resolve(chain_root, artifact)
            if out is None or not chain_file.is_file():
                return ArtifactCheck(step.stage, step.line, artifact, "DDC", Status.ERROR,
                                     detail="the rerun kept no M2-Planet output")
            pairs = {c.name: (c, p) for c, p in toolset.programs("M2-Planet")}
            outcomes = []
            skipped = toolset.skipped("M2-Mesoplanet")
            for compiler, meso in toolset.programs("M2-Mesoplanet"):
                if compiler.name not in pairs:
                    continue
                work, log = self._scratch(f"{compiler.name}-mesoplanet")
                outcomes.append(run_mesoplanet(compiler, meso, pairs[compiler.name][1], step,
                                               env, stage, chain_root, command,
                                               work, log))
            return summarize(step, artifact, chain_file.read_bytes(), outcomes,
                             [*skipped, *(s for s in toolset.skipped("M2-Planet")
                                          if s not in skipped)],
                             lambda c: toolset.flags(c, "M2-Mesoplanet"),
                             "M2-Mesoplanet and M2-Planet")
        return check
