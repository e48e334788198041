"""Red-team: a RUN step that makes directories 1,200 deep or a path of 8 kB.

On main before this change both ended in an internal error (RecursionError in the
recursive layer walk and in shutil.rmtree; ENAMETOOLONG from paths named in full) and
left the step's ``actions/.tmp-*`` work directory behind. Now the deep tree is stored
(every walk is iterative) and the over-long path is one clear error; nothing is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clirun import Result
from hostile import Canaries, HostileTree
from kinds import cli_error
from rootseed.errors import ErrorKind
from rootseed.fsutil_deep import remove_deep

DEEP = 'i=0\nwhile [ $i -lt 1200 ]; do mkdir d; cd d; i=$((i+1)); done\necho deep > f'
LONG = ('n=$(printf "%0200d" 0)\ni=0\nwhile [ $i -lt 40 ]; do mkdir $n; cd $n; '
        'i=$((i+1)); done\necho long > f')


def _build(tmp_path: Path, script: str, snapshots: str) -> tuple[HostileTree, Result]:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("deep", "FROM evil/bootstrap-base\nRUN <<EOF\n" + script + "\nEOF\n")
    proc = tree.build("test-deep", extra=("--snapshots", snapshots, "--json"), timeout=600)
    for area in ("actions", "work"):
        left = [p.name for p in (tree.cache / area).glob("*")
                if p.name.startswith(".tmp-") or (p.name.isalnum() and area == "work")]
        assert not left, f"work directories were left in {area}/: {left}"
    canaries.assert_unchanged()
    return tree, proc


def test_directories_1200_deep_are_stored(tmp_path: Path) -> None:
    try:
        tree, proc = _build(tmp_path, DEEP, "overlay")
        assert proc.returncode == 0, proc.stderr
        assert (tree.out / "test-deep" / "index.json").is_file()
    finally:  # pytest's own clean-up of old runs (shutil.rmtree) would recurse on it
        for child in list(tmp_path.iterdir()):
            remove_deep(child)


@pytest.mark.parametrize("snapshots", ["overlay", "copy"])
def test_an_8kb_path_is_one_clear_error(tmp_path: Path, snapshots: str) -> None:
    tree, proc = _build(tmp_path, LONG, snapshots)
    cli_error(proc, ErrorKind.REFUSED, exit_code=1)
    assert len(proc.stderr) < 5000
    assert not (tree.out / "test-deep").exists()
