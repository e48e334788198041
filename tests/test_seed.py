"""rootseed's own hex0 seed (``seeds/x86/hex0.hex0``) and the example tree that pins it.

The seed must be a fixed point (run on its own source it writes itself), agree with the
independent Python hex0 on every input, and be what ``examples/`` pins as its seed.
The i386 binary runs natively; the tests that run it skip (with the reason) on a kernel
that cannot execute i386 ELF files.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rootseed import shipped
from rootseed.tools.hex0 import assemble

SEED_SOURCE = shipped.seeds() / "x86" / "hex0.hex0"
EXAMPLES = shipped.examples()
UPSTREAM_SEED_SIZE = 181  # the hex0-seed StageX and stage0 start from


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_hex0(binary: Path, source: bytes, workdir: Path) -> tuple[int, bytes]:
    """Run the seed binary on ``source``; return its exit status and the output bytes."""
    src, out = workdir / "in.hex0", workdir / "out"
    src.write_bytes(source)
    out.unlink(missing_ok=True)
    r = subprocess.run([str(binary), str(src), str(out)], capture_output=True, timeout=30)
    return r.returncode, out.read_bytes() if out.exists() else b""


@pytest.fixture(scope="module")
def seed_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed, assembled by the Python hex0; skips where i386 binaries cannot run."""
    path = tmp_path_factory.mktemp("seed") / "hex0"
    path.write_bytes(assemble(SEED_SOURCE.read_bytes()))
    path.chmod(0o755)
    try:
        run_hex0(path, b"", path.parent)
    except OSError as e:
        pytest.skip(f"this kernel cannot run i386 ELF binaries: {e.strerror}")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


# -- the binary itself -------------------------------------------------------------------

def test_seed_is_no_bigger_than_upstream() -> None:
    size = len(assemble(SEED_SOURCE.read_bytes()))
    assert size <= UPSTREAM_SEED_SIZE, f"our seed is {size} bytes, upstream's {UPSTREAM_SEED_SIZE}"


def test_elf_headers_describe_the_file() -> None:
    binary = assemble(SEED_SOURCE.read_bytes())
    assert binary[:7] == b"\x7fELF\x01\x01\x01"  # 32-bit, little endian, version 1
    e_type, e_machine, _, e_entry, e_phoff = struct.unpack_from("<HHIII", binary, 16)
    e_ehsize, e_phentsize, e_phnum = struct.unpack_from("<HHH", binary, 40)
    assert (e_type, e_machine, e_ehsize, e_phentsize, e_phnum) == (2, 3, 52, 32, 1)
    p_type, p_offset, p_vaddr, _, p_filesz, p_memsz, p_flags = struct.unpack_from(
        "<IIIIIII", binary, e_phoff)
    assert (p_type, p_offset) == (1, 0)  # one PT_LOAD of the whole file
    assert p_filesz == p_memsz == len(binary)
    assert p_flags == 5  # read + execute
    assert e_phoff + 32 <= e_entry - p_vaddr < len(binary)  # code follows the headers


def test_every_byte_is_commented() -> None:
    """Every line that carries bytes says what they are."""
    for number, line in enumerate(SEED_SOURCE.read_text().splitlines(), 1):
        code = line.split("#", 1)[0].split(";", 1)[0]
        if code.strip():
            assert "#" in line, f"{SEED_SOURCE.name}:{number}: bytes without a comment"


def test_fixed_point(seed_binary: Path, workdir: Path) -> None:
    source = SEED_SOURCE.read_bytes()
    status, out = run_hex0(seed_binary, source, workdir)
    assert status == 0
    assert out == assemble(source) == seed_binary.read_bytes()


def test_output_mode_is_0750(seed_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"41")
    r = subprocess.run([str(seed_binary), str(tmp_path / "in"), str(tmp_path / "out")],
                       umask=0o022, timeout=30)
    assert r.returncode == 0
    assert (tmp_path / "out").stat().st_mode & 0o7777 == 0o750


def test_existing_output_is_truncated(seed_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"41 42")
    (tmp_path / "out").write_bytes(b"x" * 100)
    r = subprocess.run([str(seed_binary), str(tmp_path / "in"), str(tmp_path / "out")],
                       timeout=30)
    assert r.returncode == 0
    assert (tmp_path / "out").read_bytes() == b"AB"


def test_missing_input_fails_and_creates_nothing(seed_binary: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(seed_binary), str(tmp_path / "nope"), str(tmp_path / "out")],
                       timeout=30)
    assert r.returncode != 0
    assert not (tmp_path / "out").exists()


def test_uncreatable_output_fails(seed_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"41")
    r = subprocess.run([str(seed_binary), str(tmp_path / "in"), str(tmp_path / "no" / "out")],
                       timeout=30)
    assert r.returncode != 0


def test_missing_arguments_fail(seed_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"41")
    assert subprocess.run([str(seed_binary)], timeout=30).returncode != 0
    assert subprocess.run([str(seed_binary), str(tmp_path / "in")], timeout=30).returncode != 0


def test_write_error_fails(seed_binary: Path, tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to provoke a write error")
    (tmp_path / "in").write_bytes(b"41")
    r = subprocess.run([str(seed_binary), str(tmp_path / "in"), "/dev/full"], timeout=30)
    assert r.returncode != 0


# -- agreement with the Python hex0 ------------------------------------------------------

FIXTURES: dict[str, bytes] = {
    "empty": b"",
    "upper and lower case": b"7f 45 4C 46 aB Cd eF 0a\n",
    "no separators": b"0123456789abcdefABCDEF",
    "hash comment hides digits": b"# deadbeef 00\n41\n",
    "semicolon comment hides digits": b"; cafe\n42 ; babe\n43",
    "comment inside comment": b"41 # x # 42 ; 43\n44",
    "high digit pending across a comment": b"4 # comment\n1 5;x\n2\n",
    "comment at end without newline": b"41 # 42",
    "odd digit at end is dropped": b"414",
    "lone digit only": b"f",
    "carriage returns do not end comments": b"#x\r41\n42\r\n43",
    "neighbours of the digit ranges": b"/:@G`g[]{}~ 4!1 \x7f-+=_.,",
    "nul and high bytes ignored": b"\x004\x801\xff\xc0\xe6\xb0 \x0042",
    "every byte value": bytes(range(256)) + b"\n" + bytes(range(255, -1, -1)),
    "only comments": b"# 12\n; 34\n#\n;\n",
    "blank lines and tabs": b"\n\n\t41\t\n \n42  \n",
    "all 256 bytes as hex": "".join(f"{i:02x}{'' if i % 16 else chr(10)}"
                                     for i in range(256)).encode(),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_agrees_with_python_on_fixture(seed_binary: Path, workdir: Path, name: str) -> None:
    source = FIXTURES[name]
    status, out = run_hex0(seed_binary, source, workdir)
    assert status == 0
    assert out == assemble(source)


_TOKENS = st.sampled_from([
    *"0123456789abcdefABCDEF", "#", ";", "\n", "\r", " ", "\t", "/", ":", "@", "G", "`", "g",
    "# comment 12 ;\n", "; 0a0b\n", "\x00", "\x7f", "\x80", "\xe1", "\xff",
]).map(lambda s: s.encode("latin-1"))

hex0_texts = st.lists(st.one_of(_TOKENS, st.binary(max_size=4)), max_size=60).map(b"".join)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=hex0_texts)
def test_agrees_with_python_on_generated_text(seed_binary: Path, workdir: Path,
                                              source: bytes) -> None:
    status, out = run_hex0(seed_binary, source, workdir)
    assert status == 0
    assert out == assemble(source)


# -- the example tree pins this seed -----------------------------------------------------

def _package(stage: str, name: str) -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / stage / name / "package.toml").read_text())


def _mirror_file(source: dict[str, Any]) -> Path:
    assert source["mirrors"] == ["file:mirror/{file}"]
    return EXAMPLES / "mirror" / source["file"]


def test_example_seed_is_our_seed() -> None:
    expected = assemble(SEED_SOURCE.read_bytes())
    sources = _package("seed", "hex0")["sources"]
    seeds = [s for s in sources.values() if s.get("seed")]
    assert len(seeds) == 1, "seed-hex0 must pin exactly one seed"
    assert seeds[0]["hash"] == sha256(expected)
    assert _mirror_file(seeds[0]).read_bytes() == expected


def test_example_sources_match_their_pins() -> None:
    for stage, name in (("seed", "hex0"), ("seed", "hello")):
        for source_id, source in _package(stage, name)["sources"].items():
            data = _mirror_file(source).read_bytes()
            assert sha256(data) == source["hash"], f"{stage}-{name} [sources.{source_id}]"


def test_example_hex0_source_is_the_seed_source() -> None:
    assert (EXAMPLES / "mirror" / "hex0.hex0").read_bytes() == SEED_SOURCE.read_bytes()


def test_example_outputs_are_what_hex0_makes() -> None:
    seed = assemble(SEED_SOURCE.read_bytes())
    hello = assemble((EXAMPLES / "mirror" / "hello.hex0").read_bytes())
    assert _package("seed", "hex0")["outputs"] == {"bin/hex0": [sha256(seed), len(seed)]}
    assert _package("seed", "hello")["outputs"] == {"bin/hello": [sha256(hello), len(hello)]}


def test_example_hello_runs(seed_binary: Path, workdir: Path) -> None:
    status, hello = run_hex0(seed_binary, (EXAMPLES / "mirror" / "hello.hex0").read_bytes(),
                             workdir)
    assert status == 0
    binary = workdir / "hello"
    binary.write_bytes(hello)
    binary.chmod(0o755)
    r = subprocess.run([str(binary)], capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, b"Hello, world!\n")


def test_example_tree_loads_and_fetches_offline(tmp_path: Path) -> None:
    """The tree model reads examples/ and every source resolves from mirror/ offline."""
    from rootseed.fetch import Fetcher
    from rootseed.tree import Tree

    tree = Tree.load(EXAMPLES)
    assert tree.namespace == "rootseed-examples"
    assert tree.order(["seed-hello"]) == ["seed-hex0", "seed-hello"]
    assert tree.get("seed-hello").deps == ("seed-hex0",)
    seeds = [s for p in tree.packages.values() for s in p.sources if s.seed]
    assert [s.id for s in seeds] == ["hex0_seed"]
    fetcher = Fetcher(tmp_path / "cache", offline=True, progress=False,
                                   base_dir=tree.root)
    for package in tree.packages.values():
        for source_id, path in fetcher.fetch_package(package).items():
            assert sha256(path.read_bytes()) == package.source(source_id).hash
