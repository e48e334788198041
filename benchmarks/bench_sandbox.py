"""Sandbox start overhead and layer write throughput (run by hand, not a test).

    .venv/bin/python benchmarks/bench_sandbox.py [--runs 50] [--layer-mb 64]

Prints, side by side in one run: the time per `true` under bwrap (rootseed.sandbox.run)
versus a plain subprocess of the same static busybox, and the throughput of
rootseed.oci.write_layer over a generated tree (vs. raw gzip of the same bytes).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rootseed.oci.layer import GZIP_LEVEL, write_layer, write_tar
from rootseed.sandbox import SandboxSpec, run
from rootseed.sandbox.limits import StepLimits

BUSYBOX = Path("/usr/bin/busybox")


def make_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "true"):
        os.symlink("busybox", root / "bin" / applet)
    return root


def bench_sandbox(tmp: Path, runs: int) -> None:
    rootfs = make_rootfs(tmp / "root")
    log = tmp / "bench.log"
    spec = SandboxSpec(rootfs=rootfs, argv=["/bin/true"], env={"PATH": "/bin"})
    # the step limits (cgroup, rlimits, tmpfs size) against none at all
    unlimited = replace(spec, limits=StepLimits(processes=None, memory=None, tmp=None,
                                                log=None, disk=None))
    plain_argv = [str(rootfs / "bin" / "true")]
    run(spec, log=log)  # warm up
    subprocess.run(plain_argv, check=True)
    sandboxed: list[float] = []
    no_limits: list[float] = []
    plain: list[float] = []
    for _ in range(runs):  # interleaved, so load changes hit both alike
        t = time.perf_counter()
        assert run(spec, log=log) == 0
        sandboxed.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert run(unlimited, log=log) == 0
        no_limits.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(plain_argv, check=True, stdin=subprocess.DEVNULL)
        plain.append(time.perf_counter() - t)
    sandboxed.sort()
    no_limits.sort()
    plain.sort()
    print(f"sandbox start, {runs} runs of `true` (ms)      median    p90     min")
    for name, xs in (("rootseed.sandbox.run", sandboxed),
                     ("rootseed.sandbox.run, no step limits", no_limits),
                     ("plain subprocess.run", plain)):
        print(f"  {name:<38} {1000 * xs[len(xs) // 2]:7.2f} {1000 * xs[int(len(xs) * .9)]:7.2f}"
              f" {1000 * xs[0]:7.2f}")
    med_s, med_p = sandboxed[len(sandboxed) // 2], plain[len(plain) // 2]
    print(f"  overhead per RUN (median): {1000 * (med_s - med_p):.2f} ms, "
          f"ratio {med_s / med_p:.1f}x")
    med_n = no_limits[len(no_limits) // 2]
    print(f"  step limits cost per RUN (median): {1000 * (med_s - med_n):.2f} ms, "
          f"ratio {med_s / med_n:.2f}x")


def make_tree(root: Path, megabytes: int) -> int:
    """Many small files plus some larger ones, half compressible text, half random."""
    rng = random.Random(0)
    total = 0
    i = 0
    while total < megabytes << 20:
        d = root / f"d{i % 50:02d}" / f"s{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = rng.choice([200, 2_000, 20_000, 200_000])
        if i % 2:
            data = rng.randbytes(size)
        else:
            data = (f"line {i} of some source text\n" * (size // 28 + 1)).encode()[:size]
        (d / f"f{i}").write_bytes(data)
        total += size
        i += 1
    return total


def bench_layer(tmp: Path, megabytes: int) -> None:
    root = tmp / "tree"
    payload = make_tree(root, megabytes)
    files = sum(len(f) for _, _, f in os.walk(root))
    t = time.perf_counter()
    with open(tmp / "layer.tar.gz", "wb") as f:
        layer = write_layer(root, f)
    t_layer = time.perf_counter() - t
    t = time.perf_counter()
    raw = io.BytesIO()
    write_tar(root, raw)
    t_tar = time.perf_counter() - t
    t = time.perf_counter()
    gzip.compress(raw.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)
    t_gzip = time.perf_counter() - t
    mb = payload / (1 << 20)
    print(f"layer write: {files} files, {mb:.0f} MiB payload -> {layer.size / (1 << 20):.1f} MiB"
          f" gzip (level {GZIP_LEVEL})")
    print(f"  write_layer (walk+tar+gzip+2 sha256)  {t_layer:6.2f} s  {mb / t_layer:7.1f} MiB/s")
    print(f"  write_tar only (uncompressed, memory) {t_tar:6.2f} s  {mb / t_tar:7.1f} MiB/s")
    print(f"  gzip.compress of that tar only        {t_gzip:6.2f} s  {mb / t_gzip:7.1f} MiB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--layer-mb", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-") as tmp:
        bench_sandbox(Path(tmp), args.runs)
        bench_layer(Path(tmp), args.layer_mb)


if __name__ == "__main__":
    main()
