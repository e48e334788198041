"""Publishing an action's result when another publisher got there first.

Two stages of one build can run the same action at once (the same step over the same
parent: StageX-style trees have stages that each begin ``WORKDIR /stage0/x86`` on one
parent), and two builds can share a cache. Whoever publishes second must find the entry
there and keep it, not fail with ``Directory not empty``: a real remote stage0 build
failed so (``os.replace`` of the new entry onto the one published a moment before).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rootseed.engine import snapshots
from rootseed.engine.refs import CacheLayout
from rootseed.engine.snapshots import ActionCache, Verifier

KEY = "ab" * 32


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()


def _result(cache: ActionCache, text: str) -> Path:
    tmp = cache.new_dir()
    (tmp / "layer").mkdir()
    (tmp / "layer" / "file").write_text(text)
    return tmp


def test_an_entry_published_by_another_process_meanwhile_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other publisher (another process: no lock of ours holds it back) renames its
    entry into place between our look and our rename."""
    cache = ActionCache(CacheLayout(tmp_path / "cache"), Verifier())
    theirs = ActionCache(CacheLayout(tmp_path / "cache"), Verifier())  # another process's
    mine, other = _result(cache, "same"), _result(theirs, "same")
    final = tmp_path / "cache" / "actions" / KEY
    real_exists = Path.exists
    raced: list[snapshots.ActionResult] = []
    calls = []

    def exists(path: Path) -> bool:
        there = real_exists(path)
        if path == final and not calls and not there:
            calls.append(path)
            raced.append(theirs.commit(other, KEY))  # lands right after our look
        return there

    monkeypatch.setattr(Path, "exists", exists)
    result = cache.commit(mine, KEY)
    assert raced and result.layer.digest == raced[0].layer.digest
    assert (result.layer.path / "file").read_text() == "same"
    assert not mine.exists()  # ours was dropped, nothing half-written left
    assert [p.name for p in (tmp_path / "cache" / "actions").iterdir()] == [KEY]

