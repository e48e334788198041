from __future__ import annotations

import os
from pathlib import Path

from rootseed.challenge.compare import compare_trees


def test_compare_names_every_kind_of_difference(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "bin").mkdir(parents=True)
        (root / "same").write_bytes(b"x")
    (a / "bin" / "date").write_bytes(b"Mon")
    (b / "bin" / "date").write_bytes(b"Tuesday")
    (a / "mode").write_bytes(b"m")
    (b / "mode").write_bytes(b"m")
    os.chmod(a / "mode", 0o644)
    os.chmod(b / "mode", 0o755)
    (a / "only-a").write_bytes(b"")
    (b / "only-b").write_bytes(b"")
    os.symlink("one", a / "link")
    os.symlink("two", b / "link")
    (a / "kind").mkdir()
    (b / "kind").write_bytes(b"")
    diffs = {d.path: d.what for d in compare_trees(a, b)}
    assert diffs == {"bin/date": "content", "mode": "mode", "only-a": "only in recorded",
                     "only-b": "only in rebuilt", "link": "symlink target", "kind": "type"}
    date = next(d for d in compare_trees(a, b) if d.path == "bin/date")
    assert date.recorded is not None and date.rebuilt is not None
    assert (date.recorded.size, date.rebuilt.size) == (3, 7)
    assert date.recorded.sha256 != date.rebuilt.sha256


def test_identical_trees(tmp_path: Path) -> None:
    for root in (tmp_path / "a", tmp_path / "b"):
        (root / "d").mkdir(parents=True)
        (root / "d" / "f").write_bytes(b"same")
    assert compare_trees(tmp_path / "a", tmp_path / "b") == []
