"""Remote execution benchmark (run by hand, not a test).

``python benchmarks/bench_remote.py [--mirror DIR] [--no-stage0] [--no-examples]
[--warm-only grpc://HOST:PORT [--rounds N]]``
(``--mirror`` defaults to ``$ROOTSEED_MIRROR``; without one, stage0 is left out).
``--warm-only`` measures only the warm cases, on a running service that has run the
workloads (a cold stage0 build takes minutes): best of N local warm and remote warm
builds, alternating.

Starts two local REAPI clusters (``scripts/remote-cluster up``: one worker, two workers)
and measures, side by side in one run, for the shipped examples tree (``build --all``)
and for stage0 from the seed (``build bootstrap-stage0``):

* **cold**: a fresh cache directory; local, then ``--remote`` on the 1-worker and the
  2-worker cluster (each cluster's CAS and action cache empty for that workload);
* **warm**: the local build again on its own cache (all local hits), and on the
  2-worker cluster that already ran everything: a *second builder* (a fresh cache
  directory) that takes each package's image whole (remote/images.py), one with
  ``--remote-no-images`` that looks every RUN step up in the action cache, and the
  second builder once more on its own cache (all local hits, over ``--remote``).

Prints wall seconds, how many RUN steps each build executed on a worker, took from the
remote action cache or ran locally, the load average before and after each workload
(the machine may be shared), and the ratios remote/local. Aims (issue #22): workers beyond one
machine's cut wall time on independent packages (here all workers share this machine,
so 2 vs 1 worker shows scheduling overhead more than speed-up), and a fully cached
remote build is no slower than 2x a local warm one. Every build's digests are compared:
a remote build that differs from the local one stops the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rootseed import shipped

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "remote-cluster"
STAGE0 = "bootstrap-stage0"


@dataclass(frozen=True)
class Run:
    seconds: float
    digests: dict[str, str]
    executed: int  # RUN steps executed on a worker
    remote_cached: int  # RUN steps served from the service's action cache
    local: int  # RUN steps run locally (a local build, or a step kept local)
    images: int  # packages whose image was taken whole from the service

    def steps(self) -> str:
        return (f"RUN steps: {self.executed} executed, {self.remote_cached} remote-cached, "
                f"{self.local} local; {self.images} images fetched whole")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _build(tree: Path, cache: Path, out: Path, packages: list[str], *extra: str) -> Run:
    argv = [sys.executable, "-m", "rootseed", "build", *packages, "--tree", str(tree),
            "--cache-dir", str(cache), "--out", str(out), "--offline", "--json", *extra]
    start = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-3000:]}")
    digests = {x["package"]: x["manifest_digest"] for x in json.loads(r.stdout)["results"]}
    runs = [e for e in (json.loads(line) for line in r.stderr.splitlines()
                        if line.startswith("{"))
            if e.get("event") == "end" and str(e.get("instruction", "")).startswith("RUN")]
    remote = [e for e in runs if e.get("executor") == "remote"]
    cached = sum(1 for e in remote if e.get("remote_cached"))
    images = sum(1 for line in r.stderr.splitlines() if line.startswith("{")
                 and json.loads(line).get("event") == "image"
                 and json.loads(line).get("fetched"))
    return Run(took, digests, len(remote) - cached, cached, len(runs) - len(remote), images)


def _up(state: Path, workers: int) -> tuple[str, float]:
    start = time.perf_counter()
    r = subprocess.run([str(CLUSTER), "up", "--workers", str(workers), "--dir", str(state),
                        "--json"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"remote-cluster up failed:\n{r.stderr}")
    return json.loads(r.stdout)["endpoint"], time.perf_counter() - start


def _down(state: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(CLUSTER), "down", "--dir", str(state)], capture_output=True,
                   check=False)
    return time.perf_counter() - start


def _timed(name: str, tree: Path, packages: list[str], extra: list[str], tmp: Path,
           reference: dict[str, str], label: str, cache: str, *more: str) -> float:
    """One build into ``tmp/cache-NAME-CACHE``, its seconds printed; its digests must be
    ``reference``'s (the first build's, kept in it)."""
    slug = "".join(c if c.isalnum() else "-" for c in cache)
    run = _build(tree, tmp / f"cache-{name}-{slug}", tmp / f"out-{name}-{slug}",
                 packages, *extra, *more)
    if reference and run.digests != reference:
        raise SystemExit(f"{name} {label}: digests {run.digests} differ from the first "
                         f"build's {reference}")
    reference.update(run.digests)
    print(f"  {name:9} {label:40} {run.seconds:8.2f} s  ({run.steps()}; "
          f"load {_load()})", flush=True)
    return run.seconds


def _workload(name: str, tree: Path, packages: list[str], extra: list[str], tmp: Path,
              clusters: dict[int, str]) -> dict[str, float]:
    reference: dict[str, str] = {}

    def build(label: str, *more: str, cache: str | None = None) -> float:
        return _timed(name, tree, packages, extra, tmp, reference, label, cache or label,
                      *more)

    t = {"local cold": build("local cold", cache="local")}
    for n, endpoint in sorted(clusters.items()):
        t[f"remote {n} cold"] = build(f"remote {n} worker(s) cold", "--remote", endpoint)
    t["local warm"] = build("local warm", cache="local")
    t["remote warm"] = build("remote warm (2nd builder)", "--remote", clusters[max(clusters)])
    t["remote warm steps"] = build("remote warm (2nd builder, per step)", "--remote",
                                   clusters[max(clusters)], "--remote-no-images")
    t["remote warm again"] = build("remote warm (same builder again)", "--remote",
                                   clusters[max(clusters)], cache="remote warm (2nd builder)")
    return t


def _warm_only(name: str, tree: Path, packages: list[str], extra: list[str], tmp: Path,
               endpoint: str, rounds: int) -> None:
    """Warm only, on a service that already ran the workload: a first remote build fills
    a cache directory (its steps from the service's cache), the local build on it is the
    local warm one (all local hits), then second builders (fresh cache directories) are
    the remote warm ones, alternating with the local warm build."""
    reference: dict[str, str] = {}

    def build(label: str, cache: str, *more: str) -> float:
        return _timed(name, tree, packages, extra, tmp, reference, label, cache, *more)

    # every step (no image taken whole): the local warm build on it is all local hits
    build("remote (fills a cache)", "filled", "--remote", endpoint, "--remote-no-images")
    kinds: dict[str, list[float]] = {"local warm": [], "2nd builder": [],
                                     "2nd builder, per step": [], "same builder again": []}
    for i in range(rounds):
        kinds["local warm"].append(build("local warm", "filled"))
        kinds["2nd builder"].append(build("remote warm (2nd builder)", f"fresh{i}",
                                          "--remote", endpoint))
        kinds["2nd builder, per step"].append(build(
            "remote warm (2nd builder, per step)", f"steps{i}", "--remote", endpoint,
            "--remote-no-images"))
        kinds["same builder again"].append(build("remote warm (same builder again)",
                                                 f"fresh{i}", "--remote", endpoint))
    best = {k: min(v) for k, v in kinds.items()}
    for kind in ("2nd builder", "2nd builder, per step", "same builder again"):
        print(f"  {name:9} warm: remote, {kind:22} {best[kind] / best['local warm']:5.2f}x "
              f"local warm ({best[kind]:.2f} s vs {best['local warm']:.2f} s, best of "
              f"{rounds}; target <= 2x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path,
                        default=Path(os.environ["ROOTSEED_MIRROR"])
                        if os.environ.get("ROOTSEED_MIRROR") else None)
    parser.add_argument("--no-stage0", action="store_true")
    parser.add_argument("--no-examples", action="store_true")
    parser.add_argument("--warm-only", metavar="ENDPOINT",
                        help="only the warm cases, on this running service (which has run "
                             "the workloads already, or runs them once first)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="warm builds of each kind with --warm-only (best shown)")
    args = parser.parse_args()
    print(f"load average before: {_load()} ({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-remote-") as tmp_name:
        tmp = Path(tmp_name)
        workloads: list[tuple[str, Path, list[str], list[str]]] = []
        if not args.no_examples:
            workloads.append(("examples", shipped.examples(), ["--all"], []))
        if args.mirror is not None and not args.no_stage0:
            workloads.append(("stage0", shipped.packages(), [STAGE0],
                              ["--mirror", str(args.mirror)]))
        if args.warm_only:
            for name, tree, packages, extra in workloads:
                _warm_only(name, tree, packages, extra, tmp, args.warm_only, args.rounds)
            print(f"\nload average after: {_load()}")
            return
        results: dict[str, dict[str, float]] = {}
        for name, tree, packages, extra in workloads:
            # fresh clusters per workload: each starts with an empty CAS and action cache
            states = {n: tmp / f"cluster-{name}-{n}" for n in (1, 2)}
            clusters: dict[int, str] = {}
            try:
                for n, state in states.items():
                    clusters[n], took = _up(state, n)
                    print(f"  cluster with {n} worker(s) up in {took:.1f} s", flush=True)
                results[name] = _workload(name, tree, packages, extra, tmp, clusters)
            finally:
                for state in states.values():
                    if state.exists():
                        _down(state)
            for leftover in tmp.glob(f"cache-{name}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        print(f"\nload average after: {_load()}")
        print("\nratios (wall time, same machine, same run):")
        for name, t in results.items():
            cold, warm = t["local cold"], t["local warm"]
            print(f"  {name:9} cold: 1 worker {t['remote 1 cold'] / cold:5.2f}x local, "
                  f"2 workers {t['remote 2 cold'] / cold:5.2f}x local, "
                  f"2 vs 1 worker {t['remote 2 cold'] / t['remote 1 cold']:5.2f}x")
            for key, kind in (("remote warm", "2nd builder"),
                              ("remote warm steps", "2nd builder, per step"),
                              ("remote warm again", "same builder again")):
                print(f"  {name:9} warm: remote, {kind:22} {t[key] / warm:5.2f}x local "
                      f"warm ({t[key]:.2f} s vs {warm:.2f} s; target <= 2x)")


if __name__ == "__main__":
    main()
