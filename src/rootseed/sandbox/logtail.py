"""The end of a step's log as it may be shown on a terminal: bounded and escaped.

A step's output is hostile: one line may be a gigabyte, and it may hold escape sequences
(cursor movement, colours, OSC 52 clipboard writes, terminal title changes) that act on
the user's terminal when printed. :func:`tail` reads at most ``max_bytes`` from the end of
the file, keeps the last ``lines`` lines, cuts each to ``width`` characters and shows
every control character (other than tab) as a visible escape (``\\x1b``), so what reaches
the terminal is text only. The full log stays in its file.
"""

from __future__ import annotations

import os
from pathlib import Path

#: How much of the end of a log is read at most.
MAX_TAIL_BYTES = 16 * 1024
#: The longest line shown (characters); the rest is replaced by a note.
MAX_LINE = 400


def escape(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1; not tab) shown as ``\\xNN``."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch != "\t" and (code < 0x20 or 0x7F <= code < 0xA0):
            out.append(f"\\x{code:02x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def tail(log: Path, *, lines: int = 20, start: int = 0, max_bytes: int = MAX_TAIL_BYTES,
         width: int = MAX_LINE) -> list[str]:
    """The last ``lines`` lines of ``log`` after offset ``start``, safe to print."""
    try:
        with open(log, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            begin = max(start, end - max_bytes)
            f.seek(begin)
            data = f.read(max_bytes)
    except OSError:
        return []
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    cut_first = begin > start and len(parts) > 0
    shown: list[str] = []
    for n, line in enumerate(parts[-lines:]):
        first = n == 0 and cut_first and len(parts) <= lines
        line = escape(line)
        if len(line) > width:
            line = line[:width] + " … (cut: the full log has the whole line)"
        if first:
            line = "… " + line
        shown.append(line)
    return shown
