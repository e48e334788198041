"""A link planted in place of an action's entry (``<cache>/actions/<key>``, in the cache,
which is hostile) is moved aside as a link when the action's result is published: never
followed, and never a reason the step cannot be cached.

A link whose target does not exist (or a link to itself) made ``commit`` fail with
``Not a directory`` at every build of that step (the rename of the new entry onto the
link), as no look found anything to move aside.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import Canaries
from rootseed.engine.refs import CacheLayout
from rootseed.engine.snapshots import ActionCache, Verifier

KEY = "ab" * 32


@pytest.mark.parametrize("target", ["missing", "itself", "directory", "file"])
def test_a_link_in_place_of_an_action_entry_is_replaced_not_followed(
        tmp_path: Path, target: str) -> None:
    host = Canaries(tmp_path)
    (tmp_path / "cache").mkdir(mode=0o700)
    cache = ActionCache(CacheLayout(tmp_path / "cache"), Verifier())
    final = tmp_path / "cache" / "actions" / KEY
    final.symlink_to({"missing": host.dir / "made-by-commit", "itself": final,
                      "directory": host.subdir, "file": host.public}[target])
    tmp = cache.new_dir()
    (tmp / "layer").mkdir()
    (tmp / "layer" / "file").write_text("built\n")
    result = cache.commit(tmp, KEY)
    assert not final.is_symlink() and final.is_dir()
    assert (result.layer.path / "file").read_text() == "built\n"
    assert cache.lookup(KEY) is not None
    assert not (host.dir / "made-by-commit").exists()
    host.assert_unchanged()
