from __future__ import annotations

from pathlib import Path

from clirun import rootseed as run_cli
from rootseed.tools.hex0 import assemble


def test_pairs_and_comments() -> None:
    src = b"7f 45 4c 46 # ELF magic\n01;class\n 0 2\tFf # trailing\n"
    assert assemble(src) == bytes([0x7F, 0x45, 0x4C, 0x46, 0x01, 0x02, 0xFF])


def test_odd_digit_at_end_is_dropped() -> None:
    assert assemble(b"abc") == b"\xab"


def test_comment_hides_hex_digits() -> None:
    assert assemble(b"# deadbeef\n00") == b"\x00"


def test_cli(tmp_path: Path) -> None:
    (tmp_path / "in.hex0").write_bytes(b"41 42 0a\n")
    r = run_cli("tool", "hex0", tmp_path / "in.hex0", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == b"AB\n"


def test_cli_missing_input_is_clear(tmp_path: Path) -> None:
    r = run_cli("tool", "hex0", tmp_path / "nope", tmp_path / "out")
    assert r.returncode == 1
    # words: a seed tool's only interface is its message and exit status (no --json)
    assert "cannot read" in r.stderr and "Traceback" not in r.stderr
