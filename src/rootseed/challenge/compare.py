"""Compare two unpacked image filesystems file by file (what differs, not just that)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from rootseed.fsutil import file_sha256


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "symlink", "other"
    mode: int
    size: int
    sha256: str | None  # files only
    target: str | None  # symlinks only


@dataclass(frozen=True)
class Difference:
    path: str
    what: str  # "content", "mode", "type", "symlink target", "only in recorded", "only in rebuilt"
    recorded: Entry | None
    rebuilt: Entry | None

    def as_dict(self) -> dict[str, object]:
        def side(e: Entry | None) -> dict[str, object] | None:
            if e is None:
                return None
            return {"type": e.kind, "mode": oct(e.mode), "size": e.size, "sha256": e.sha256,
                    "target": e.target}
        return {"path": self.path, "what": self.what, "recorded": side(self.recorded),
                "rebuilt": side(self.rebuilt)}


def _entry(path: Path) -> Entry:
    st = path.lstat()
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return Entry("symlink", mode, 0, None, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry("dir", mode, 0, None, None)
    if stat.S_ISREG(st.st_mode):
        return Entry("file", mode, st.st_size, file_sha256(path), None)
    return Entry("other", mode, 0, None, None)


def inventory(root: Path) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            entries[full.relative_to(root).as_posix()] = _entry(full)
    return entries


def compare_trees(recorded: Path, rebuilt: Path) -> list[Difference]:
    """Every path whose type, mode, content or link target differs, sorted by path."""
    a, b = inventory(recorded), inventory(rebuilt)
    diffs: list[Difference] = []
    for path in sorted(a.keys() | b.keys()):
        ea, eb = a.get(path), b.get(path)
        if ea is None:
            diffs.append(Difference(path, "only in rebuilt", None, eb))
        elif eb is None:
            diffs.append(Difference(path, "only in recorded", ea, None))
        elif ea.kind != eb.kind:
            diffs.append(Difference(path, "type", ea, eb))
        elif ea.sha256 != eb.sha256 or ea.size != eb.size:
            diffs.append(Difference(path, "content", ea, eb))
        elif ea.target != eb.target:
            diffs.append(Difference(path, "symlink target", ea, eb))
        elif ea.mode != eb.mode:
            diffs.append(Difference(path, "mode", ea, eb))
    return diffs
