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
from kinds import cli_error
from rootseed.errors import ErrorKind

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
    proc = tree.build("test-long", extra=("--json",))  # asserts: no traceback, no exit 70
    error = cli_error(proc, ErrorKind.STEP, exit_code=1, package="test-long", line=2)
    assert "File name too long" in error["message"]  # words: the system's reason, for people
    assert not (tree.out / "test-long").exists()
    canaries.assert_unchanged()
