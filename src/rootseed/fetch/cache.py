"""The content-addressed source cache: ``<cache>/sources/sha256/<hex>``.

Only verified bytes ever get a name here: files arrive under a temp name in the same
directory and are renamed after their sha256 matched. A lock per digest keeps concurrent
rootseed processes from racing on one entry.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from rootseed.fsutil import file_sha256, private_dir


class SourceCache:
    def __init__(self, cache_dir: Path):
        private_dir(cache_dir, "cache directory")
        self.dir = cache_dir / "sources" / "sha256"
        self.locks = cache_dir / "locks"

    def path(self, digest: str) -> Path:
        return self.dir / digest

    def lookup(self, digest: str) -> Path | None:
        """The cached file if present *and* still matching its name; a bad entry is dropped."""
        path = self.path(digest)
        if not path.is_file():
            return None
        if file_sha256(path) != digest:
            path.unlink(missing_ok=True)
            return None
        return path

    @contextmanager
    def locked(self, digest: str) -> Iterator[None]:
        self.locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks / f"source-{digest}.lock")):
            yield

    @contextmanager
    def incoming(self) -> Iterator[Path]:
        """A temp file in the cache dir; removed unless :meth:`commit` renamed it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.dir, prefix=".incoming-")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def commit(self, tmp: Path, digest: str) -> Path:
        """Give a verified temp file its content address (atomic rename)."""
        os.chmod(tmp, 0o444)
        dest = self.path(digest)
        os.replace(tmp, dest)
        return dest
