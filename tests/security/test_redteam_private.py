"""Red-team: cache and out directories that cannot be created end in a clear error.

``fsutil.private_dir`` let ``mkdir``'s OSError through: ``--out FILE/sub`` (a parent that
is a file) or a cache dir on a file system that refuses directories ended the build in
"internal error" (exit 70), after all the work was done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import HostileTree
from kinds import raises_kind
from rootseed.errors import ErrorKind
from rootseed.fsutil import private_dir


def test_private_dir_under_a_file_is_a_rootseed_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with raises_kind(ErrorKind.USAGE, file=str(tmp_path / "file" / "sub")):
        private_dir(tmp_path / "file" / "sub", "output directory")


@pytest.mark.parametrize("option", ["--out", "--cache-dir"])
def test_build_with_an_impossible_directory_fails_clearly(tmp_path: Path,
                                                          option: str) -> None:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    (tmp_path / "file").write_text("x")
    proc = tree.build("test-plain", extra=(option, str(tmp_path / "file" / "sub")))
    assert proc.returncode in (1, 2), proc.stderr  # no traceback, no exit 70 (checked)
    assert (tmp_path / "file").read_text() == "x"
