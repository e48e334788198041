"""``rootseed cache du`` and ``rootseed cache prune``: what the cache holds, and removing
what was not used lately.

Entries record their last use by the modification time of their record file
(``action.json``, ``stage.json``, ``complete.json``; the file itself for sources), which
the builder touches on every hit. Pruning removes whole entries only, each by an atomic
rename out of the way first, so a reader never sees half an entry; a stage entry whose
layers were pruned goes with them. It refuses to run while a build uses the cache.
Nothing is followed through a link (#20): an area that is a link is refused, an entry
that is a link is removed as a link, and removals work through directory descriptors.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rootseed import safefs
from rootseed.engine.refs import CacheLayout, LayerRef
from rootseed.errors import RootseedError
from rootseed.filelocks import FileLock, Timeout

#: area → (directory under the cache, record file inside an entry, or "" for plain files)
AREAS: dict[str, tuple[str, str]] = {
    "actions": ("actions", "action.json"),
    "stages": ("builds", "stage.json"),
    "images": ("images", "complete.json"),
    "sources": ("sources/sha256", ""),
    "logs": ("logs", ""),
    # memos of checks that passed (engine/statements.py); plain files, touched when used
    "statements": ("statements", ""),
    # images taken whole from a shared cache (engine/shared.py)
    "shared": ("shared", "shared.json"),
}
#: One-file memos at the top of the cache, removed by age as entries are (touched when
#: used): the overlay probe's (engine/lazyoverlay.py). Each is an entry of area "memos".
MEMOS = ("overlay-probe.json",)


@dataclass
class AreaUsage:
    entries: int = 0
    bytes: int = 0


@dataclass
class Usage:
    areas: dict[str, AreaUsage] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(a.bytes for a in self.areas.values())


def _size(path: Path) -> int:
    """Bytes allocated below ``path`` (hardlinked files counted once per call)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_blocks * 512
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _entries(cache: Path, area: str) -> Iterator[Path]:
    directory = cache / AREAS[area][0]
    try:
        os.close(safefs.open_dir(cache, directory))  # a link in its place is refused
    except FileNotFoundError:
        return
    except safefs.UnsafePath as e:
        e.hint = f"{e.hint}; rootseed did not touch what it leads to"
        raise e.at(f"cache area {AREAS[area][0]}/") from None
    for entry in sorted(directory.iterdir()):
        if not entry.name.startswith("."):
            yield entry


def _memos(cache: Path) -> list[Path]:
    """The :data:`MEMOS` this cache holds (as regular files or not: a link or a
    directory planted in a memo's place is removed as the memo would be, never followed)."""
    found = []
    for name in MEMOS:
        try:
            os.lstat(cache / name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found.append(cache / name)
    return found


def usage(cache: Path) -> Usage:
    result = Usage()
    for area in AREAS:
        found = AreaUsage()
        for entry in _entries(cache, area):
            found.entries += 1
            found.bytes += _size(entry)
        result.areas[area] = found
    memos = _memos(cache)
    result.areas["memos"] = AreaUsage(len(memos), sum(_size(m) for m in memos))
    return result


def _last_use(entry: Path, record: str) -> float:
    try:
        return os.lstat(entry / record if record else entry).st_mtime
    except FileNotFoundError:
        return 0.0  # no record: an unfinished or foreign entry


def _busy(cache: Path) -> bool:
    work = cache / "work"
    if not safefs.is_dir(work):
        return False
    for lockfile in work.glob("*.lock"):
        try:
            with FileLock(lockfile, timeout=0, root=cache):
                pass
        except Timeout:
            return True
    return False


@dataclass
class Pruned:
    removed: dict[str, int] = field(default_factory=dict)  # area → entries
    bytes: int = 0


def _remove(cache: Path, entry: Path) -> int:
    size = _size(entry)
    safefs.remove(cache, entry)  # renamed aside first: never half an entry
    return size


def prune(cache: Path, keep_days: float, *, now: float | None = None) -> Pruned:
    """Remove every entry not used within ``keep_days`` (0: everything)."""
    if keep_days < 0:
        raise RootseedError("--keep-days must be 0 or more")
    if _busy(cache):
        raise RootseedError(f"a build is using the cache {cache}",
                            hint="prune when no rootseed build runs")
    cutoff = (now if now is not None else time.time()) - keep_days * 86400
    result = Pruned()
    layout = CacheLayout(cache)
    gone: set[LayerRef] = set()  # the layers removed
    for memo in _memos(cache):
        if _last_use(memo, "") < cutoff:
            result.bytes += _remove(cache, memo)
            result.removed["memos"] = result.removed.get("memos", 0) + 1
    for area in ("actions", "images", "sources", "logs", "statements", "shared"):
        record = AREAS[area][1]
        for entry in list(_entries(cache, area)):
            if _last_use(entry, record) >= cutoff:
                continue
            result.bytes += _remove(cache, entry)
            result.removed[area] = result.removed.get(area, 0) + 1
            ref = (layout.action_ref(entry.name) if area == "actions"
                   else LayerRef.parse(f"image:{entry.name}") if area == "images" else None)
            if ref is not None:
                gone.add(ref)
    for entry in list(_entries(cache, "stages")):
        if _last_use(entry, "stage.json") >= cutoff and not _uses(cache, entry, gone):
            continue
        result.bytes += _remove(cache, entry)
        result.removed["stages"] = result.removed.get("stages", 0) + 1
    return result


def _uses(cache: Path, entry: Path, refs: set[LayerRef]) -> bool:
    if not refs:
        return False
    try:
        state = safefs.read_json(cache, entry / "stage.json", 4 << 20)
        layers = state["snapshot"]["layers"]
    except (OSError, ValueError, KeyError, TypeError, safefs.UnsafePath):
        return False
    return any(isinstance(x, dict) and LayerRef.parse(x.get("ref")) in refs for x in layers)


def touch(record: Path) -> None:
    """Mark an entry as used now (best effort: a read-only cache still works)."""
    with contextlib.suppress(OSError, NotImplementedError):
        os.utime(record, follow_symlinks=False)  # a planted link: never its target
