"""``rootseed cache du`` / ``prune``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rootseed.cli import main
from rootseed.engine.maintenance import prune, usage


def _entry(cache: Path, area: str, name: str, record: str, age_days: float) -> Path:
    entry = cache / area / name
    entry.mkdir(parents=True)
    (entry / "payload").write_bytes(b"x" * 5000)
    stamp = time.time() - age_days * 86400
    if record:
        (entry / record).write_text("{}")
        os.utime(entry / record, (stamp, stamp))
    return entry


def test_du_and_prune_by_age(tmp_path: Path, capsys: object) -> None:
    cache = tmp_path / "cache"
    old = _entry(cache, "actions", "a" * 64, "action.json", 30)
    new = _entry(cache, "actions", "b" * 64, "action.json", 1)
    stage = cache / "builds" / ("c" * 64)
    stage.mkdir(parents=True)
    (stage / "stage.json").write_text(json.dumps(
        {"snapshot": {"layers": [{"ref": f"action:{'a' * 64}", "digest": "x"}]}}))
    found = usage(cache)
    assert found.areas["actions"].entries == 2 and found.areas["stages"].entries == 1
    assert found.total > 10000
    result = prune(cache, keep_days=7)
    assert not old.exists() and new.exists()
    assert not stage.exists()  # it used a pruned layer
    assert result.removed == {"actions": 1, "stages": 1} and result.bytes > 0
    assert prune(cache, keep_days=0).removed == {"actions": 1}
    assert usage(cache).total == 0


def test_cache_cli_json(tmp_path: Path, capsys: object) -> None:
    cache = tmp_path / "cache"
    _entry(cache, "actions", "a" * 64, "action.json", 30)
    for args in (["cache", "du", "--json"], ["cache", "prune", "--keep-days", "7", "--json"]):
        try:
            main([*args, "--cache-dir", str(cache)])
        except SystemExit as e:
            assert e.code in (0, None)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    docs = [json.loads(d) for d in out.replace("}\n{", "}\x00{").split("\x00")]
    assert docs[0]["areas"]["actions"]["entries"] == 1
    assert docs[1]["removed"] == {"actions": 1}


def _memo(path: Path, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"valid": true}')
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_prune_removes_the_memos_of_checks_by_age(tmp_path: Path) -> None:
    """The provenance-validation memos (statements/) and the overlay probe's memo are
    cache entries too: counted by du, removed by prune when unused for --keep-days."""
    cache = tmp_path / "cache"
    old = _memo(cache / "statements" / f"{'a' * 64}.json", 30)
    new = _memo(cache / "statements" / f"{'b' * 64}.json", 1)
    probe = _memo(cache / "overlay-probe.json", 30)
    found = usage(cache)
    assert found.areas["statements"].entries == 2 and found.areas["memos"].entries == 1
    result = prune(cache, keep_days=7)
    assert result.removed == {"statements": 1, "memos": 1}
    assert not old.exists() and new.exists() and not probe.exists()
    _memo(cache / "overlay-probe.json", 1)
    assert prune(cache, keep_days=0).removed == {"statements": 1, "memos": 1}
    assert usage(cache).total == 0 and not (cache / "overlay-probe.json").exists()
