"""Remember a passing crosscheck of one exact build, so a warm ``bootstrap`` stays fast.

The key is everything the replay depends on: the build record (Containerfile digest,
sources, build args, parents, manifest digest), rootseed's version (the Python tools) and
the caller's extra (the DDC compilers and their versions).
Only passing results are kept; a failure is always replayed. ``rootseed crosscheck``
itself never reads this: it always replays. A memo is believed only with a valid MAC
under the seal key (:mod:`rootseed.engine.records`): whoever can write the cache cannot
make a crosscheck look passed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from rootseed import __version__
from rootseed.console import canonical_json
from rootseed.engine.api import Kind, Records
from rootseed.provenance.record import BuildRecord

RECALLED = " (recalled: this exact build passed an earlier crosscheck; " \
           "`rootseed crosscheck` repeats it)"


def _path(cache_dir: Path, record: BuildRecord, extra: Any = None) -> Path:
    key = hashlib.sha256(canonical_json({
        "crosscheck": 1, "rootseed": __version__, "record": dataclasses.asdict(record),
        **({"extra": extra} if extra is not None else {}),
    }).encode()).hexdigest()
    return cache_dir / "crosscheck" / f"{key}.json"


def recall(cache_dir: Path, record: BuildRecord, extra: Any = None
           ) -> list[dict[str, Any]] | None:
    """``extra``: anything else the result depends on (e.g. the DDC compilers found)."""
    path = _path(cache_dir, record, extra)
    memo = Records().read(cache_dir, path, Kind.CROSSCHECK, path.stem).record
    lines = None if memo is None else memo.get("lines")
    if not isinstance(lines, list) or not all(
            isinstance(x, dict) and x.get("identical") is True for x in lines):
        return None
    return [{**x, "summary": str(x.get("summary", "")) + RECALLED, "recalled": True}
            for x in lines]


def remember(cache_dir: Path, record: BuildRecord, lines: list[dict[str, Any]],
             extra: Any = None) -> None:
    if not lines or not all(x.get("identical") is True for x in lines):
        return
    path = _path(cache_dir, record, extra)
    Records().write(cache_dir, path, Kind.CROSSCHECK, path.stem, {"lines": lines})


def _report_path(cache_dir: Path, record: BuildRecord, extra: Any = None) -> Path:
    return _path(cache_dir, record, extra).with_suffix(".report.json")


def remember_report(cache_dir: Path, record: BuildRecord, data: bytes,
                    extra: Any = None) -> None:
    """Keep the crosscheck.json written for this exact build, so a recalled crosscheck can
    put it back beside an image written anew (``report`` draws the chain from it). Kept
    as a MAC'd record, as every cache record is: the cache alone cannot vouch for it."""
    path = _report_path(cache_dir, record, extra)
    Records().write(cache_dir, path, Kind.CROSSCHECK, path.name,
                    {"report": data.decode("utf-8")})


def recall_report(cache_dir: Path, record: BuildRecord, extra: Any = None) -> bytes | None:
    path = _report_path(cache_dir, record, extra)
    memo = Records().read(cache_dir, path, Kind.CROSSCHECK, path.name).record
    report = None if memo is None else memo.get("report")
    return report.encode("utf-8") if isinstance(report, str) else None
