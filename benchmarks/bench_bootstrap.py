"""Bootstrap benchmark (run by hand, not a test).

``python benchmarks/bench_bootstrap.py [--mirror DIR] [--runs N] [--jobs 2]``
(``--mirror`` defaults to ``$ROOTSEED_MIRROR``: the pinned stage0 tarballs + hex0-seed).

Measures, side by side on the same machine in one run:

(a) **sequential**: the same tool invocations as ``packages/bootstrap/stage0/Containerfile``
    (every RUN, read with :mod:`rootseed.containerfile`, in file order, each with its
    stage's WORKDIR and ARG/ENV environment) one after another in ONE root filesystem
    inside ONE sandbox session: a single :func:`rootseed.sandbox.run` whose command is a
    busybox ``sh`` script (busybox bound in read-only; ``env -i`` gives each step exactly
    the environment the builder would). One session rather than one ``sandbox.run`` per
    step, so the baseline holds only the tools' own time, no sandbox start-up per step:
    the lower bound a builder is compared with. The root filesystem (the ``unpacked`` and
    ``tree`` stages: sources unpacked, seed placed) is prepared beforehand with the
    builder's own stage runner and is not timed, as the sources are "already fetched";
    ``COPY --from=<stage>`` joins are no-ops in one shared root (the benchmark checks that
    each one copies a path to the same path).
(b) **cold** ``rootseed bootstrap`` (a fresh cache dir with the sources already fetched,
    ``--offline --jobs N``), as a subprocess.
(c) **warm** ``rootseed bootstrap`` (the same cache dir again).

Prints wall seconds (and the CPU seconds of the child processes), cold/sequential and the
warm time. Targets: cold ``bootstrap`` (build + crosscheck + DDC, the checks started while
the chain builds: crosscheck.ahead) <= 0.70x sequential (issue 23; the build alone was
issue 4's 0.65x), warm <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rootseed import shipped
from rootseed.containerfile import Run
from rootseed.engine.stage import StageContext, StageRunner
from rootseed.fetch import Fetcher
from rootseed.plan import ImageRef, Plan, PlannedCopy, PlannedRun, StagePath, StageRef, plan_package
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.tree import Package, Tree

PACKAGE = "bootstrap-stage0"
SOURCES_DONE = "tree"  # the last stage before the first RUN: sources unpacked, seed placed
BUSYBOX = Path("/usr/bin/busybox")
TARGET_COLD = 0.70
TARGET_WARM = 2.0


@dataclass(frozen=True)
class Step:
    stage: str
    line: int
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]


@dataclass
class Timing:
    wall: float
    cpu: float  # user + sys of the child processes


def _timed(fn: Callable[[], None]) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Timing(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


# -- (a) sequential ----------------------------------------------------------------------
def _steps(p: Plan) -> list[Step]:
    """Every RUN after the sources stage, in file order, with its planned cwd and env."""
    steps: list[Step] = []
    started = False
    for stage in p.stages:
        last = stage is p.stages[-1]  # the image assembly: runs no tool
        for i in stage.steps:
            if isinstance(i, PlannedRun):
                if isinstance(i.instruction, Run) and i.instruction.shell_form:
                    raise SystemExit(f"line {i.line}: shell-form RUN; this benchmark runs "
                                     "exec-form steps only")
                steps.append(Step(stage.label, i.line, i.argv, i.workdir, dict(i.env)))
            elif isinstance(i, PlannedCopy) and started and not last:
                joins = ["/" + s.path for s in i.sources if isinstance(s, StagePath)]
                if joins and joins != [i.dest.rstrip("/")]:
                    raise SystemExit(f"line {i.line}: a COPY --from a stage that is not a "
                                     "same-path join; one shared root cannot replay it")
        started = started or stage.name == SOURCES_DONE
    return steps


def _prepare_rootfs(pkg: Package, p: Plan, fetch_dir: Path, work: Path) -> Path:
    """The root filesystem of the sources stage, made by the builder's stage runner."""
    roots: dict[int, Path] = {}

    def source_root(ref: StageRef | ImageRef) -> Path:
        if isinstance(ref, ImageRef):
            raise SystemExit(f"COPY --from={ref.reference}: the sources stages use no image")
        return roots[ref.index]

    for stage in p.stages:
        rootfs = work / f"rootfs-{stage.index}"
        rootfs.mkdir(mode=0o755)
        ctx = StageContext(package=pkg.name, display=p.display, context_dir=pkg.directory,
                           fetch_dir=fetch_dir, work=work / f"stage-{stage.index}",
                           log_dir=work / "logs", source_root=source_root)
        StageRunner(ctx, stage, rootfs).execute()
        roots[stage.index] = rootfs
        if stage.name == SOURCES_DONE:
            return rootfs
    raise SystemExit(f"no stage {SOURCES_DONE!r} in {p.display}")


def _script(steps: list[Step]) -> str:
    lines = ["B=/.bench/busybox"]
    for n, s in enumerate(steps, 1):
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(s.env.items()))
        lines.append(f"echo '## {n} {s.stage} line {s.line}'")
        lines.append(f"$B mkdir -p {shlex.quote(s.cwd)} && cd {shlex.quote(s.cwd)} && "
                     f"$B env -i {env} {shlex.join(s.argv)} || exit $?")
    lines.append("times")  # the shell's and its children's user/sys CPU, for the report
    return "\n".join(lines) + "\n"


def _children_cpu(log: Path) -> float:
    """User + sys CPU of the steps, from the last line of the shell's ``times``."""
    last = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1]
    total = 0.0
    for word in last.split():  # "0m12.34s 0m0.56s"
        minutes, _, seconds = word.rstrip("s").partition("m")
        total += int(minutes) * 60 + float(seconds)
    return total


def sequential(tree: Tree, mirror: Path, work: Path) -> tuple[Timing, int]:
    pkg = tree.get(PACKAGE)
    p = plan_package(pkg, display=str(pkg.containerfile.relative_to(tree.root.parent)),
                     all_stages=True)
    fetch_dir = work / "fetch"
    fetch_dir.mkdir()
    fetcher = Fetcher(work / "cache", (mirror,), offline=True, progress=False,
                      base_dir=tree.root)
    for sid, path in fetcher.fetch_package(pkg).items():
        shutil.copyfile(path, fetch_dir / pkg.source(sid).file)
    fetcher.close()
    rootfs = _prepare_rootfs(pkg, p, fetch_dir, work)
    steps = _steps(p)
    script = work / "steps.sh"
    script.write_text(_script(steps), encoding="utf-8")
    log = work / "sequential.log"
    spec = SandboxSpec(rootfs=rootfs, argv=["/.bench/busybox", "sh", "/.bench/steps.sh"],
                       env={"PATH": "/.bench"}, cwd="/",
                       ro_binds=((BUSYBOX, "/.bench/busybox"), (script, "/.bench/steps.sh")))
    codes: list[int] = []
    timing = _timed(lambda: codes.append(sandbox_run(spec, log=log)))
    if codes[0] != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise SystemExit(f"sequential run failed (exit {codes[0]}):\n" + "\n".join(tail))
    timing.cpu = _children_cpu(log)  # processes in the sandbox are not in RUSAGE_CHILDREN
    return timing, len(steps)


# -- (b), (c) rootseed bootstrap ----------------------------------------------------------
def bootstrap(tree: Tree, mirror: Path, cache: Path, out: Path, jobs: int,
              command: tuple[str, ...] = ("bootstrap",)) -> Timing:
    """``rootseed bootstrap`` (build + verify + crosscheck), or another command, timed."""
    argv = [sys.executable, "-m", "rootseed", *command, "--tree", str(tree.root),
            "--mirror", str(mirror), "--offline", "--jobs", str(jobs),
            "--cache-dir", str(cache), "--out", str(out), "--json"]

    def go() -> None:
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise SystemExit(f"rootseed {' '.join(command)} failed:\n{r.stderr[-3000:]}")

    return _timed(go)


def prefetch(tree: Tree, mirror: Path, cache: Path) -> None:
    fetcher = Fetcher(cache, (mirror,), offline=True, progress=False, base_dir=tree.root)
    for name in tree.order([PACKAGE]):
        fetcher.fetch_package(tree.get(name))
    fetcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=os.environ.get("ROOTSEED_MIRROR"),
                        help="dir with the pinned stage0 sources (default $ROOTSEED_MIRROR)")
    parser.add_argument("--runs", type=int, default=1, help="repetitions (medians shown)")
    parser.add_argument("--jobs", type=int, default=2, help="rootseed bootstrap --jobs")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm repetitions per run")
    args = parser.parse_args()
    if args.mirror is None or not (Path(args.mirror) / "hex0-seed").is_file():
        parser.error("--mirror DIR (or ROOTSEED_MIRROR) with the stage0 sources is required")
    mirror = Path(args.mirror).resolve()
    tree = Tree.load(shipped.packages())
    seq: list[Timing] = []
    cold: list[Timing] = []
    cold_build: list[Timing] = []
    warm: list[Timing] = []
    n_steps = 0
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-bootstrap-") as tmp_name:
        tmp = Path(tmp_name)
        for run in range(args.runs):
            work = tmp / f"seq-{run}"
            work.mkdir()
            t, n_steps = sequential(tree, mirror, work)
            seq.append(t)
            shutil.rmtree(work, ignore_errors=True)
            cache, out = tmp / f"cache-{run}", tmp / f"out-{run}"
            prefetch(tree, mirror, cache)
            cold.append(bootstrap(tree, mirror, cache, out, args.jobs))
            warm += [bootstrap(tree, mirror, cache, out, args.jobs)
                     for _ in range(args.warm_runs)]
            shutil.rmtree(cache, ignore_errors=True)
            prefetch(tree, mirror, cache)
            cold_build.append(bootstrap(tree, mirror, cache, out, args.jobs,
                                        command=("build", PACKAGE)))
            shutil.rmtree(cache, ignore_errors=True)
            print(f"run {run + 1}: sequential {seq[-1].wall:.1f}s, cold {cold[-1].wall:.1f}s, "
                  f"warm {warm[-1].wall:.2f}s", file=sys.stderr)

    def med(xs: list[Timing], cpu: bool = False) -> float:
        return statistics.median(x.cpu if cpu else x.wall for x in xs)

    load = os.getloadavg()[0]
    print("cpu s: (a) the tools' CPU (the shell's `times`); (b), (c) rootseed's own CPU "
          "outside the sandbox (tools in bwrap are not counted)")
    print(f"{'measurement':52} {'wall s':>9} {'cpu s':>9}")
    print(f"{f'(a) sequential: {n_steps} RUN steps, one sandbox session':52} "
          f"{med(seq):9.2f} {med(seq, True):9.2f}")
    print(f"{f'(b) cold rootseed bootstrap --jobs {args.jobs}':52} "
          f"{med(cold):9.2f} {med(cold, True):9.2f}")
    print(f"{f'(b2) cold rootseed build {PACKAGE} --jobs {args.jobs}':52} "
          f"{med(cold_build):9.2f} {med(cold_build, True):9.2f}")
    print(f"{'(c) warm rootseed bootstrap (cached)':52} {med(warm):9.2f} {med(warm, True):9.2f}")
    print(f"{'cold / sequential (wall)':52} {med(cold) / med(seq):9.2f}x"
          f"   target <= {TARGET_COLD}x")
    print(f"{'cold build alone / sequential (wall)':52} {med(cold_build) / med(seq):9.2f}x"
          "   (the chain without bootstrap's checks and crosscheck)")
    print(f"{'warm (wall)':52} {med(warm):9.2f}s   target <= {TARGET_WARM}s")
    print(f"runs: {args.runs}, warm runs: {len(warm)}, load average at the end: {load:.2f}, "
          f"cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
