"""How much work one ADD of a local archive may do: entries, bytes written, time.

An archive is hostile input: 22 KB of xz can hold 300,000 entries (a minute of work and
hundreds of MB of memory), and a few KB of sparse tar can stand for a file of any size,
which unpacking writes out in full. The bounds grow with the archive's own (compressed)
size, so a real source tarball (a compiler's: ~100,000 entries in tens of MB, about ten
times its size unpacked) is far inside them, while a tiny archive that expands by a factor
of thousands is refused:

* entries: at most ``BASE_ENTRIES`` plus one per ``BYTES_PER_ENTRY`` bytes of archive;
* bytes written: at most ``BASE_BYTES`` or ``RATIO`` times the archive size, whichever is
  larger, and never more than the step's disk limit (``--max-disk``);
* time: the step timeout (``--step-timeout``) applies to ADD as to RUN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox.limits import describe_size
from rootseed.sandbox.timeout import StepTimeoutError

BASE_ENTRIES = 10_000
BYTES_PER_ENTRY = 16
BASE_BYTES = 1 << 30
RATIO = 1000


class ArchiveTooBig(RootseedError):
    """An archive expands past what its size allows (names the archive and the bound);
    ``bound`` (also in ``--json``) says which: ``entries``, ``size`` or ``disk`` (the
    step's disk limit)."""

    kind = ErrorKind.ARCHIVE

    def __init__(self, message: str, *, bound: str, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.bound = bound

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "bound": self.bound}


@dataclass
class ArchiveBudget:
    archive: str
    size: int  # the archive file's size in bytes
    disk: int | None = None  # the step's disk limit
    timeout: float | None = None  # seconds
    entries: int = 0
    written: int = 0
    _deadline: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.timeout is not None:
            self._deadline = time.monotonic() + self.timeout

    @property
    def max_entries(self) -> int:
        return BASE_ENTRIES + self.size // BYTES_PER_ENTRY

    @property
    def max_bytes(self) -> int:
        bound = max(BASE_BYTES, RATIO * self.size)
        return bound if self.disk is None else min(bound, self.disk)

    def _hint(self) -> str:
        return ("the archive is malformed or hostile (a real source archive is far inside "
                "this bound); nothing outside the image was touched")

    def entry(self) -> None:
        """One more member; an error past the entry bound or the deadline."""
        self.entries += 1
        if self.entries > self.max_entries:
            raise ArchiveTooBig(
                f"ADD {self.archive}: more than {self.max_entries} entries in an archive of "
                f"{describe_size(self.size)}", bound="entries", hint=self._hint())
        self.tick()

    def write(self, size: int) -> None:
        """``size`` more bytes to be written; an error past the byte bound."""
        self.written += size
        if self.written > self.max_bytes:
            disk = self.disk is not None and self.max_bytes == self.disk
            what = ("the step's disk limit" if disk else f"an archive of "
                    f"{describe_size(self.size)}")
            raise ArchiveTooBig(
                f"ADD {self.archive}: unpacks to more than {describe_size(self.max_bytes)} "
                f"({what})", bound="disk" if disk else "size",
                hint=self._hint() + "; --max-disk raises the disk limit")
        self.tick()

    def tick(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            assert self.timeout is not None
            raise StepTimeoutError(self.timeout, hint=f"unpacking {self.archive} took too "
                                   "long; if it is just slow, raise --step-timeout")
