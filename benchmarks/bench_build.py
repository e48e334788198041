"""Builder benchmark (run by hand): ``python benchmarks/bench_build.py [--runs N]``.

Prints, side by side: sandbox start overhead per RUN (ms), a cold build, a warm (cached)
rebuild, and ``--jobs 2`` vs ``--jobs 1`` on independent stages.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from buildtree import app_package, make_tree
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

N_RUNS = 20


def _timed(builder: Builder, names: list[str], options: BuildOptions) -> float:
    start = time.perf_counter()
    builder.build(names, options)
    return time.perf_counter() - start


def _many_runs_containerfile(n: int) -> str:
    return "FROM rs/bootstrap-base\n" + "".join(f"RUN true # {i}\n" for i in range(n))


def _independent_stages_containerfile(n: int, work: str) -> str:
    stages = "".join(f"FROM rs/bootstrap-base AS s{i}\nRUN {work} > /r{i}\n" for i in range(n))
    copies = "".join(f"COPY --from=s{i} /r{i} /\n" for i in range(n))
    return stages + "FROM scratch\n" + copies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement")
    args = parser.parse_args()
    quiet = BuildOptions(progress=False)
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-") as tmp_name:
        tmp = Path(tmp_name)
        tree_dir = make_tree(tmp)

        def fresh(name: str) -> Builder:
            return Builder(Tree.load(tree_dir), cache_dir=tmp / f"cache-{name}",
                           out=tmp / f"out-{name}")

        # cold build of the base, then everything else reuses its cache dir copy
        base_builder = fresh("base")
        cold_base = _timed(base_builder, ["bootstrap-base"], quiet)

        # sandbox overhead: N trivial RUNs vs 1 trivial RUN, no cache
        per_run: list[float] = []
        for _ in range(args.runs):
            app_package(tree_dir, _many_runs_containerfile(N_RUNS))
            b = fresh("base")
            t_many = _timed(b, ["core-app"], BuildOptions(no_cache=True, progress=False))
            app_package(tree_dir, _many_runs_containerfile(1))
            t_one = _timed(b, ["core-app"], BuildOptions(no_cache=True, progress=False))
            per_run.append((t_many - t_one) / (N_RUNS - 1) * 1000)

        # warm rebuild of the multi-stage package (image-level cache hit)
        app_package(tree_dir)
        b = fresh("base")
        cold_app = _timed(b, ["core-app"], quiet)
        warm = [_timed(b, ["core-app"], quiet) for _ in range(args.runs)]

        # independent stages: --jobs 1 vs --jobs 2
        app_package(tree_dir, _independent_stages_containerfile(
            2, "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i'"))
        jobs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.runs):
            for n in (1, 2):
                b = fresh("base")
                jobs[n].append(_timed(b, ["core-app"], BuildOptions(
                    no_cache=True, jobs=n, progress=False)))
        for d in tmp.glob("cache-*"):
            shutil.rmtree(d, ignore_errors=True)

    med = statistics.median
    print(f"{'measurement':44} {'value':>12}")
    print(f"{'cold build bootstrap-base (s)':44} {cold_base:12.3f}")
    print(f"{'sandbox start overhead per RUN (ms)':44} {med(per_run):12.1f}")
    print(f"{'cold build core-app, 3 stages (s)':44} {cold_app:12.3f}")
    print(f"{'warm rebuild core-app, cached (s)':44} {med(warm):12.3f}")
    print(f"{'cold / warm':44} {cold_app / med(warm):12.1f}x")
    print(f"{'2 independent stages, --jobs 1 (s)':44} {med(jobs[1]):12.3f}")
    print(f"{'2 independent stages, --jobs 2 (s)':44} {med(jobs[2]):12.3f}")
    print(f"{'speed-up --jobs 2 vs --jobs 1':44} {med(jobs[1]) / med(jobs[2]):12.2f}x")


if __name__ == "__main__":
    main()
