"""Red-team: what a step prints reaches the user's terminal bounded and escaped; its log
errors are one clear message; its /proc/1/cmdline names no host path.

On main before this change: a failing step whose last line was 100 MB put all of it on
stderr (822 MB RSS); raw escape sequences (cursor movement, colours, OSC 52 clipboard
writes) from step output reached the terminal; ENOSPC while writing the step log printed
a Python traceback from the log thread and the step counted as a success; with overlay
snapshots ``/proc/1/cmdline`` showed ``--bind <cache>/actions/.tmp-…/merged /``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hostile import BUSYBOX, Canaries, HostileTree
from kinds import cli_error, raises_kind
from rootseed.errors import ErrorKind
from rootseed.sandbox import SandboxSpec, run


def _tree(tmp_path: Path, script: str) -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("loud", "FROM evil/bootstrap-base\nRUN <<EOF\n" + script + "\nEOF\n")
    return tree


def test_escape_sequences_and_a_huge_line_are_not_passed_to_the_terminal(tmp_path: Path
                                                                         ) -> None:
    canaries = Canaries(tmp_path)
    tree = _tree(tmp_path, 'head -c 30000000 /dev/zero | tr "\\0" a\n'
                           'printf "\\n\\033]52;c;aGVsbG8=\\007\\033[2J\\033[H\\033[31mred"\n'
                           'exit 3')
    proc = tree.build("test-loud", extra=("--json",))
    error = cli_error(proc, ErrorKind.STEP_FAILED, exit_code=1, line=2, step="RUN")
    assert error["status"] == 3
    # words: what reaches the terminal is what is tested: escaped, bounded, with the log
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "\\x1b]52;c;aGVsbG8=\\x07" in proc.stderr  # shown, escaped
    assert len(proc.stderr) < 20_000, len(proc.stderr)
    assert "full log:" in proc.stderr
    log = next((tree.cache / "logs").rglob("*line0002.log"))
    assert log.stat().st_size > 30_000_000  # the log keeps everything
    canaries.assert_unchanged()


def test_proc_1_cmdline_names_no_host_path(tmp_path: Path) -> None:
    tree = _tree(tmp_path, 'tr "\\0" "\\n" < /proc/1/cmdline\nexit 1')
    proc = tree.build("test-loud", extra=("--snapshots", "overlay"))
    assert proc.returncode == 1, proc.stderr
    log = next((tree.cache / "logs").rglob("*line0002.log")).read_text()
    assert "bwrap" in log  # the step did read it
    assert str(tree.cache) not in log and str(tmp_path) not in log, log


def test_a_log_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(BUSYBOX.read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    spec = SandboxSpec(rootfs=root, argv=["/bin/busybox", "sh", "-c", "echo hello; sleep 2"],
                       env={})
    crashed: list[threading.ExceptHookArgs] = []
    saved, threading.excepthook = threading.excepthook, crashed.append
    try:
        with raises_kind(ErrorKind.CACHE) as info:
            run(spec, log=Path("/dev/full"))
    finally:
        threading.excepthook = saved
    assert not crashed, "the log thread died with a traceback"
    assert "/dev/full" in info.value.message  # words: names the log that could not be written


def test_a_huge_last_line_is_shown_bounded(tmp_path: Path) -> None:
    tree = _tree(tmp_path, 'head -c 50000000 /dev/zero | tr "\\0" a\nexit 3')
    proc = tree.build("test-loud", extra=("--json",))
    cli_error(proc, ErrorKind.STEP_FAILED, exit_code=1, status=3)
    assert "full log:" in proc.stderr  # words: the terminal shows where the rest is
    assert len(proc.stderr) < 20_000, len(proc.stderr)


def test_escape_sequences_in_the_containerfile_are_not_passed_to_the_terminal(
        tmp_path: Path) -> None:
    """The progress line and the failure summary quote the instruction: escaped too."""
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("loud", "FROM evil/bootstrap-base\n"
                 "RUN echo '\x1b]52;c;aGk=\x07\x1b[2J'; exit 1\n")
    proc = tree.build("test-loud")
    assert proc.returncode == 1, proc.stderr
    # words: what reaches the terminal is what is tested: escaped
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "\\x1b]52;c;aGk=" in proc.stderr


def test_bwrap_options_through_args_keep_a_value_that_is_dashes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain root bind (what overlay snapshots use) passes bwrap's options by fd; an
    ENV value "--" must stay a value, and pid 1's command line names no host path."""
    from rootseed.sandbox import execute

    monkeypatch.setattr(execute, "_NEUTRAL_ROOT_BROKEN", True)
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(BUSYBOX.read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    log = tmp_path / "log"
    spec = SandboxSpec(rootfs=root, env={"X": "--"}, argv=[
        "/bin/busybox", "sh", "-c", 'echo "X=$X"; tr "\\0" "\\n" </proc/1/cmdline'])
    assert run(spec, log=log) == 0
    text = log.read_text()
    assert "X=--" in text and "--args" in text
    assert str(tmp_path) not in text, text
