"""Where output goes: results on stdout, progress and diagnostics on stderr.

On a terminal, rich lays output out to the terminal's width. Output that is not a terminal
(a file, a pipe, CI's log) is never cut or wrapped: its consoles are :data:`WIDE`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

#: The width of a console whose output is not a terminal: wide enough that no table cell,
#: path or hash rich lays out is ever cut or wrapped (tables only take what they need).
WIDE = 10_000


def make_console(*, stderr: bool) -> Console:
    """A console for stdout or stderr: the terminal's width, or :data:`WIDE` without one."""
    console = Console(stderr=stderr, highlight=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, highlight=False, width=WIDE, soft_wrap=True)


#: Diagnostics, progress bars and summaries for people.
err = make_console(stderr=True)
#: Results (tables for people; JSON for machines goes through :func:`emit_json`).
out = make_console(stderr=False)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no insignificant whitespace: the one JSON form rootseed writes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


#: How many JSON documents :func:`emit_json` has written (the CLI writes an error as JSON
#: only when the command wrote none: stdout stays one document).
emitted = 0


def emit_json(obj: Any) -> None:
    """Print a machine-readable result on stdout (pretty, stable key order)."""
    global emitted
    sys.stdout.write(json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    emitted += 1


class Working:
    """Progress of one long piece of work for people, on stderr.

    On a terminal: a spinner line with the current text, the elapsed time and (``follow``)
    the latest line of what the work writes. Otherwise plain lines, never redrawn: the
    text when it changes, and every ``every`` seconds the elapsed time and that latest
    line, so a log shows the work is alive and what it does.
    """

    def __init__(self, text: str, *, follow: Callable[[], str | None] | None = None,
                 every: float = 15.0) -> None:
        self.text = text
        self.follow = follow
        self.every = every
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status: Any = None

    def update(self, text: str) -> None:
        with self._lock:
            if text == self.text:
                return
            self.text = text
        if self._status is None:
            err.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._refresh()

    def _line(self) -> str:
        shown = self.follow() if self.follow is not None else None
        return (f"{self.text} ({time.monotonic() - self.started:.0f}s)"
                + (f": {shown}" if shown else ""))

    def _refresh(self) -> None:
        from rich.markup import escape

        self._status.update(escape(self._line()))

    def _tick(self) -> None:
        while not self._stop.wait(1.0 if self._status is not None else self.every):
            if self._status is not None:
                self._refresh()
            else:
                err.print(self._line(), markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> Working:
        if err.is_terminal:
            from rich.markup import escape

            self._status = err.status(escape(self.text))
            self._status.__enter__()
        else:
            err.print(self.text, markup=False, highlight=False, soft_wrap=True)
        threading.Thread(target=self._tick, daemon=True, name="rootseed-working").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._status is not None:
            self._status.__exit__(None, None, None)
