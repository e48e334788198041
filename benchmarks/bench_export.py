"""Export benchmark (run by hand, not a test): BuildKit's format over a big parent image.

``python benchmarks/bench_export.py [--steps 30] [--files 20000] [--mb 300] [--keep DIR]``

Issue #21's target: a StageX package of ``--steps`` small RUN steps ``FROM`` a parent
image of ``--mb`` MB in ``--files`` files costs at most 1.3x the same steps over a parent
holding only busybox, measured end to end (``Builder.build``: steps, export, publish).
BuildKit's format reuses the parent's blobs (never recompressed) and compresses only the
new layers; rootseed's squashed format compressed the whole parent on every build.
The tree has no ``rootseed.toml`` (namespace ``stagex``: BuildKit's format). The parents
are built once beforehand (untimed); each timed build has fresh steps (a new salt) and a
fresh builder.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from bench_snapshots import package, payload_step
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

BUSYBOX = Path("/usr/bin/busybox")
TARGET = 1.3


def make_tree(root: Path, files: int, megabytes: int) -> Path:
    tree = root / "packages"
    make = payload_step(files, megabytes)
    for name, payload in (("big", True), ("empty", False)):
        d = package(tree, f"base-{name}",
                     "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                     'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                     "ENV PATH=/bin\n" + (make if payload else ""))
        shutil.copy(BUSYBOX, d / "busybox")
    return tree


def steps_package(tree: Path, base: str, steps: int, salt: str) -> None:
    run = "".join(f"RUN echo {salt}-{n} > /step-{n:03d}\n" for n in range(1, steps + 1))
    package(tree, f"steps-{base}", f"FROM stagex/bench-base-{base}\n{run}")


def timed_build(tree: Path, cache: Path, out: Path, base: str, steps: int) -> float:
    steps_package(tree, base, steps, secrets.token_hex(4))
    start = time.perf_counter()
    with Builder(Tree.load(tree), cache_dir=cache, out=out) as builder:
        builder.build([f"bench-steps-{base}"],
                      BuildOptions(progress=False, snapshots="overlay", jobs=2))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="work dir to keep (default: temp)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = make_tree(work, args.files, args.mb)
    cache, out = work / "cache", work / "out"
    t = time.perf_counter()
    for base in ("big", "empty"):
        steps_package(tree, base, args.steps, "0")
    with Builder(Tree.load(tree), cache_dir=cache, out=out) as b:
        b.build(["bench-steps-big", "bench-steps-empty"],
                BuildOptions(progress=False, snapshots="overlay", jobs=2))
    print(f"setup: parents ({args.mb} MB in {args.files} files vs. busybox only) built and "
          f"unpacked in {time.perf_counter() - t:.1f}s (not timed)")
    empty: list[float] = []
    big: list[float] = []
    for _ in range(args.rounds):  # alternating, side by side
        empty.append(timed_build(tree, cache, out, "empty", args.steps))
        big.append(timed_build(tree, cache, out, "big", args.steps))
    e, b_ = min(empty), min(big)
    ratio = b_ / e
    print(f"{args.steps} RUN steps, end to end (best of {args.rounds}): empty parent "
          f"{e:.2f}s, big parent {b_:.2f}s: big/empty = {ratio:.2f}x "
          f"({'meets' if ratio <= TARGET else 'misses'} the {TARGET}x target)")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
