"""blood-elf: label rules worked out from its documentation, and differential tests
against Debian's blood-elf (mescc-tools 1.4.0, "blood-elf 2.0.0"; the pinned commit only
changes the version string to 2.0.1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clirun import Result
from clirun import rootseed as run_cli
from m1_inputs import m1_source, run_tool
from rootseed.tools._numbers import ByteMode
from rootseed.tools._util import ToolError
from rootseed.tools.blood_elf import generate, labels

DEBIAN = shutil.which("blood-elf", path="/usr/bin")
needs_debian = pytest.mark.skipif(DEBIAN is None, reason="Debian's mescc-tools (blood-elf) is "
                                  "not installed: apt-get install mescc-tools")


def test_labels() -> None:
    text = ':main\n:_hidden ;:not\n# :not\n"a :not" x:y>z :a>:b\n: sp\n::dbl\n\'q:r\'\n'
    assert labels(text) == ["main", "_hidden", "y", "a", "b", " sp", ":dbl", "r'"]


def test_label_errors() -> None:
    # words: a seed tool's message is its output (as the upstream tool prints it)
    with pytest.raises(ToolError, match="Can not have an EOF token"):
        labels(":a x:")
    # words: a seed tool's message is its output (as the upstream tool prints it)
    with pytest.raises(ToolError, match="Token exceeds token length restriction"):
        labels(":" + "a" * 4096)
    assert labels(":" + "a" * 4095) == ["a" * 4095]


def test_32_bit_footer_shape() -> None:
    out = generate([b":main\n:_h\n"], entries=["_start"]).decode()
    assert out.startswith("# Generated sections\n:ELF_shstr\n'00'\t# NULL\n")
    assert "'04000000'\t#sh_info\n" in out  # 1 + 1 entry + 2 labels
    assert ":ELF_str__start\t\"_start\"\n:ELF_str_main\t\"main\"\n" in out
    assert "&_start\t#st_value\n'00000000'\t# st_size (unknown size)\n'02'\t# st_info (FUNC)\n" \
        "'00'\t# st_other (default)\n" in out  # the entry is not hidden
    assert "&_h\t#st_value\n'00000000'\t# st_size (unknown size)\n'02'\t# st_info (FUNC)\n" \
        "'02'\t# st_other (hidden)\n" in out
    assert out.endswith("# END Generated symbol table\n\n:ELF_end\n")


def test_64_bit_and_big_endian() -> None:
    out = generate([b":f\n"], bits64=True, big_endian=True).decode()
    assert "'00000006' '00000000'\t#sh_flags\n" in out
    assert "'00000018' '00000000'\t#sh_entsize\n" in out  # 24-byte symbols
    assert "&f '00000000'\t# st_value\n" in out
    octal = generate([b":f\n"], mode=ByteMode.OCTAL).decode()
    assert "'002000000000'\t#sh_info\n" in octal


def rootseed(*args: str, cwd: Path) -> Result:
    return run_cli("tool", "blood-elf", *args, cwd=cwd)


def test_cli(tmp_path: Path) -> None:
    (tmp_path / "a.M1").write_text(":main\n")
    r = rootseed("-f", "a.M1", "--little-endian", "-o", "f.M1", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "f.M1").read_bytes() == generate([b":main\n"])


@pytest.mark.parametrize(("args", "status", "stderr"), [
    (["-f", "a.M1"], 1, "either --little-endian or --big-endian MUST be set\n"),
    (["--little-endian"], 1, ""),  # no input: the original says nothing
    (["-f", "nope", "--little-endian"], 1, "The file: nope can not be opened!\n"),
    (["-f", "eof.M1", "--little-endian"], 1, "Can not have an EOF token\n"),
    (["--entry"], 1, "blood-elf: option --entry needs an argument\n"),  # original crashes
    (["-x"], 1, "Unknown option\n"),
])
def test_cli_errors(tmp_path: Path, args: list[str], status: int, stderr: str) -> None:
    (tmp_path / "a.M1").write_text(":main\n")
    (tmp_path / "eof.M1").write_text(":main\nx:")
    r = rootseed("-o", "out.M1", *args, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (status, stderr)
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.M1").exists()


FLAGS: list[tuple[list[str], dict[str, object]]] = [
    ([], {}),
    (["--64"], {"bits64": True}),
    (["--big-endian"], {"big_endian": True}),
    (["--64", "--big-endian"], {"bits64": True, "big_endian": True}),
    (["-O"], {"mode": ByteMode.OCTAL}),
    (["-b", "--64"], {"mode": ByteMode.BINARY, "bits64": True}),
    (["-X", "--entry", "_start", "--entry", "_x"], {"entries": ["_start", "_x"]}),
]


def ours(sources: list[bytes], options: dict[str, object]) -> tuple[int, bytes, str]:
    try:
        return 0, generate(sources, **options), ""  # type: ignore[arg-type]
    except ToolError as e:
        return 1, b"", e.message


def theirs(sources: list[bytes], flags: list[str]) -> tuple[int, bytes, str]:
    assert DEBIAN is not None
    endian = [] if "--big-endian" in flags else ["--little-endian"]
    files = {f"in{k}.M1": data for k, data in enumerate(sources)}
    argv = [DEBIAN, *endian, *flags]
    for name in files:
        argv += ["-f", name]
    status, out, err = run_tool(argv, files)
    return status, out if status == 0 else b"", err


SAMPLE = b""":_start
	mov_eax, %1 # :comment
	"string :not_a_label" &main
:main :_hidden_helper x:inside>more :last
:ELF_text
"""


@needs_debian
@pytest.mark.parametrize(("flags", "options"), FLAGS)
def test_sample_against_debian(flags: list[str], options: dict[str, object]) -> None:
    assert ours([SAMPLE, b":second_file\n"], options) == \
        theirs([SAMPLE, b":second_file\n"], flags)


@needs_debian
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.integers(0, len(FLAGS) - 1))
def test_generated_against_debian(data: st.DataObject, which: int) -> None:
    flags, options = FLAGS[which]
    sources = [data.draw(m1_source(common=False)).encode() for _ in range(data.draw(
        st.integers(1, 2)))]
    if data.draw(st.booleans()):  # raw text: stray colons, quotes and comment characters
        sources.append(data.draw(st.text(st.sampled_from(list(':"#;>\n\t ab_\r')),
                                         max_size=40)).encode())
    assert ours(sources, options) == theirs(sources, flags)


@needs_debian
def test_version_differs_from_2_0_0(tmp_path: Path) -> None:
    assert DEBIAN is not None
    assert run_tool([DEBIAN, "-V"], {})[1].startswith(b"blood-elf 2.0.0\n")
    assert rootseed("-V", cwd=tmp_path).stdout.startswith("blood-elf 2.0.1\n")
