"""Fetch pinned sources: local mirror dirs first, then URL mirrors; sha256 before use.

Each attempt that fails (wrong hash, 404, dead host, truncated body) moves on to the next
mirror; when every mirror failed, one error lists them all with the reason. Nothing
unverified ever gets a name in the cache.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rootseed import __version__
from rootseed.console import err
from rootseed.errors import RootseedError
from rootseed.fetch.cache import SourceCache
from rootseed.fsutil import CHUNK, file_sha256
from rootseed.tree import Package, Source

if TYPE_CHECKING:
    import httpx

__all__ = ["FetchError", "Fetcher"]


class FetchError(RootseedError):
    """No mirror produced the pinned bytes of one or more sources."""


@dataclass(frozen=True)
class Attempt:
    where: str
    why: str


class _Mismatch(Exception):
    def __init__(self, actual: str, size: int):
        super().__init__(actual)
        self.actual = actual
        self.size = size


class Fetcher:
    def __init__(self, cache_dir: Path, mirrors: Sequence[Path] = (), *, offline: bool = False,
                 progress: bool = True, base_dir: Path | None = None, timeout: float = 30.0):
        self.cache = SourceCache(cache_dir)
        self.mirrors = tuple(mirrors)
        self.offline = offline
        self.progress = progress
        self.base_dir = base_dir  # for relative `file:` mirror URLs (the tree root)
        self.timeout = timeout
        self._client: httpx.Client | None = None

    # -- public -----------------------------------------------------------------------
    def fetch(self, source: Source) -> Path:
        """The verified file for ``source`` (in the cache), or :class:`FetchError`."""
        path, attempts = self._fetch(source)
        if path is None:
            raise FetchError(_failure_text(source, attempts), hint=self._hint())
        return path

    def fetch_package(self, package: Package) -> dict[str, Path]:
        """Every source of ``package``; one error naming all the sources that failed."""
        found: dict[str, Path] = {}
        failures: list[str] = []
        for source in package.sources:
            path, attempts = self._fetch(source)
            if path is None:
                failures.append(_failure_text(source, attempts))
            else:
                found[source.id] = path
        if failures:
            head = (f"{len(failures)} of {len(package.sources)} sources of {package.name} "
                    "could not be fetched and verified:\n")
            raise FetchError(head + "\n".join(failures), hint=self._hint())
        return found

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one source -------------------------------------------------------------------
    def _fetch(self, source: Source) -> tuple[Path | None, list[Attempt]]:
        attempts: list[Attempt] = []
        with self.cache.locked(source.hash):
            hit = self.cache.lookup(source.hash)
            if hit is not None:
                return hit, attempts
            for directory in self.mirrors:
                candidate = directory / source.file
                if not _is_file(candidate):
                    attempts.append(Attempt(str(candidate), "not found"))
                    continue
                path = self._try(source, attempts, str(candidate),
                                 partial(self.cache.store_copy, candidate))
                if path is not None:
                    return path, attempts
            for url in source.mirrors:
                local = self._local_path(url)
                if local is not None:
                    if not _is_file(local):
                        attempts.append(Attempt(url, f"no such file {local}"))
                        continue
                    path = self._try(source, attempts, url,
                                     partial(self.cache.store_copy, local))
                elif self.offline:
                    attempts.append(Attempt(url, "skipped (--offline)"))
                    continue
                else:
                    path = self._try(source, attempts, url,
                                     partial(self._download, url, label=source.file))
                if path is not None:
                    return path, attempts
        return None, attempts

    def _try(self, source: Source, attempts: list[Attempt], where: str,
             produce: Callable[[Path], None]) -> Path | None:
        with self.cache.incoming() as tmp:
            try:
                produce(tmp)
            except _Unavailable as e:
                attempts.append(Attempt(where, str(e)))
                return None
            actual = file_sha256(tmp)
            if actual != source.hash:
                size = tmp.stat().st_size
                why = (f"sha256 mismatch for {source.file}: expected {source.hash}, "
                       f"got {actual} ({size} bytes)")
                attempts.append(Attempt(where, why))
                err.print(f"[yellow]warning:[/] {where}: {why}; trying the next mirror",
                          markup=True, highlight=False)
                return None
            return self.cache.commit(tmp, source.hash)

    def _local_path(self, url: str) -> Path | None:
        if not url.startswith("file:"):
            return None
        parsed = urlparse(url)
        if url.startswith("file://"):
            return Path(unquote(parsed.path))
        relative = Path(unquote(url[len("file:"):]))
        if relative.is_absolute():
            return relative
        return (self.base_dir or Path.cwd()) / relative

    def _download(self, url: str, tmp: Path, *, label: str) -> None:
        import httpx  # deferred: only downloads need it, and it is slow to import

        if self._client is None:
            self._client = httpx.Client(follow_redirects=True, timeout=self.timeout,
                                        headers={"User-Agent": f"rootseed/{__version__}"})
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _Unavailable(f"HTTP {response.status_code}")
                total = int(response.headers.get("Content-Length", 0)) or None
                with tmp.open("wb") as f, _progress(self.progress) as bar:
                    task = bar.add_task(label, total=total)
                    for chunk in response.iter_bytes(CHUNK):
                        f.write(chunk)
                        bar.advance(task, len(chunk))
                if total is not None and tmp.stat().st_size != total:
                    raise _Unavailable(f"truncated: got {tmp.stat().st_size} of {total} bytes")
        except httpx.HTTPError as e:
            raise _Unavailable(_describe_http_error(e)) from e

    def _hint(self) -> str:
        if self.offline:
            return ("put the files in a directory and pass --mirror DIR, or run without "
                    "--offline to download them")
        return ("check the network, or put the files (named as listed) in a directory and "
                "pass --mirror DIR")


class _Unavailable(Exception):
    """A mirror that could not deliver (not found, HTTP error, dead host, truncated)."""


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=err, transient=True,
                    disable=not (enabled and err.is_terminal))


def _describe_http_error(e: httpx.HTTPError) -> str:
    import httpx

    if isinstance(e, httpx.ConnectError):
        return f"cannot connect: {e}"
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    if isinstance(e, httpx.RemoteProtocolError):
        return f"connection broke off (truncated download): {e}"
    return f"{type(e).__name__}: {e}"


def _failure_text(source: Source, attempts: list[Attempt]) -> str:
    lines = [f"  {source.file} (source {source.id!r}, sha256 {source.hash}):"]
    lines += [f"    - {a.where}: {a.why}" for a in attempts] or ["    - no mirrors to try"]
    return "\n".join(lines)


def _is_file(path: Path) -> bool:
    """Like Path.is_file, but False (not an OSError) for a name the file system refuses
    (a ``file`` or mirror path from a hostile package.toml: too long, ...)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
