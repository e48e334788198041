"""Python M1 / blood-elf / M0 against the chain-built x86 binaries on the largest real inputs.

Run by hand, with a finished stage0 chain (see tests/stage0_chain.py; the real-chain tests
leave one under pytest's temp dir):

    .venv/bin/python benchmarks/bench_m1.py --chain /tmp/.../stage0-chain [--repeat 5]

Prints the best wall time of each over ``--repeat`` runs and the ratio Python / native,
for the Python tool called in-process and through ``rootseed tool`` (interpreter start-up
included). Every Python output is also checked to be identical to the native one.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rootseed.tools import blood_elf, m0, m1


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=Path, required=True,
                        help="top directory of a finished stage0 chain")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    top: Path = args.chain.resolve()
    art, bin_ = top / "x86/artifact", top / "x86/bin"
    work = Path(tempfile.mkdtemp(prefix="bench-m1-"))
    rootseed = [sys.executable, "-m", "rootseed", "tool"]

    m1_files = [top / "M2libc/x86/x86_defs.M1", top / "M2libc/x86/libc-full.M1",
                art / "M2-1.M1", art / "M2-1-footer.M1"]
    m1_args = ["--architecture", "x86", "--little-endian"]
    for f in m1_files:
        m1_args += ["-f", str(f)]
    sources = [(str(f), f.read_bytes()) for f in m1_files]
    cases: list[tuple[str, int, list[str], Callable[[], bytes], list[str], Path]] = [
        ("M1 M2-Planet (x86)", sum(len(d) for _, d in sources),
         [str(bin_ / "M1"), *m1_args, "-o", "native.hex2"],
         lambda: m1.assemble(sources, "x86", big_endian=False),
         [*rootseed, "M1", *m1_args, "-o", "py.hex2"], work / "native.hex2"),
    ]
    for program in ("M2-Mesoplanet-1", "M2-1"):
        source = art / f"{program}.M1"
        data = source.read_bytes()
        cases.append((f"blood-elf {program}", len(data),
                      [str(bin_ / "blood-elf"), "--little-endian", "-f", str(source),
                       "-o", "native.M1"],
                      functools.partial(blood_elf.generate, [data]),
                      [*rootseed, "blood-elf", "--little-endian", "-f", str(source),
                       "-o", "py.M1"], work / "native.M1"))
    m0_source = art / "M2-0-0.M1"
    m0_data = m0_source.read_bytes()
    cases.append(("M0 M2-0-0 (cc_x86 output)", len(m0_data),
                  [str(art / "M0"), str(m0_source), "native.hex2"],
                  lambda: m0.assemble(m0_data), [*rootseed, "M0", str(m0_source), "py.hex2"],
                  work / "native.hex2"))

    print(f"{'case':32} {'input':>9} {'native':>8} {'python':>8} {'ratio':>6} "
          f"{'CLI':>8} {'ratio':>6}")
    for name, size, native_argv, python_fn, cli_argv, native_out in cases:
        t_native = best(functools.partial(run, native_argv, work), args.repeat)
        t_python = best(python_fn, args.repeat)
        t_cli = best(functools.partial(run, cli_argv, work), args.repeat)
        if python_fn() != native_out.read_bytes():
            print(f"{name}: OUTPUT DIFFERS from the native tool", file=sys.stderr)
            return 1
        print(f"{name:32} {size / 1e6:7.2f}MB {t_native:7.3f}s {t_python:7.3f}s "
              f"{t_python / t_native:5.2f}x {t_cli:7.3f}s {t_cli / t_native:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
