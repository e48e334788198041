"""Benchmark: the Python cc_x86 vs the chain-built cc_x86 on M2-0.c (run by hand).

    python benchmarks/bench_cc_x86.py [--chain DIR] [--repeat N]

Without ``--chain`` it builds the head of the chain from ``$ROOTSEED_MIRROR`` (the pinned
tarballs and hex0-seed) in a temporary directory first: seed → hex0 → kaem-0 →
mescc-tools-mini-kaem.kaem, which builds cc_x86 and concatenates M2-0.c. ``--chain DIR``
reuses such a build (a directory holding ``x86/artifact/cc_x86`` and
``x86/artifact/M2-0.c``).

Prints the best of N wall-clock times, taken alternately in one run: the chain's cc_x86
(an i386 binary that reads and writes one byte per system call), our CLI (``python -m
rootseed tool cc_x86``, interpreter start included) and ``compile_c()`` in-process, with
the ratios to the chain's. Issue 23's target: the Python compile no slower (<= 1.00x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_tools import CHAIN_HEAD, run_steps, unpack_with_seed
from rootseed.tools.cc_x86 import compile_c

TARGET = 1.0


def build_chain_head(mirror: Path, root: Path) -> None:
    """The chain up to cc_x86 and M2-0.c (mescc-tools-mini-kaem), from the seed."""
    unpack_with_seed(mirror, root)
    run_steps(root, CHAIN_HEAD)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.chain
        if root is None:
            mirror = os.environ.get("ROOTSEED_MIRROR")
            if not mirror:
                sys.exit("give --chain DIR or set ROOTSEED_MIRROR")
            root = Path(tmp, "chain")
            root.mkdir()
            build_chain_head(Path(mirror), root)
        art = root / "x86/artifact"
        source = art / "M2-0.c"
        chain_out, cli_out = Path(tmp, "chain.M1"), Path(tmp, "ours.M1")
        chain = [str(art / "cc_x86"), str(source), str(chain_out)]
        cli = [sys.executable, "-m", "rootseed", "tool", "cc_x86", str(source), str(cli_out)]
        text = source.read_bytes()
        runs: dict[str, list[float]] = {"chain": [], "cli": [], "call": []}
        what: dict[str, Callable[[], object]] = {
            "chain": lambda: subprocess.run(chain, check=True),
            "cli": lambda: subprocess.run(cli, check=True),
            "call": lambda: compile_c(text),
        }
        for _ in range(args.repeat):  # alternately, so load changes hit all three alike
            for key, fn in what.items():
                start = time.perf_counter()
                fn()
                runs[key].append(time.perf_counter() - start)
        t = {key: min(v) for key, v in runs.items()}
        same = chain_out.read_bytes() == cli_out.read_bytes() == compile_c(text)
        load = os.getloadavg()[0]
        print(f"M2-0.c: {len(text)} bytes of C, {chain_out.stat().st_size} bytes of M1 out, "
              f"identical: {same}  (best of {args.repeat}, load average {load:.2f})")
        print(f"{'chain cc_x86 (i386)':<28}{t['chain']:8.3f} s   1.00x")
        print(f"{'python cc_x86 (CLI)':<28}{t['cli']:8.3f} s   {t['cli'] / t['chain']:.2f}x")
        print(f"{'python compile_c()':<28}{t['call']:8.3f} s   {t['call'] / t['chain']:.2f}x")
        ok = same and t["cli"] <= TARGET * t["chain"]
        print(f"target: CLI <= {TARGET:.2f}x the chain's: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
