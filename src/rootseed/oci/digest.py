"""sha256 digests in the OCI form ``sha256:<hex>``, and a writer that hashes as it goes."""

from __future__ import annotations

import hashlib
from typing import Protocol

from rootseed.errors import RootseedError

ALGORITHM = "sha256"


def sha256_bytes(data: bytes) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def hex_of(digest: str) -> str:
    """The hex part of ``sha256:<hex>`` (validated: this names files in ``blobs/``)."""
    algo, _, hexpart = digest.partition(":")
    if algo != ALGORITHM or len(hexpart) != 64 or any(c not in "0123456789abcdef"
                                                       for c in hexpart):
        raise RootseedError(f"not a sha256 digest: {digest!r}")
    return hexpart


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class HashingWriter:
    """A write-only file object that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: Sink | None) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        if self.inner is not None:
            self.inner.flush()

    def tell(self) -> int:
        return self.size

    @property
    def digest(self) -> str:
        return f"{ALGORITHM}:{self.hash.hexdigest()}"
