"""Fetch pinned sources: local mirror dirs first, then URL mirrors; sha256 before use.

Each attempt that fails (wrong hash, 404, dead host, truncated body) moves on to the next
mirror; when every mirror failed, one error lists them all with the reason. Nothing
unverified ever gets a name in the cache.

package.toml is hostile, and its ``file:`` mirrors name files on this machine. So, for a
tree's packages (``base_dir`` set), a ``file:`` mirror must resolve (symlinks followed)
to a file inside the tree: ``file:///etc/shadow``, ``file:../../x`` or a symlink in the
tree pointing out of it are refused before anything is read (files elsewhere are given
with ``--mirror DIR``, the user's own choice). Every local file is read only if it is a
regular file, and never beyond its size (see :mod:`rootseed.fetch.local`); every source,
local or downloaded, is refused above :data:`MAX_SOURCE_BYTES`. A local file's sha256 is
never shown (see :meth:`Fetcher._try`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from rootseed import __version__
from rootseed.console import err
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fetch.cache import SourceCache
from rootseed.fetch.local import LocalUnavailable, copy_local
from rootseed.fsutil import CHUNK, file_sha256
from rootseed.tree import Package, Source

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress

__all__ = ["MAX_SOURCE_BYTES", "FetchError", "Fetcher"]

#: The most bytes one source may have (4 GiB), local or downloaded: far above any source
#: StageX pins (the largest are a few hundred MiB), and a stop for a hostile mirror or a
#: ``file:`` URL that never ends (``/proc/kcore`` claims 128 TiB).
MAX_SOURCE_BYTES = 4 << 30


class FetchError(RootseedError):
    """No mirror produced the pinned bytes of one or more sources."""

    kind = ErrorKind.FETCH


@dataclass(frozen=True)
class Attempt:
    where: str
    why: str


class Fetcher:
    def __init__(self, cache_dir: Path, mirrors: Sequence[Path] = (), *, offline: bool = False,
                 progress: bool = True, base_dir: Path | None = None, timeout: float = 30.0,
                 max_bytes: int = MAX_SOURCE_BYTES):
        self.cache = SourceCache(cache_dir)
        self.mirrors = tuple(mirrors)
        self.offline = offline
        self.progress = progress
        # The tree root: relative `file:` URLs start there, and every `file:` URL must stay
        # in it. None (library use without a tree): relative to the working directory, and
        # any regular file may be named.
        self.base_dir = base_dir
        self.timeout = timeout
        self.max_bytes = max_bytes
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
                path = self._try(source, attempts, str(candidate),
                                 partial(self._copy_local, candidate), local=True)
                if path is not None:
                    return path, attempts
            for url in source.mirrors:
                if url.startswith("file:"):
                    try:
                        local = self._local_path(url)
                    except _Unavailable as e:
                        attempts.append(Attempt(url, str(e)))
                        continue
                    path = self._try(source, attempts, url,
                                     partial(self._copy_local, local), local=True)
                elif self.offline:
                    attempts.append(Attempt(url, "skipped (--offline)"))
                    continue
                else:
                    if self.progress:  # a slow mirror must not look like a hang
                        err.print(f"fetching {source.file} from {url}", markup=False,
                                  highlight=False, soft_wrap=True)
                    path = self._try(source, attempts, url,
                                     partial(self._download, url, label=source.file))
                if path is not None:
                    return path, attempts
        return None, attempts

    def _try(self, source: Source, attempts: list[Attempt], where: str,
             produce: Callable[[Path], None], *, local: bool = False) -> Path | None:
        with self.cache.incoming() as tmp:
            try:
                produce(tmp)
            except _Unavailable as e:
                attempts.append(Attempt(where, str(e)))
                if self.progress and not local:
                    err.print(f"  {where}: {e}", markup=False, highlight=False,
                              soft_wrap=True)
                return None
            actual = file_sha256(tmp)
            if actual != source.hash:
                # A local file's own hash and size are never shown: package.toml chooses
                # which file is read, and whoever wrote it may read this message (a CI
                # log), so "got <sha256>" would hand out the hash of any file on this
                # machine (and confirm guesses of its content). A download's hash is shown:
                # those bytes came from the network, and the hash helps to report a bad
                # mirror.
                why = (f"sha256 mismatch for {source.file}: "
                       + (f"the file does not match the pinned sha256 {source.hash}" if local
                          else f"expected {source.hash}, got {actual} "
                               f"({tmp.stat().st_size} bytes)"))
                attempts.append(Attempt(where, why))
                # escaped: the URL is package.toml's text ("[/x]" would be a markup error)
                from rich.markup import escape

                err.print(f"[yellow]warning:[/] {escape(where)}: {escape(why)}; trying the "
                          "next mirror", markup=True, highlight=False)
                return None
            return self.cache.commit(tmp, source.hash)

    def _local_path(self, url: str) -> Path:
        """The file a ``file:`` URL names; with a tree, only one inside it."""
        if url.startswith("file://"):
            path = Path(unquote(urlparse(url).path))
        else:
            path = Path(unquote(url[len("file:"):]))
            if not path.is_absolute():
                path = (self.base_dir or Path.cwd()) / path
        if self.base_dir is None:
            return path
        try:
            real, root = Path(os.path.realpath(path)), Path(os.path.realpath(self.base_dir))
        except (OSError, ValueError) as e:  # a loop of symlinks, an embedded NUL
            raise _Unavailable(f"not a usable path: {e}") from None
        if not real.is_relative_to(root):
            # no host path in the message: only that it is outside the tree
            raise _Unavailable("refused: a file: mirror must name a file inside the tree "
                               "(this one is outside it, or a symlink leads out of it); "
                               "give files from elsewhere with --mirror DIR")
        return real

    def _copy_local(self, path: Path, tmp: Path) -> None:
        try:
            copy_local(path, tmp, self.max_bytes)
        except LocalUnavailable as e:
            raise _Unavailable(str(e)) from None

    def _download(self, url: str, tmp: Path, *, label: str) -> None:
        import httpx  # deferred: only downloads need it, and it is slow to import

        if self._client is None:
            self._client = httpx.Client(follow_redirects=True, timeout=self.timeout,
                                        headers={"User-Agent": f"rootseed/{__version__}"})
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _Unavailable(f"HTTP {response.status_code}")
                total = _content_length(response.headers.get("Content-Length"))
                if total is not None and total > self.max_bytes:
                    raise _Unavailable(f"larger ({total} bytes) than the {self.max_bytes} "
                                       "bytes a source may have")
                got = 0
                with tmp.open("wb") as f, _progress(self.progress) as bar:
                    task = bar.add_task(label, total=total)
                    for chunk in response.iter_bytes(CHUNK):
                        got += len(chunk)
                        if got > self.max_bytes:
                            raise _Unavailable(f"more than the {self.max_bytes} bytes a "
                                               "source may have")
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
    # imported here: only a download shows a bar (rich.progress costs every start-up)
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=err, transient=True,
                    disable=not (enabled and err.is_terminal))


def _content_length(value: str | None) -> int | None:
    try:
        n = int(value or 0)
    except ValueError:
        return None
    return n if n > 0 else None


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

