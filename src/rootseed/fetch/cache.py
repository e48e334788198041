"""The content-addressed source cache: ``<cache>/sources/sha256/<hex>``.

Only verified bytes ever get a name here: files arrive under a temp name in the same
directory and are renamed after their sha256 matched. A lock per digest keeps concurrent
rootseed processes from racing on one entry. The cache may have been written by someone
else: entries are opened through :mod:`rootseed.safefs` (no link followed, never a FIFO
or an endless file read: at most the size a regular file reports, and no more than a
source may have), and a link in place of ``sources/sha256`` is refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rootseed import safefs
from rootseed.filelocks import FileLock
from rootseed.fsutil import private_dir

#: The most a source may have (as fetch.MAX_SOURCE; kept here to avoid a cycle).
MAX_ENTRY = 4 << 30


class SourceCache:
    def __init__(self, cache_dir: Path):
        self.root = private_dir(cache_dir, "cache directory")
        self.dir = cache_dir / "sources" / "sha256"
        self.locks = cache_dir / "locks"

    def path(self, digest: str) -> Path:
        return self.dir / digest

    def lookup(self, digest: str) -> Path | None:
        """The cached file if present *and* still matching its name; a bad entry is dropped."""
        path = self.path(digest)
        try:
            actual = safefs.sha256(self.root, path, MAX_ENTRY)
        except FileNotFoundError:
            return None
        except (OSError, safefs.UnsafePath):
            actual = None  # a link, a FIFO, a device, too large: not an entry
        if actual != digest:
            safefs.remove(self.root, path)
            return None
        return path

    @contextmanager
    def locked(self, digest: str) -> Iterator[None]:
        with FileLock(self.locks / f"source-{digest}.lock", root=self.root):
            yield

    @contextmanager
    def incoming(self) -> Iterator[Path]:
        """A temp file in the cache dir; removed unless :meth:`commit` renamed it."""
        safefs.ensure_dir(self.root, self.dir)  # a link in its place is refused
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
