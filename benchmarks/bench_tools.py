"""Benchmark: Python hex2 vs the chain-built x86 hex2 on M2-Planet's link (run by hand).

    python benchmarks/bench_tools.py [--chain DIR] [--repeat N]

Without ``--chain`` it builds the chain from ``$ROOTSEED_MIRROR`` (the pinned tarballs
and hex0-seed) in a temporary directory first: seed → kaem-0 → mescc-tools-mini-kaem →
mescc-tools-full-kaem (about a minute or two). ``--chain DIR`` reuses such a build (a
directory holding ``x86/bin/hex2`` and ``x86/artifact/M2-1.hex2``).
Prints the best of N wall-clock times for: the native binary, our CLI
(``python -m rootseed tool hex2``, interpreter start included) and our ``link()`` called
in-process, side by side with the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rootseed.tools import hex2
from rootseed.tools.hex2_core import Arch, Options

FULL_KAEM = """ARCH="x86"
ARCH_DIR="x86"
BLOOD_FLAG=" "
BASE_ADDRESS="0x08048000"
ENDIAN_FLAG="--little-endian"
OPERATING_SYSTEM="Linux"
./${ARCH_DIR}/bin/kaem --verbose --strict --file ${ARCH_DIR}/mescc-tools-full-kaem.kaem
"""


#: hex0 from the seed, kaem-0, then mescc-tools-mini-kaem (hex1 ... M2, the chain's head)
CHAIN_HEAD = (["./bootstrap-seeds/POSIX/x86/hex0-seed", "./x86/hex0_x86.hex0",
               "./x86/artifact/hex0"],
              ["./x86/artifact/hex0", "./x86/kaem-minimal.hex0", "./x86/artifact/kaem-0"],
              ["./x86/artifact/kaem-0", "./x86/mescc-tools-mini-kaem.kaem"])


def unpack_with_seed(mirror: Path, root: Path) -> None:
    """The pinned tarballs of ``mirror`` unpacked in ``root`` (stage0-posix-x86 as
    ``x86``) and the seed in place, as the chain's kaem scripts expect them."""
    for tarball in sorted(mirror.glob("*.tar.gz")):
        with tarfile.open(tarball) as tar:
            tar.extractall(root, filter="data")
    for d in list(root.iterdir()):
        name = d.name.rsplit("-", 1)[0]
        d.rename(root / ("x86" if name == "stage0-posix-x86" else name))
    seed = root / "bootstrap-seeds/POSIX/x86/hex0-seed"
    seed.parent.mkdir(parents=True)
    seed.write_bytes((mirror / "hex0-seed").read_bytes())
    seed.chmod(0o755)


def run_steps(root: Path, steps: Sequence[Sequence[str]]) -> None:
    for argv in steps:
        print("building:", " ".join(argv), file=sys.stderr)
        subprocess.run(list(argv), cwd=root, check=True, stdout=subprocess.DEVNULL)


def build_chain(mirror: Path, root: Path) -> None:
    unpack_with_seed(mirror, root)
    for sub in ("artifact", "bin"):
        (root / "x86" / sub).mkdir(exist_ok=True)
    (root / "full.kaem").write_text(FULL_KAEM)
    run_steps(root, [*CHAIN_HEAD, ["./x86/bin/kaem", "--verbose", "--strict", "--file",
                                   "full.kaem"]])


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.chain
        if root is None:
            mirror = os.environ.get("ROOTSEED_MIRROR")
            if not mirror:
                sys.exit("give --chain DIR or set ROOTSEED_MIRROR")
            root = Path(tmp, "chain")
            root.mkdir()
            build_chain(Path(mirror), root)
        x86 = root / "x86"
        inputs = [root / "M2libc/x86/ELF-x86-debug.hex2", x86 / "artifact/M2-1.hex2"]
        flags = ["--architecture", "x86", "--little-endian", "--base-address", "0x08048000"]
        for f in inputs:
            flags += ["-f", str(f)]
        native_out, cli_out = Path(tmp, "native"), Path(tmp, "ours")
        native = [str(x86 / "bin/hex2"), *flags, "-o", str(native_out)]
        ours = [sys.executable, "-m", "rootseed", "tool", "hex2", *flags, "-o", str(cli_out)]
        files = [(str(f), f.read_bytes()) for f in inputs]
        opts = Options(Arch.X86, False, 0x8048000)

        t_native = best(lambda: subprocess.run(native, check=True), args.repeat)
        t_cli = best(lambda: subprocess.run(ours, check=True), args.repeat)
        t_link = best(lambda: hex2.link(files, opts), args.repeat)
        same = native_out.read_bytes() == cli_out.read_bytes() == hex2.link(files, opts)
        size = sum(len(d) for _, d in files)
        print(f"M2-Planet link: {size} bytes of hex2 in, {native_out.stat().st_size} out, "
              f"identical: {same}  (best of {args.repeat})")
        print(f"{'native x86 hex2':<28}{t_native:8.3f} s   1.00x")
        print(f"{'python hex2 (CLI)':<28}{t_cli:8.3f} s   {t_cli / t_native:.2f}x")
        print(f"{'python hex2.link()':<28}{t_link:8.3f} s   {t_link / t_native:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
