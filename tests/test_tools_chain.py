"""Opt-in: the Python tools reproduce the real x86 seed chain byte for byte.

Needs ``ROOTSEED_MIRROR=<dir>`` holding ``hex0-seed`` and the pinned
``stage0-posix-x86-<commit>.tar.gz``. Runs the i386 binaries natively (as
``mescc-tools-seed-kaem.kaem`` and ``mescc-tools-mini-kaem.kaem`` do):
seed → hex0 → hex1 → hex2-0 → catm, and compares each step with our tools.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from rootseed.tools import hex0, hex1, hex2_0

pytestmark = pytest.mark.mirror


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR to a directory with hex0-seed and the "
                    "stage0-posix-x86 tarball to run the real-chain tests")
    tarballs = sorted(Path(mirror).glob("stage0-posix-x86-*.tar.gz"))
    if not (Path(mirror) / "hex0-seed").is_file() or not tarballs:
        pytest.skip(f"{mirror} lacks hex0-seed or stage0-posix-x86-*.tar.gz")
    root = tmp_path_factory.mktemp("chain")
    with tarfile.open(tarballs[0]) as tar:
        tar.extractall(root, filter="data")
    x86 = next(p for p in root.iterdir() if p.name.startswith("stage0-posix-x86"))
    seed = root / "hex0-seed"
    seed.write_bytes((Path(mirror) / "hex0-seed").read_bytes())
    seed.chmod(0o755)
    art = x86 / "artifact"
    art.mkdir(exist_ok=True)
    steps = [
        [seed, x86 / "hex0_x86.hex0", art / "hex0"],
        [art / "hex0", x86 / "hex1_x86.hex0", art / "hex1"],
        [art / "hex1", x86 / "hex2_x86.hex1", art / "hex2-0"],
        [art / "hex2-0", x86 / "catm_x86.hex2", art / "catm"],
    ]
    for argv in steps:
        subprocess.run([str(a) for a in argv], check=True, timeout=120)
    return x86


def test_hex0_builds_hex1(chain: Path) -> None:
    source = (chain / "hex1_x86.hex0").read_bytes()
    assert hex0.assemble(source) == (chain / "artifact" / "hex1").read_bytes()


def test_hex1_builds_hex2_0(chain: Path) -> None:
    source = (chain / "hex2_x86.hex1").read_bytes()
    assert hex1.assemble(source) == (chain / "artifact" / "hex2-0").read_bytes()


def test_hex1_on_its_own_source_format(chain: Path) -> None:
    # hex1_x86.hex0 is plain hex0: hex1 must read it the same way
    source = (chain / "hex1_x86.hex0").read_bytes()
    assert hex1.assemble(source) == (chain / "artifact" / "hex1").read_bytes()


def test_hex2_0_builds_catm(chain: Path) -> None:
    source = (chain / "catm_x86.hex2").read_bytes()
    assert hex2_0.link(source) == (chain / "artifact" / "catm").read_bytes()
