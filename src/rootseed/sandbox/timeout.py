"""The per-step wall-clock limit: ``--step-timeout`` values and their default.

The default is generous on purpose: StageX's longest single steps (a full GCC or LLVM
bootstrap inside one RUN) take hours on a small machine; the limit exists to stop a step
that hangs, not to hurry one that works.
"""

from __future__ import annotations

import math
import re

from rootseed.errors import ErrorKind, RootseedError

#: 6 hours, in seconds.
DEFAULT_STEP_TIMEOUT = 6 * 3600.0
#: The largest limit accepted (a year): anything longer is "no limit" (0) in practice.
MAX_STEP_TIMEOUT = 365 * 86400.0
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


class StepStopped(RootseedError):
    """A running step was killed because its build was cancelled (another step failed,
    or Ctrl-C): the caller says why."""

    kind = ErrorKind.CANCELLED


class StepTimeoutError(RootseedError):
    """A sandboxed step ran longer than its limit and was killed."""

    kind = ErrorKind.STEP_TIMEOUT

    def __init__(self, seconds: float, *, hint: str | None = None):
        super().__init__(f"the step ran longer than the step timeout ({describe(seconds)}) "
                         "and was killed", hint=hint)
        self.seconds = seconds


def parse_duration(text: str) -> float | None:
    """Seconds of ``text`` (``21600``, ``6h``, ``1h30m``, ``90s``); None for no limit
    (``0``, ``none``). A RootseedError for anything else."""
    value = text.strip().lower()
    if value in ("0", "none", "off", "unlimited"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _PART.finditer(value):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(value) or not value:
            raise RootseedError(f"invalid duration {text!r}",
                                hint="use seconds (3600) or units: 6h, 90m, 1h30m, 45s; "
                                     "0 for no limit", kind=ErrorKind.USAGE) from None
    if math.isnan(seconds) or math.isinf(seconds) or seconds > MAX_STEP_TIMEOUT:
        # float() takes "nan", "inf" and "1e400": a limit that never fires (or one that
        # makes the wait and the message fail) must not pass for a limit
        raise RootseedError(f"invalid duration {text!r}",
                            hint="use a finite duration of at most 365d (e.g. 12h), or 0 "
                                 "for no limit", kind=ErrorKind.USAGE)
    if seconds <= 0:
        return None
    return seconds


def describe(seconds: float) -> str:
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    text = "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)
    return text or f"{seconds:g}s"

