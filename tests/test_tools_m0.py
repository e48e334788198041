"""M0 (stage0-posix-x86's minimal macro assembler): behaviour worked out from the comments
of M0_x86.hex2. The real M0 is compared in test_tools_stage0_chain.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from rootseed.tools._util import ToolError
from rootseed.tools.m0 import assemble


def m0(text: str) -> str:
    return assemble(text.encode("latin-1"), "in.M1").decode("latin-1")


def test_defines_apply_to_later_tokens_only() -> None:
    src = "mov\nDEFINE mov B8\nmov %1\nDEFINE mov 89\nmov\n"
    assert m0(src) == "mov\nB8\n01000000\n89\n"


def test_one_line_per_token() -> None:
    assert m0("DEFINE nop 90\n:a nop nop\t&a %a\n") == ":a\n90\n90\n&a\n%a\n"


def test_numbers() -> None:
    assert m0("%1 %-1 @0x10 !0x80 !-1 &0 %0x7FFFFFFF\n") == \
        "01000000\nFFFFFFFF\n1000\n80\nFF\n00\nFFFFFF7F\n"
    # the prefix is any first character; 1 byte unless % or @
    assert m0("A10 x0x1F :10\n") == "0A\n1F\n0A\n"
    # hex digits are capitals and "-" is only for decimal: junk is 0, which is printed
    # when the number is spelled with a leading 0, else the token is left as it is
    assert m0("!0xff !0x-1 !-x !1a\n") == "00\n00\n!-x\n!1a\n"


def test_strings() -> None:
    assert m0('"ab" \'0F 85\' ""\n') == "616200\n0F 85\n00\n"
    assert m0('"a\nb"\n') == "610A6200\n"


def test_comments_and_separators() -> None:
    # a NUL ends an atom, and where a token may start it begins a comment
    assert m0("# c\n:a;x\n\t:b ; c\n:c\x00junk\n\x00 :d\n:e\n") == ":a;x\n:b\n:c\njunk\n:e\n"


def test_0xfc_ends_the_input_where_a_token_may_start() -> None:
    assert m0(":a \xfc :b\n") == ":a\n"
    assert m0(":a\xfc\n") == ":a\xfc\n"


@pytest.mark.parametrize(("text", "message"), [
    ("", "no tokens"),
    (":a", "the last token must be followed"),
    (":a\n# c", "comment not ended by a newline"),
    (':a "abc\n', "unterminated string"),
    ("DEFINE x\n", "DEFINE needs a name and a value"),
    (":a DEFINE x 01\n", "a DEFINE must not end the file"),
    (":" + "a" * 256 + "\n", "token of 257 bytes"),
])
def test_inputs_the_original_cannot_handle(text: str, message: str) -> None:
    # words: a seed tool's only interface is its message and exit status (no --json)
    with pytest.raises(ToolError, match=message):
        m0(text)


def test_cli(tmp_path: Path) -> None:
    (tmp_path / "in.M1").write_text("DEFINE ret C3\n:f ret\n")
    r = run_cli("tool", "M0", "in.M1", "out.hex2", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "out.hex2").read_text() == ":f\nC3\n"


def test_cli_bad_input(tmp_path: Path) -> None:
    (tmp_path / "in.M1").write_text(":a")
    r = run_cli("tool", "M0", "in.M1", "out.hex2", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    # words: a seed tool's only interface is its message and exit status (no --json)
    assert "in.M1:1: the last token" in r.stderr
    assert not (tmp_path / "out.hex2").exists()
