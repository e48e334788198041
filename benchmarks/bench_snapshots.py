"""Snapshot benchmark (run by hand, not a test).

``python benchmarks/bench_snapshots.py [--steps 50] [--files 20000] [--mb 300]
[--modes overlay,copy] [--keep DIR]``

Side by side in one process: a stage of ``--steps`` RUN steps, each touching one small
file, built FROM a big base image (``--mb`` MB in ``--files`` files) and FROM a base
holding only busybox. Each build is cold for the steps (their commands carry a fresh salt; the bases
are built once beforehand, untimed) and uses a fresh builder, so the check of the cached
base against its
recorded digest (issue #12 item 4) is included, and printed on its own: normally a sealed
entry is checked by its ``lstat`` fingerprint (see ``rootseed.engine.seal``); one more build
with ``ROOTSEED_CACHE_CHECK=full`` shows what re-hashing the whole base costs. The steps
end in a one-file image (``COPY --from``), so writing the image does not depend on the
base either.

"per step" is the total over the steps; "in steps" sums each executed step's own time
(start to end: mount, sandbox, commit; overlay only). Issue #14's target: big/empty
total time ratio <= 1.3x with copy-on-write (overlay)
snapshots; the per-step overhead is printed. With ``copy`` snapshots (today's fallback)
the stage starts from a full copy of the base.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

BUSYBOX = Path("/usr/bin/busybox")
TARGET = 1.3


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def package(tree: Path, name: str, containerfile: str) -> Path:
    d = tree / "bench" / name
    _write(d / "package.toml", f'[package]\nname = "{name}"\nversion = "1"\n'
                               'description = "benchmark"\nlicense = "MIT"\n')
    _write(d / "Containerfile", containerfile)
    return d


def payload_step(files: int, megabytes: int) -> str:
    """A RUN step that makes ``files`` files of ``megabytes`` in all under /payload (500 a
    directory). Made by a step, not copied from the build context: a context is hashed by
    every build of the package, which would time context hashing, not snapshots."""
    size = megabytes * 1024 * 1024 // files
    return (f"RUN mkdir -p /payload && cd /payload && "
            f"for d in $(seq 0 {(files - 1) // 500}); do mkdir d$d; done && "
            f"awk -v n={files} -v size={size} 'BEGIN {{ s = \"\"; "
            f"while (length(s) < size) s = s sprintf(\"%08d\\n\", length(s)); "
            f"for (i = 0; i < n; i++) {{ f = sprintf(\"d%d/f%05d\", int(i / 500), i); "
            f"printf \"%s%d\\n\", s, i > f; close(f) }} }}'\n")


def make_tree(root: Path, steps: int, files: int, megabytes: int) -> Path:
    tree = root / "packages"
    _write(tree / "rootseed.toml", '[tree]\nnamespace = "bench"\n')
    make = payload_step(files, megabytes)
    for name, payload in (("big", True), ("empty", False)):
        d = package(tree, f"base-{name}",
                     "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                     'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                     + (make if payload else ""))
        shutil.copy(BUSYBOX, d / "busybox")
        steps_package(tree, name, steps, "0")
    return tree


def steps_package(tree: Path, base: str, steps: int, salt: str) -> None:
    run = "".join(f"RUN echo {salt}-{n} > /step-{n:03d}\n" for n in range(1, steps + 1))
    package(tree, f"steps-{base}", f"FROM bench/bench-base-{base} AS steps\nENV PATH=/bin\n"
                                    f"{run}FROM scratch\nCOPY --from=steps /step-{steps:03d} /\n")


@dataclass
class Timing:
    seconds: float
    verify_seconds: float
    full_checks: int
    sealed_checks: int
    step_seconds: float  # the steps alone (sum of their start..end), without the rest


def timed_build(tree: Path, cache: Path, work: Path, base: str, mode: str, steps: int,
                *, full_check: bool = False) -> Timing:
    steps_package(tree, base, steps, secrets.token_hex(4))  # cold steps, cached base
    if full_check:
        os.environ["ROOTSEED_CACHE_CHECK"] = "full"
    builder = Builder(Tree.load(tree), cache_dir=cache, out=work / f"out-{mode}")
    events: list[dict[str, object]] = []
    start = time.perf_counter()
    try:
        with builder:
            builder.build([f"bench-steps-{base}"],
                          BuildOptions(progress=False, snapshots=mode, jobs=2,
                                       events=events.append))
    finally:
        os.environ.pop("ROOTSEED_CACHE_CHECK", None)
    seconds = time.perf_counter() - start
    v = builder.verifier
    steps_s = sum(float(str(e["seconds"])) for e in events
                  if e["event"] == "end" and e["package"] == f"bench-steps-{base}")
    return Timing(seconds, v.seconds, v.full_checks, v.sealed_checks, steps_s)


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
        seed = work / f"cache-{mode}"
        if not seed.exists():
            t = time.perf_counter()
            with Builder(Tree.load(tree), cache_dir=seed, out=work / f"out-{mode}") as b:
                # the steps once too: a parent image is unpacked into the cache on its first
                # use, once (not a per-build cost, not timed below)
                b.build(["bench-steps-big", "bench-steps-empty"],
                        BuildOptions(progress=False, snapshots=mode, jobs=2))
            print(f"  [{mode}] bases built and unpacked in {time.perf_counter() - t:.1f}s "
                  "(not timed below)")
        empty = timed_build(tree, seed, work, "empty", mode, args.steps)
        big = timed_build(tree, seed, work, "big", mode, args.steps)
        full = timed_build(tree, seed, work, "big", mode, args.steps, full_check=True)
        ratio = big.seconds / empty.seconds
        verdict = ("meets" if ratio <= TARGET else "misses") if mode == "overlay" else "(info)"
        print(f"\n[{mode}] snapshots")
        print(f"  {'base':<16} {'total s':>8} {'per step s':>11} {'in steps s':>11} "
              f"{'cache check s':>14} {'hashed':>7} {'sealed':>7}")
        for name, t in (("empty", empty), ("big", big), ("big, full check", full)):
            steps_s = f"{t.step_seconds:>11.2f}" if mode == "overlay" else f"{'-':>11}"
            print(f"  {name:<16} {t.seconds:>8.2f} {t.seconds / args.steps:>11.3f} {steps_s} "
                  f"{t.verify_seconds:>14.2f} {t.full_checks:>7} {t.sealed_checks:>7}")
        print(f"  big/empty = {ratio:.2f}x ({verdict} the {TARGET}x target); checking the "
              f"cache before use cost {big.verify_seconds:.2f}s (seals) / "
              f"{full.verify_seconds:.2f}s (ROOTSEED_CACHE_CHECK=full, every byte hashed) "
              f"with the big base, {empty.verify_seconds:.2f}s with the empty one")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
