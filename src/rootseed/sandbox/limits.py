"""Resource limits of one RUN step: what they are, how sizes are written, their defaults.

The defaults are far above what a real build needs (StageX's stage1 — gcc, hours, two
cores — stays well below each): they exist to stop a step that eats the machine (a fork
bomb, a /tmp or log that fills memory or disk), not to shape a build. Limits never change
what a step produces, so they are not part of any cache key.

Which means enforce what (see docs/trust-model.md, "Step limits"):

* ``tmp``: the size of the step's ``/tmp`` tmpfs (bwrap ``--size``), always;
* ``log``: the log writer stops copying and kills the step, always;
* ``disk``: every file the step writes (RLIMIT_FSIZE, always) and, with copy-on-write
  snapshots, everything the step wrote (its upper directory, measured while it runs);
* ``processes`` and ``memory``: a cgroup per step where rootseed may make one (cgroup v1
  as root, or a cgroup v2 subtree it may write, see :mod:`.cgroup`); without one, the
  per-user RLIMIT_NPROC (counted in the step's user namespace; the kernel does not apply
  it to root) and RLIMIT_DATA per process.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rootseed.errors import ErrorKind, RootseedError

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?")
_NO_LIMIT = ("0", "none", "off", "unlimited")


class Limit(Enum):
    """One kind of step limit (its value is the command-line option's name)."""

    PROCESSES = "max-processes"
    MEMORY = "max-memory"
    TMP = "max-tmp"
    LOG = "max-log"
    DISK = "max-disk"

    @property
    def what(self) -> str:
        return {Limit.PROCESSES: "process limit", Limit.MEMORY: "memory limit",
                Limit.TMP: "/tmp size limit", Limit.LOG: "log size limit",
                Limit.DISK: "disk limit"}[self]


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * GiB


def _default_memory() -> int:
    """Three quarters of the machine's memory: a step may use most of it, not all."""
    return _physical_memory() // 4 * 3


def _default_tmp() -> int:
    """4 GiB, or a quarter of the machine's memory when that is less (a tmpfs is memory)."""
    return min(4 * GiB, _physical_memory() // 4)


@dataclass(frozen=True)
class StepLimits:
    """Limits of one RUN step; None means no limit of that kind."""

    processes: int | None = 1024
    memory: int | None = field(default_factory=_default_memory)
    tmp: int | None = field(default_factory=_default_tmp)
    log: int | None = 1 * GiB
    disk: int | None = 64 * GiB

    def value(self, limit: Limit) -> int | None:
        return {Limit.PROCESSES: self.processes, Limit.MEMORY: self.memory,
                Limit.TMP: self.tmp, Limit.LOG: self.log, Limit.DISK: self.disk}[limit]

    def describe(self, limit: Limit) -> str:
        value = self.value(limit)
        if value is None:
            return "none"
        return str(value) if limit is Limit.PROCESSES else describe_size(value)


class StepLimitError(RootseedError):
    """A step went past one of its limits (``limit``, also in ``--json``) and was stopped."""

    kind = ErrorKind.STEP_LIMIT

    def __init__(self, limit: Limit, limits: StepLimits, detail: str, *, log: str) -> None:
        super().__init__(
            f"the step hit its {limit.what} ({limits.describe(limit)}): {detail}; it was "
            "stopped",
            hint=f"output so far is in {log}; if the step really needs more, raise the "
                 f"limit (--{limit.value} ...; 0 for none)")
        self.limit = limit

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "limit": self.limit.value}


def parse_size(text: str) -> int | None:
    """Bytes of ``text`` (``4096``, ``512M``, ``4G``, ``1.5GiB``, ``2t``); None for no
    limit (``0``, ``none``). A RootseedError for anything else."""
    value = text.strip().lower()
    if value in _NO_LIMIT:
        return None
    m = _SIZE.fullmatch(value)
    if m is None:
        raise RootseedError(f"invalid size {text!r}",
                            hint="use bytes or a unit: 512M, 4G, 1.5G, 2T; 0 for no limit",
                            kind=ErrorKind.USAGE)
    size = float(m.group(1)) * _UNITS[m.group(2)]
    if math.isinf(size) or size >= 1 << 62:
        raise RootseedError(f"invalid size {text!r}: too large", hint="0 means no limit",
                            kind=ErrorKind.USAGE)
    return int(size) or None


def parse_count(text: str) -> int | None:
    value = text.strip().lower()
    if value in _NO_LIMIT:
        return None
    if not value.isdecimal() or len(value) > 12:
        raise RootseedError(f"invalid number {text!r}", hint="a whole number; 0 for no limit")
    return int(value)


def describe_size(size: int) -> str:
    for unit, scale in (("T", TiB), ("G", GiB), ("M", MiB), ("K", KiB)):
        if size >= scale:
            shown = size / scale
            return f"{shown:.0f}{unit}" if shown == int(shown) else f"{shown:.1f}{unit}"
    return f"{size}B"


#: The limits of this run's steps: set once by the command line (``use``), read by
#: :func:`rootseed.sandbox.run` for a spec that names none.
_CURRENT: StepLimits | None = None


def use(limits: StepLimits) -> None:
    global _CURRENT
    _CURRENT = limits


def current() -> StepLimits:
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = StepLimits()
    return _CURRENT
