"""A remote result's small files are read ahead in batches, but never all at once: a
result (an honest stage's large output, or a hostile service's claim of many files) whose
small files add up to a gigabyte must not be held in memory before the first is written.

Only the read-ahead is looked at here (a stand-in for the client records what it is
asked for; every blob is still verified by :meth:`Remote.read_file`, as the other remote
tests show): the most bytes asked for in one go stays a window, and every file is
written with the bytes read for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rootseed.remote.client import BATCH_LIMIT, Prefetched
from rootseed.remote.protos import re_pb2

FILES = 512  # of BATCH_LIMIT bytes each: 1 GiB claimed
WINDOW = 128 << 20  # what "a window, not the whole output" means here


def _digest(i: int) -> re_pb2.Digest:
    return re_pb2.Digest(hash=hashlib.sha256(str(i).encode()).hexdigest(),
                         size_bytes=BATCH_LIMIT)


class _Client:
    """Records what is read ahead (``read_many``) and what each file was written with."""

    def __init__(self) -> None:
        self.asked: list[int] = []  # bytes per read-ahead
        self.written: list[tuple[str, bytes | None]] = []

    def read_many(self, digests: Any) -> dict[str, bytes]:
        ds = list(digests)
        self.asked.append(sum(d.size_bytes for d in ds))
        return {d.hash: d.hash.encode() for d in ds}  # a token per blob (size unchecked)

    def read_file(self, d: re_pb2.Digest, dest: Path, mode: int, *,
                  data: bytes | None = None) -> None:
        self.written.append((d.hash, data))


def test_small_files_are_read_ahead_a_window_at_a_time(tmp_path: Path) -> None:
    digests = [_digest(i) for i in range(FILES)] + [_digest(0)]  # one content twice
    client = _Client()
    reader = Prefetched(client, list(digests))  # type: ignore[arg-type]
    held_before_writing = sum(client.asked)
    for d in digests:
        reader.read_file(d, tmp_path / d.hash, 0o644)
    assert held_before_writing <= WINDOW
    assert max(client.asked) <= WINDOW
    assert sum(client.asked) <= (FILES + 1) * BATCH_LIMIT  # each read ahead about once
    assert client.written == [(d.hash, d.hash.encode()) for d in digests]
