"""Red-team: Containerfile paths the file system refuses end in a clear error.

A WORKDIR or COPY/ADD destination with a component longer than NAME_MAX (255) made
``lstat``/``mkdir`` raise OSError(ENAMETOOLONG) inside the stage runner, which nothing
caught: "internal error" (exit 70). Every such OSError of WORKDIR/COPY/ADD is now the
instruction's error, naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import Canaries, HostileTree

LONG = "a" * 300

CASES = {
    "workdir": f"FROM scratch\nWORKDIR /{LONG}\n",
    "copy-dest": f"FROM scratch\nCOPY f /{LONG}\n",
    "copy-dest-dir": f"FROM scratch\nCOPY f /{LONG}/x/\n",
    "add-dest": f"FROM scratch\nADD f /x/{LONG}/\n",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_over_long_path_is_the_instructions_error(tmp_path: Path, case: str) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("long", CASES[case], files={"f": b"data\n"})
    proc = tree.build("test-long")  # asserts: no traceback, no exit 70
    assert proc.returncode == 1, proc.stderr
    assert "Containerfile:2:" in proc.stderr and "File name too long" in proc.stderr
    assert not (tree.out / "test-long").exists()
    canaries.assert_unchanged()
