"""Snapshot benchmark (run by hand, not a test).

``python benchmarks/bench_snapshots.py [--steps 50] [--files 20000] [--mb 300]
[--modes overlay,copy] [--keep DIR]``

Side by side in one process: a stage of ``--steps`` RUN steps, each touching one small
file, built FROM a big base image (``--mb`` MB in ``--files`` files) and FROM a base
holding only busybox. Each build is cold for the steps (a fresh cache dir holding only the
already-built bases) and uses a fresh builder, so the check of the cached base against its
recorded digest (issue #12 item 4) is included, and printed on its own.

Issue #14's target: big/empty total time ratio <= 1.3x with copy-on-write (overlay)
snapshots; the per-step overhead is printed. With ``copy`` snapshots (today's fallback)
the stage starts from a full copy of the base.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rootseed.build.engine import Builder, BuildOptions
from rootseed.tree import Tree

BUSYBOX = Path("/usr/bin/busybox")
TARGET = 1.3


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _package(tree: Path, name: str, containerfile: str) -> Path:
    d = tree / "bench" / name
    _write(d / "package.toml", f'[package]\nname = "{name}"\nversion = "1"\n'
                               'description = "benchmark"\nlicense = "MIT"\n')
    _write(d / "Containerfile", containerfile)
    return d


def make_tree(root: Path, steps: int, files: int, megabytes: int) -> Path:
    tree = root / "packages"
    _write(tree / "rootseed.toml", '[tree]\nnamespace = "bench"\n')
    for name, payload in (("big", True), ("empty", False)):
        d = _package(tree, f"base-{name}",
                     "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                     'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                     + ("COPY payload/ /payload/\n" if payload else ""))
        shutil.copy(BUSYBOX, d / "busybox")
        if payload:
            size = megabytes * 1024 * 1024 // files
            block = os.urandom(size)
            for i in range(files):
                f = d / "payload" / f"d{i // 500:03d}" / f"f{i:05d}"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(block[i % 97:] + block[: i % 97])
        run = "".join(f"RUN echo {n} > /step-{n:03d}\n" for n in range(1, steps + 1))
        _package(tree, f"steps-{name}", f"FROM bench/bench-base-{name}\nENV PATH=/bin\n{run}")
    return tree


@dataclass
class Timing:
    seconds: float
    verify_seconds: float
    verify_count: int


def timed_build(tree: Path, seed_cache: Path, work: Path, package: str, mode: str
                ) -> Timing:
    cache = work / f"cache-{package}-{mode}"
    if cache.exists():
        shutil.rmtree(cache)
    subprocess.run(["cp", "-a", str(seed_cache), str(cache)], check=True)  # bases, built
    builder = Builder(Tree.load(tree), cache_dir=cache, out=work / f"out-{mode}")
    start = time.perf_counter()
    with builder:
        builder.build([package], BuildOptions(progress=False, snapshots=mode, jobs=2))
    seconds = time.perf_counter() - start
    verified = len(builder.verifier._ok)
    return Timing(seconds, builder.verifier.seconds, verified)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--modes", default="overlay,copy")
    ap.add_argument("--keep", type=Path, default=None, help="work dir to keep (default: temp)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-snapshots-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = make_tree(work, args.steps, args.files, args.mb)
    print(f"setup: base of {args.mb} MB in {args.files} files vs. busybox only; "
          f"{args.steps} RUN steps each writing one small file")
    modes = args.modes.split(",")
    for mode in modes:
        seed = work / f"seed-{mode}"
        if not seed.exists():
            t = time.perf_counter()
            with Builder(Tree.load(tree), cache_dir=seed, out=work / f"out-{mode}") as b:
                b.build(["bench-base-big", "bench-base-empty"],
                        BuildOptions(progress=False, snapshots=mode, jobs=2))
            print(f"  [{mode}] bases built in {time.perf_counter() - t:.1f}s (not timed below)")
        empty = timed_build(tree, seed, work, "bench-steps-empty", mode)
        big = timed_build(tree, seed, work, "bench-steps-big", mode)
        ratio = big.seconds / empty.seconds
        verdict = ("meets" if ratio <= TARGET else "misses") if mode == "overlay" else "(info)"
        print(f"\n[{mode}] snapshots")
        print(f"  {'base':<8} {'total s':>8} {'per step s':>11} {'cache check s':>14}")
        for name, t in (("empty", empty), ("big", big)):
            print(f"  {name:<8} {t.seconds:>8.2f} {t.seconds / args.steps:>11.3f} "
                  f"{t.verify_seconds:>14.2f}")
        print(f"  big/empty = {ratio:.2f}x ({verdict} the {TARGET}x target); the cache "
              f"check (re-hashing every reused entry once) costs {big.verify_seconds:.2f}s "
              f"with the big base, {empty.verify_seconds:.2f}s with the empty one")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
