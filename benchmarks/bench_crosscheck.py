"""Crosscheck benchmark: with diverse double-compiling vs without (run by hand, not a test).

``python benchmarks/bench_crosscheck.py [--mirror DIR] [--runs N] [--jobs 2]
[--before REV] [--cache-dir DIR]``
(``--mirror`` defaults to ``$ROOTSEED_MIRROR``: the pinned stage0 tarballs + hex0-seed).

bootstrap-stage0 is built once into the cache (not timed), then, in one run, side by side
and interleaved (so a change of machine load hits every variant alike):

(a) ``rootseed crosscheck bootstrap-stage0`` as rootseed was at ``--before REV`` (its
    ``src/`` from ``git archive``; skipped without ``--before``): the time DDC must not
    exceed;
(b) ``rootseed crosscheck bootstrap-stage0`` now, without ``--ddc``;
(c) ``rootseed crosscheck bootstrap-stage0 --ddc`` now (gcc, clang, tcc as installed).

Prints the wall seconds (medians) and (c)/(a), (c)/(b); the target is (c) <= (a).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bootstrap-stage0"


def _rootseed(src: Path, args: list[str], mirror: Path, cache: Path, out: Path,
              jobs: int) -> tuple[float, str]:
    argv = [sys.executable, "-m", "rootseed", *args, "--tree", str(ROOT / "packages"),
            "--mirror", str(mirror), "--offline", "--jobs", str(jobs),
            "--cache-dir", str(cache), "--out", str(out), "--json"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"rootseed {' '.join(args)} failed ({r.returncode}):\n"
                         f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return wall, r.stdout


def _counts(stdout: str) -> str:
    try:
        data = json.loads(stdout)
    except ValueError:
        return "?"
    counts = data.get("counts", {}) if isinstance(data, dict) else {}
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def _source_at(rev: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, default=os.environ.get("ROOTSEED_MIRROR"),
                        help="dir with the pinned stage0 sources (default $ROOTSEED_MIRROR)")
    parser.add_argument("--runs", type=int, default=1, help="repetitions (medians shown)")
    parser.add_argument("--jobs", type=int, default=2, help="crosscheck --jobs")
    parser.add_argument("--before", metavar="REV",
                        help="git revision of rootseed without DDC, timed as (a)")
    parser.add_argument("--cache-dir", type=Path,
                        help="reuse this cache (default: a fresh one, built first)")
    args = parser.parse_args()
    if args.mirror is None or not (Path(args.mirror) / "hex0-seed").is_file():
        parser.error("--mirror DIR (or ROOTSEED_MIRROR) with the stage0 sources is required")
    mirror = Path(args.mirror).resolve()
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-crosscheck-") as tmp_name:
        tmp = Path(tmp_name)
        cache = args.cache_dir or tmp / "cache"
        out = tmp / "out"
        now = ROOT / "src"
        print(f"building {PACKAGE} (not timed)…", file=sys.stderr)
        _rootseed(now, ["build", PACKAGE], mirror, cache, out, args.jobs)
        variants: list[tuple[str, Path, list[str]]] = []
        if args.before:
            variants.append((f"(a) crosscheck at {args.before} (before DDC)",
                             _source_at(args.before, tmp), ["crosscheck", PACKAGE]))
        variants.append(("(b) crosscheck now, without --ddc", now, ["crosscheck", PACKAGE]))
        variants.append(("(c) crosscheck now, --ddc", now, ["crosscheck", PACKAGE, "--ddc"]))
        times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for run in range(args.runs):
            for name, src, command in variants:
                wall, stdout = _rootseed(src, command, mirror, cache, out, args.jobs)
                times[name].append(wall)
                print(f"run {run + 1}: {name}: {wall:.1f}s ({_counts(stdout)}; load "
                      f"{os.getloadavg()[0]:.1f})", file=sys.stderr)
        if args.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"{'measurement':48} {'wall s':>9}")
    for name, value in med.items():
        print(f"{name:48} {value:9.1f}")
    ddc = med[variants[-1][0]]
    for name, _, _ in variants[:-1]:
        print(f"{'(c) / ' + name[:3]:48} {ddc / med[name]:9.2f}x")
    if args.before:
        target = med[variants[0][0]]
        print(f"target: (c) <= (a): {'met' if ddc <= target else 'NOT met'} "
              f"({ddc - target:+.1f} s)")
    print(f"runs: {args.runs}, jobs: {args.jobs}, load average at the end: "
          f"{os.getloadavg()[0]:.2f}, cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
