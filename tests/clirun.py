"""Run ``rootseed ARGS`` inside the test process: the one CLI runner of the test suite.

Starting ``python -m rootseed`` costs ~0.6 s before any work; most CLI tests only need what
a user sees (exit code, stdout, stderr), which :func:`rootseed` gives without a new process.
It calls :func:`rootseed.cli.main` (the entry point a user runs, with its error rendering)
with the process's streams, working directory, environment and umask swapped for the call
and put back afterwards.

Tests about the process itself (signals, the exit of the process, install, several
processes at once) keep ``subprocess``: see :func:`rootseed_process`.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rootseed import console
from rootseed.cli import main


class TimedOut(BaseException):
    """The call ran past its ``timeout`` (a BaseException: ``main`` must not render it)."""


@contextmanager
def _deadline(timeout: float | None) -> Iterator[None]:
    """Interrupt the call (even a blocking open of a FIFO) after ``timeout`` seconds."""
    if timeout is None:
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise TimedOut(f"rootseed did not finish within {timeout} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Result:
    """What a user sees of one run (the fields of :class:`subprocess.CompletedProcess`)."""

    args: tuple[str, ...]
    returncode: int
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", errors="replace")


class _Stream(io.TextIOWrapper):
    """A text stream over bytes (commands that write ``sys.stdout.buffer`` work too)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="replace", newline="",
                         write_through=True)

    def data(self) -> bytes:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue()

    def isatty(self) -> bool:
        return False


@contextmanager
def _environment(cwd: Path | None, env: Mapping[str, str] | None, umask: int | None
                 ) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_umask = os.umask(umask) if umask is not None else None
    try:
        if env is not None:
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        if saved_umask is not None:
            os.umask(saved_umask)


@contextmanager
def _streams(stdout: _Stream, stderr: _Stream) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    # the consoles were made at import time, when the test process's streams may have been a
    # terminal: a user's pipe has no colours and COLUMNS (else 80) columns
    width = int(os.environ.get("COLUMNS", "80"))
    consoles = (console.err, console.out)
    kept = [(c._color_system, c._width) for c in consoles]
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(""), stdout, stderr
    for c in consoles:
        c._color_system, c._width = None, width
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        for c, (colours, old_width) in zip(consoles, kept, strict=True):
            c._color_system, c._width = colours, old_width


def rootseed(*args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
             umask: int | None = None, expect: int | None = None,
             timeout: float | None = None) -> Result:
    """``rootseed ARGS`` in this process; never a traceback, never exit 70 (internal error).

    ``env`` adds to (or overrides) the environment; ``expect`` checks the exit code;
    ``timeout`` fails the test (:class:`TimedOut`) instead of letting a hang hang the run.
    """
    argv = [str(a) for a in args]
    stdout, stderr = _Stream(), _Stream()
    handler = signal.getsignal(signal.SIGTERM)
    with _environment(cwd, env, umask), _streams(stdout, stderr), _deadline(timeout):
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                sys.stderr.write(e.code + "\n")
        finally:
            signal.signal(signal.SIGTERM, handler)
    result = Result(tuple(argv), code, stdout.data(), stderr.data())
    assert "Traceback" not in result.stderr, result.stderr
    assert code != 70, result.stderr
    if expect is not None:
        assert code == expect, (f"rootseed {' '.join(argv)}: exit {code}, expected {expect}\n"
                                f"{result.stdout}\n{result.stderr}")
    return result


def rootseed_process(*args: str | Path, cwd: Path | None = None,
                     env: Mapping[str, str] | None = None, timeout: float = 600
                     ) -> subprocess.CompletedProcess[str]:
    """``python -m rootseed ARGS`` as a process of its own: for tests about the process."""
    proc = subprocess.run([sys.executable, "-m", "rootseed", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    return proc
