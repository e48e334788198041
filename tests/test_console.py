"""Progress for people when stderr is not a terminal: plain lines, never redrawn or cut;
and the last line of a step's log shown escaped and bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rootseed.console import WIDE, Working, _Deferred, err, make_console, out
from rootseed.engine.steplog import escape_line, last_line


def test_consoles_that_are_not_terminals_are_wide() -> None:
    assert not err.is_terminal and err.width == WIDE and out.width == WIDE


def test_working_prints_plain_lines_with_elapsed_time_and_latest_output(
        capsys: pytest.CaptureFixture[str]) -> None:
    with Working("crosscheck: starting", follow=lambda: "M1 --file x.M1", every=0.2) as w:
        w.update("crosscheck: 3 of 9 steps checked")
        time.sleep(0.5)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["crosscheck: starting", "crosscheck: 3 of 9 steps checked"]
    assert any(line.startswith("crosscheck: 3 of 9 steps checked (")
               and line.endswith("s): M1 --file x.M1") for line in lines[2:])
    assert "\r" not in "".join(lines) and "\x1b" not in "".join(lines)


def test_last_line_is_escaped_bounded_and_reads_only_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(b"x" * 1_000_000 + b"\nfirst\n\x1b[2Jcleared \x07" + b"y" * 500 + b"\n\n")
    shown = last_line(log, 40)
    assert shown is not None and shown.startswith("\\x1b[2Jcleared \\x07yyy")
    assert len(shown) == 40 and shown.endswith("…")
    assert last_line(tmp_path / "absent.log") is None
    assert escape_line("tab\there") == "tab\\there"


PROGRESS_LINES = [
    "bootstrap-stage0: cached sha256:cee5701e9d52177885a7b4149f83a6f825f7840cb8d7d27cda0d8fc1d107367c in 0.09s",
    "core-app: stage build (1 of 2): step 3 of 9: RUN [\"/bin/sh\", \"-c\", \"x\"] (log: /c/l.log)",
    "[bold]not markup[/] \\[x] ends with spaces   ", ":smile: is an emoji code", "a:b:c", "x :a: y",
    "tab\there", "carriage\rreturn", "bell\x07", "escape \x1b[2J", "line\nbreak", "é non-ASCII", "",
]


@pytest.mark.parametrize("text", PROGRESS_LINES)
def test_a_progress_line_off_a_terminal_is_what_rich_prints(
        text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal a progress line is written without rich (not imported for it), byte
    for byte as rich's console would print it (rich is used where it would change it)."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    deferred = _Deferred(stderr=True)
    deferred.print(text, markup=False, highlight=False, soft_wrap=True)
    plain = capsys.readouterr().err
    make_console(stderr=True).print(text, markup=False, highlight=False, soft_wrap=True)
    assert plain == capsys.readouterr().err


def test_the_deferred_console_is_rich_s_to_rich(capsys: pytest.CaptureFixture[str]) -> None:
    """Given to rich (``Progress(console=err)``), it is used as rich uses a console: rich's
    Live enters it (``with console:``) to buffer what it prints."""
    from rich.progress import Progress

    deferred = _Deferred(stderr=True)
    with deferred as console:
        console.print("buffered")
    with Progress(console=deferred, transient=True) as progress:  # type: ignore[arg-type]
        progress.add_task("x", total=1)
        deferred.print("during", markup=False, highlight=False, soft_wrap=True)
    assert capsys.readouterr().err.split() == ["buffered", "during"]
