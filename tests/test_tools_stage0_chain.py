"""The Python M0, M1 and blood-elf against the binaries the real stage0 chain builds, on
the chain's own inputs and on generated ones (needs ROOTSEED_MIRROR: the chain is the run's
one real-chain build, ``stage0_tree`` in conftest.py)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from m1_inputs import defined_names_only, m1_source, run_tool
from rootseed.tools import blood_elf, m0, m1
from rootseed.tools._util import ToolError

pytestmark = pytest.mark.mirror

ARCHES = ["knight-native", "x86", "amd64", "armv7l", "aarch64", "ppc64le", "riscv32",
          "riscv64"]


@pytest.fixture(scope="module")
def top(stage0_tree: Path) -> Path:
    return stage0_tree


# M0 is run by mescc-tools-mini-kaem.kaem on these (input, the chain's output)
M0_RUNS = [("x86/cc_x86.M1", "x86/artifact/cc_x86-0.hex2"),
           ("x86/artifact/M2-0-0.M1", "x86/artifact/M2-0.hex2"),
           ("x86/artifact/blood-elf-0-0.M1", "x86/artifact/blood-elf-0.hex2"),
           ("x86/artifact/M1-macro-0-0.M1", "x86/artifact/M1-macro-0.hex2")]


@pytest.mark.parametrize(("source", "expected"), M0_RUNS)
def test_m0_on_the_chain_inputs(top: Path, source: str, expected: str) -> None:
    assert m0.assemble((top / source).read_bytes(), source) == (top / expected).read_bytes()


# M2-Planet (phase 15) and M2-Mesoplanet (phase 12) as mescc-tools-full-kaem.kaem builds them
PROGRAMS = ["M2-1", "M2-Mesoplanet-1"]


@pytest.mark.parametrize("program", PROGRAMS)
def test_blood_elf_on_m2_output(top: Path, program: str) -> None:
    art = top / "x86/artifact"
    footer = blood_elf.generate([(art / f"{program}.M1").read_bytes()])
    assert footer == (art / f"{program}-footer.M1").read_bytes()


@pytest.mark.parametrize("program", PROGRAMS)
def test_m1_on_m2_output(top: Path, program: str) -> None:
    art = top / "x86/artifact"
    names = [top / "M2libc/x86/x86_defs.M1", top / "M2libc/x86/libc-full.M1",
             art / f"{program}.M1", art / f"{program}-footer.M1"]
    out = m1.assemble([(str(p), p.read_bytes()) for p in names], "x86", big_endian=False)
    assert out == (art / f"{program}.hex2").read_bytes()


def m1_theirs(top: Path, text: bytes, arch: str, big: bool) -> tuple[int, bytes, str]:
    argv = [str(top / "x86/bin/M1"), "-f", "in.M1", "--architecture", arch,
            "--big-endian" if big else "--little-endian"]
    status, out, err = run_tool(argv, {"in.M1": text})
    return status, out if status == 0 else b"", err


def m1_ours(text: bytes, arch: str, big: bool) -> tuple[int, bytes, str]:
    try:
        return 0, m1.assemble([("in.M1", text)], arch, big), ""
    except ToolError as e:
        return 1, b"", e.message


# the pinned M1 on everything the grammar makes, including what Debian's 1.4.0 does
# differently ($ and & numbers, out-of-range numbers, string-valued DEFINEs)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), arch=st.sampled_from(ARCHES), big=st.booleans())
def test_m1_generated_against_the_chain(top: Path, data: st.DataObject, arch: str,
                                        big: bool) -> None:
    source = data.draw(m1_source(common=False, knight=arch.startswith("knight")))
    if data.draw(st.booleans()):
        source = defined_names_only(source)
    if data.draw(st.booleans()):  # bytes that are rarely typed but M1 must survive
        source += data.draw(st.text(st.sampled_from(list('"\'#;:!@<\r\t\n 0x-\x80\xc3\xfe')),
                                    max_size=30))
    text = source.encode("latin-1")
    assert m1_ours(text, arch, big) == m1_theirs(top, text, arch, big)


M0_TOKENS = st.one_of(
    st.sampled_from(["DEFINE", "mov", "ret", "90", ":a", "&a", "%a", "@b", "!c", "x0x1F"]),
    st.builds(lambda p, n: f"{p}{n}", st.sampled_from(list("%@!&:A-")),
              st.integers(-300, 70000).map(str) | st.integers(0, 2**32).map(lambda v: f"0x{v:X}")),
    st.text(st.sampled_from(list("abcAF09 :#;")), max_size=10).map(lambda s: f'"{s}"'),
    st.text(st.sampled_from(list("abc09 ")), max_size=10).map(lambda s: f"'{s}'"),
    st.just("# comment"), st.just("; other"),
)


def m0_theirs(top: Path, source: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="rootseed-m0-") as d:
        Path(d, "in.M1").write_bytes(source)
        subprocess.run([str(top / "x86/artifact/M0"), "in.M1", "out.hex2"], cwd=d,
                       check=True, timeout=20)
        return Path(d, "out.hex2").read_bytes()


# only inputs the real M0 finishes on: every line ends in a newline, DEFINEs complete
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.lists(M0_TOKENS, min_size=1, max_size=6), min_size=1, max_size=10))
def test_m0_generated_against_the_chain(top: Path, lines: list[list[str]]) -> None:
    body = "".join(" ".join(line) + "\n" for line in lines)
    source = ("DEFINE mov 89\nDEFINE ret C3\n" + body + ":end\n").encode()
    try:
        ours = m0.assemble(source, "in.M1")
    except ToolError:
        ours = None
    assume(ours is not None)  # the real M0 crashes on what ours refuses
    assert ours == m0_theirs(top, source)
