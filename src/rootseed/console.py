"""Where output goes: results on stdout, progress and diagnostics on stderr.

On a terminal, rich lays output out to the terminal's width. Output that is not a terminal
(a file, a pipe, CI's log) is never cut or wrapped: its consoles are :data:`WIDE`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from rich.console import Console

#: The width of a console whose output is not a terminal: wide enough that no table cell,
#: path or hash rich lays out is ever cut or wrapped (tables only take what they need).
WIDE = 10_000


def make_console(*, stderr: bool) -> Console:
    """A console for stdout or stderr: the terminal's width, or :data:`WIDE` without one."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, highlight=False, width=WIDE, soft_wrap=True)


#: What rich reads to decide that a stream is a terminal besides ``isatty()``: set, rich
#: decides (as it does under IDLE and IPython/Jupyter).
_TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
#: rich's emoji codes (``:name:``) are the one change it makes to plain printable text.
_EMOJI_CODE = re.compile(r":\S*?:")


class _Deferred:
    """rich's console for one stream, made when it is first needed: importing rich costs
    ~20 ms, and a warm build that is not on a terminal never needs it.

    The one call a progress line makes, ``print(text, markup=False, highlight=False,
    soft_wrap=True)``, writes ``text`` itself when the stream is no terminal (as rich
    decides it) and rich would print it unchanged: printable ASCII without an emoji code.
    Everything else is the console's (made then, once)."""

    def __init__(self, *, stderr: bool) -> None:
        object.__setattr__(self, "_stderr", stderr)
        object.__setattr__(self, "_made", None)

    def _console(self) -> Console:
        made: Console | None = object.__getattribute__(self, "_made")
        if made is None:
            made = make_console(stderr=object.__getattribute__(self, "_stderr"))
            object.__setattr__(self, "_made", made)
        return made

    def _plain_stream(self) -> TextIO | None:
        """The stream, when text goes to it as it is: no console made yet, no terminal."""
        if object.__getattribute__(self, "_made") is not None:
            return None
        if any(name in os.environ for name in _TERMINAL_ENV):
            return None
        stream = sys.stderr if object.__getattribute__(self, "_stderr") else sys.stdout
        if (stream is None or "IPython" in sys.modules
                or str(getattr(sys.stdin, "__module__", "")).startswith("idlelib")):
            return None
        try:
            return None if stream.isatty() else stream
        except ValueError:  # closed
            return None

    def print(self, *objects: Any, **options: Any) -> None:
        if (len(objects) == 1 and type(objects[0]) is str
                and options == {"markup": False, "highlight": False, "soft_wrap": True}):
            text: str = objects[0]
            if text.isascii() and text.isprintable() and not _EMOJI_CODE.search(text):
                stream = self._plain_stream()
                if stream is not None:
                    stream.write(text + "\n")
                    stream.flush()
                    return
        self._console().print(*objects, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console(), name)

    # ``with console:`` (rich's Live does it with the console it is given) looks these up
    # on the type, not through __getattr__
    def __enter__(self) -> Console:
        return self._console().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._console().__exit__(*exc)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._console(), name, value)


#: Diagnostics, progress bars and summaries for people.
err = cast("Console", _Deferred(stderr=True))
#: Results (tables for people; JSON for machines goes through :func:`emit_json`).
out = cast("Console", _Deferred(stderr=False))


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
