"""Steps that wait for the test: a RUN ``sleep <marker>`` that lives until the test ends
it, found through /proc (the sandbox shares no writable directory with the test, but
its processes are visible from the host). Tests use it to order what happens in a build
without measuring time."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

WAIT = 300.0  # seconds: a generous bound on a loaded machine, never a measurement


def marker() -> str:
    """A sleep argument no other test (or other checkout's test) uses at the same time."""
    return str(10**9 + secrets.randbelow(10**9))


def alive(markers: dict[str, str]) -> dict[str, int]:
    """Name → pid of its marker sleep, for those alive now."""
    wanted = {m.encode(): name for name, m in markers.items()}
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] in wanted:
            found[wanted[argv[1]]] = int(entry.name)
    return found


def end(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def end_all(markers: dict[str, str]) -> None:
    for pid in alive(markers).values():
        end(pid)


def wait_until(what: str, done: Callable[[], bool], going: Callable[[], bool]) -> None:
    """Poll ``done`` until true; fail when ``going`` turns false or WAIT passes."""
    deadline = time.monotonic() + WAIT
    while not done():
        if not going() or time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)
