"""What a running step's log shows a person: its last line, escaped and bounded.

The log is the step's own output (hostile: any bytes, any length); only its tail is read,
and the line shown is one line of printable text (control characters escaped), cut to
``limit`` characters.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Bytes read from the end of the log to find its last line.
TAIL_BYTES = 4096


def escape_line(text: str, limit: int = 120) -> str:
    """One printable line: control and non-printable characters as ``\\xNN``/``\\uNNNN``
    escapes, cut to ``limit`` characters (``…`` marks the cut)."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def last_line(log: Path, limit: int = 120) -> str | None:
    """The last non-empty line of ``log`` (escaped, bounded), or None (no log, no output)."""
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(size - TAIL_BYTES, 0), os.SEEK_SET)
        tail = os.read(fd, TAIL_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    lines = [x for x in tail.decode("utf-8", errors="replace").splitlines() if x.strip()]
    return escape_line(lines[-1].strip(), limit) if lines else None
