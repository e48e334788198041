"""Start-up and warm-rebuild benchmark (run by hand, not a test).

``python benchmarks/bench_startup.py [--mirror DIR] [--cache-dir DIR] [--tree DIR] [--runs N]``
(``--mirror`` defaults to ``$ROOTSEED_MIRROR``: the pinned stage0 tarballs + hex0-seed).

Measures, in one run on one machine:

(a) ``rootseed --version``: the console script as a user starts it (median of N runs);
    issue 19's target: under 0.15 s.
(b) a **warm** ``rootseed build bootstrap-stage0 --mirror DIR --offline``: every stage is in
    the cache (a cold build into ``--cache-dir`` first if it is not, not timed), a fresh
    ``--out`` each run (median of N runs).
(c) BuildKit's warm rebuild of StageX's stage0, side by side, when
    ``$ROOTSEED_BUILDKIT_WORK`` names a work dir set up by ``../shared/tools/buildkit-oracle``
    with ``SETUP_BUILDKIT_BUILD=1`` (its ``build-stage0`` script, buildkitd running); the
    ratio rootseed/BuildKit is printed. Without it, BuildKit's number is not measured here:
    the reference from issue 19 (0.27-0.32 s with buildkitd already running, measured on
    this kind of machine) is printed instead, and said to be a reference.
    The same comparison holds only on the same input: pass ``--tree`` a StageX checkout
    (BuildKit builds StageX's ``packages/bootstrap/stage0``).

The machine is shared: the load average is printed with the numbers, and with BuildKit the
two warm rebuilds alternate (rootseed, BuildKit, rootseed, ...) so that a change of load
hits both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PACKAGE = "bootstrap-stage0"
TARGET_VERSION = 0.15
BUILDKIT_REFERENCE = (0.27, 0.32)  # issue 19, measured side by side on StageX's stage0
BUILDKIT_ENV = "ROOTSEED_BUILDKIT_WORK"


def rootseed_command() -> list[str]:
    """The console script next to this interpreter (what a user runs), else ``-m``."""
    script = Path(sys.executable).with_name("rootseed")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rootseed"]


def rootseed_package() -> list[str]:
    """The directory of the rootseed package the console script runs."""
    found = subprocess.run([sys.executable, "-c", "import rootseed, os; "
                            "print(os.path.dirname(rootseed.__file__))"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return [found] if found else []


def timed(argv: Sequence[str], runs: int, *, cwd: Path | None = None,
          fresh: Path | None = None, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv`` (each must succeed); ``fresh`` is removed
    before each run (an output that must be written anew)."""
    seconds = []
    for _ in range(runs):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        started = time.perf_counter()
        r = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, check=False, env=env)
        seconds.append(time.perf_counter() - started)
        if r.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({r.returncode}):\n"
                     f"{r.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def show(label: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    print(f"{label:<34} median {median:6.3f} s  (min {min(seconds):.3f}, max "
          f"{max(seconds):.3f}, {len(seconds)} runs)")
    return median


def buildkit_command(work: Path, tmp: Path) -> list[str] | None:
    """BuildKit's warm rebuild of StageX's stage0 (buildkit-oracle's ``build-stage0``),
    after one untimed run that warms its cache; None (said why) when it is not set up."""
    script = work / "build-stage0"
    if not script.is_file():
        print(f"{BUILDKIT_ENV}={work}: no build-stage0 there (run buildkit-oracle with "
              "SETUP_BUILDKIT_BUILD=1)")
        return None
    timed([str(script), str(tmp / "bk-warmup.tar")], 1)  # warm BuildKit's cache first
    return [str(script), str(tmp / "bk.tar")]


def alternate(a: Sequence[str], b: Sequence[str], runs: int, *,
              fresh_a: Path | None = None) -> tuple[list[float], list[float]]:
    """``runs`` timed runs of each, alternating a, b, a, b, ... (a shared machine's load
    changes over a minute: both see the same)."""
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(runs):
        times_a += timed(a, 1, fresh=fresh_a)
        times_b += timed(b, 1)
    return times_a, times_b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=os.environ.get("ROOTSEED_MIRROR"))
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="a cache holding bootstrap-stage0 already (else a cold build first)")
    ap.add_argument("--tree", type=Path, default=None, help="package tree (default: shipped)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rootseed = rootseed_command()
    # byte-code as an installed package has it (PYTHONDONTWRITEBYTECODE=1, set here,
    # would otherwise compile every module edited since its last .pyc, at every start)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *rootseed_package()],
                   stdout=subprocess.DEVNULL, check=False)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")

    show("rootseed --version", timed([*rootseed, "--version"], 1))  # warm the page cache
    version = show("rootseed --version", timed([*rootseed, "--version"], args.runs))
    print(f"  target < {TARGET_VERSION} s: {'met' if version < TARGET_VERSION else 'NOT met'}")

    if args.mirror is None:
        print("warm rebuild: not measured (pass --mirror or set ROOTSEED_MIRROR)")
        return
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-startup-") as d:
        tmp = Path(d)
        cache = args.cache_dir or tmp / "cache"
        build = [*rootseed, "build", PACKAGE, "--mirror", str(args.mirror), "--offline",
                 "--cache-dir", str(cache), "--out", str(tmp / "out")]
        if args.tree is not None:
            build += ["--tree", str(args.tree)]
        started = time.perf_counter()
        # cold if the cache is new, else already warm; run as a user's first run is, writing
        # byte-code: with it the dataclass methods' code rootseed keeps beside the .pyc files
        # (rootseed/dataclasscode.py), which PYTHONDONTWRITEBYTECODE=1 would not write
        timed(build, 1, fresh=tmp / "out",
              env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        print(f"{'first build (cold or warm)':<34} {time.perf_counter() - started:6.3f} s "
              "(not counted)")
        work = os.environ.get(BUILDKIT_ENV)
        bk_command = buildkit_command(Path(work), tmp) if work else None
        if bk_command is not None:
            ours, theirs = alternate(build, bk_command, args.runs, fresh_a=tmp / "out")
            warm = show("rootseed warm rebuild", ours)
            bk = show("BuildKit warm rebuild (buildctl)", theirs)
            print(f"  rootseed / BuildKit: {warm / bk:.2f}x (target <= 1.00x; runs "
                  f"alternated); of the fastest runs: {min(ours) / min(theirs):.2f}x")
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        else:
            warm = show("rootseed warm rebuild", timed(build, args.runs, fresh=tmp / "out"))
            low, high = BUILDKIT_REFERENCE
            print(f"BuildKit warm rebuild: NOT measured here ({BUILDKIT_ENV} unset); the "
                  f"reference from issue 19 is {low}-{high} s with buildkitd running")
            print(f"  rootseed / reference: {warm / high:.2f}x-{warm / low:.2f}x "
                  "(not side by side)")


if __name__ == "__main__":
    main()
