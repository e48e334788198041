"""hex1 and hex2-0 (stage0-posix x86), on inputs written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from rootseed.tools import hex1, hex2_0
from rootseed.tools._util import ToolError


def le32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def test_hex1_labels_and_pointers() -> None:
    src = b":a 90 %b # comment %a\n:b C3 ; more\n%a\n"
    # a=0; %b at 1..4 ends at 5, b=5; %a ends at 10
    assert hex1.assemble(src) == b"\x90" + le32(0) + b"\xc3" + le32(-10)


def test_hex1_labels_are_any_single_byte() -> None:
    assert hex1.assemble(b":% 00 %%") == b"\x00" + le32(-5)


def test_hex1_has_no_bang_pointer_on_x86() -> None:
    # '!' is ignored, so the 'a' after it is a hex digit
    assert hex1.assemble(b":a !a 0") == b"\xa0"


def test_hex1_label_between_digits_counts_the_pair() -> None:
    # the first pass counts a byte at its first digit: label x is at 1, not 0
    assert hex1.assemble(b"a:xb %x") == b"\xab" + le32(1 - 5)


def test_hex1_errors() -> None:
    # words: a seed tool's only interface is its message and exit status (no --json)
    with pytest.raises(ToolError, match="not defined"):
        hex1.assemble(b"%q")
    # words: a seed tool's only interface is its message and exit status (no --json)
    with pytest.raises(ToolError, match="end of input"):
        hex1.assemble(b"00 %")


def test_hex2_0_pointers() -> None:
    src = b":main 90\n!main @main $main %main &main\n:end %end>main\n"
    base = 0x8048000
    out = hex2_0.link(src)
    assert out == (b"\x90" + bytes([(-2) & 0xFF]) + (-4 & 0xFFFF).to_bytes(2, "little")
                   + (base & 0xFFFF).to_bytes(2, "little") + le32(-10) + le32(base)
                   + le32(14))  # end is at 14


def test_hex2_0_truncates_instead_of_checking() -> None:
    src = b":a " + b"00" * 300 + b" !a\n"
    assert hex2_0.link(src)[-1] == (-301) & 0xFF


def test_hex2_0_label_between_digits() -> None:
    # unlike mescc-tools' hex2, the label lands one byte later
    assert hex2_0.link(b"a:x b %x") == b"\xab" + le32(1 - 5)


def test_hex2_0_latest_definition_wins() -> None:
    assert hex2_0.link(b":a 00 :a &a") == b"\x00" + le32(0x8048001)


def test_hex2_0_undefined() -> None:
    # words: a seed tool's only interface is its message and exit status (no --json)
    with pytest.raises(ToolError, match="'nowhere' is not defined"):
        hex2_0.link(b"%nowhere\n")


@pytest.mark.parametrize("tool", ["hex1", "hex2-0"])
def test_cli_bad_input_is_clear(tool: str, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"%zz\n")
    out = tmp_path / "out"
    for argv in ([str(tmp_path / "in"), str(out)], [str(tmp_path / "missing"), str(out)],
                 [str(tmp_path / "in")]):
        r = run_cli("tool", tool, *argv)
        assert r.returncode != 0
        assert r.stderr.strip() and "Traceback" not in r.stderr
        assert not out.exists()


def test_cli_writes_output(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b":a 00 %a\n")
    r = run_cli("tool", "hex1", tmp_path / "in", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == b"\x00" + le32(-5)
