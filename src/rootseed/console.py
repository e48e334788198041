"""Where output goes: results on stdout, progress and diagnostics on stderr.

On a terminal, rich lays output out to the terminal's width. Output that is not a terminal
(a file, a pipe, CI's log) is never cut or wrapped: its consoles are :data:`WIDE`.
"""

from __future__ import annotations

import json
import sys
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


def emit_json(obj: Any) -> None:
    """Print a machine-readable result on stdout (pretty, stable key order)."""
    sys.stdout.write(json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
