"""The Python tools reproduce the real x86 seed chain byte for byte.

Needs ``ROOTSEED_MIRROR=<dir>`` holding ``hex0-seed`` and the pinned stage0 sources: the
chain is the run's one real-chain build (``stage0_tree`` in conftest.py), where the i386
binaries ran as ``mescc-tools-seed-kaem.kaem`` and ``mescc-tools-mini-kaem.kaem`` run them:
seed → hex0 → hex1 → hex2-0 → catm; each step is compared with our tools.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rootseed.tools import hex0, hex1, hex2_0

pytestmark = pytest.mark.mirror


@pytest.fixture
def chain(stage0_tree: Path) -> Path:
    """stage0-posix-x86 (``x86/``) with the ``artifact/`` the chain built in it."""
    return stage0_tree / "x86"


def test_seed_builds_hex0(chain: Path) -> None:
    source = (chain / "hex0_x86.hex0").read_bytes()
    seed = (chain.parent / "bootstrap-seeds/POSIX/x86/hex0-seed").read_bytes()
    assert len(seed) == 181
    assert hex0.assemble(source) == (chain / "artifact" / "hex0").read_bytes()


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
