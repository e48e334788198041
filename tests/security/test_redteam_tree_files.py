"""Red-team: hostile package.toml / rootseed.toml contents end in clear errors.

* ``x = [[[[…]]]]`` 5000 deep: tomllib raises RecursionError (not TOMLDecodeError):
  "internal error" (exit 70) while loading the tree.
* rootseed.toml with invalid UTF-8, or ``tree = 1``: UnicodeDecodeError / AttributeError
  (exit 70).
* a source ``file`` of 400 characters: the mirror lookup's ``Path.is_file`` raised
  OSError(ENAMETOOLONG) (exit 70) instead of "not found".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import HostileTree
from kinds import cli_error
from rootseed.errors import ErrorKind

BASE = '[package]\nname = "p"\nversion = "1.0"\ndescription = "a"\nlicense = "MIT"\n'


def _tree(tmp_path: Path, toml: str) -> HostileTree:
    tree = HostileTree(tmp_path)
    pkg = tree.package("p", "FROM scratch\nCOPY f /f\n", files={"f": b"x"})
    (pkg / "package.toml").write_text(toml)
    return tree


def test_deeply_nested_package_toml(tmp_path: Path) -> None:
    tree = _tree(tmp_path, BASE + "x = " + "[" * 5000 + "]" * 5000 + "\n")
    proc = tree.build("test-p", extra=("--json",))  # asserts: no traceback, no exit 70
    cli_error(proc, ErrorKind.TREE, exit_code=1, package="test-p", problem="bad-toml",
              file=str(tree.root / "test" / "p" / "package.toml"))


@pytest.mark.parametrize("config", [b'[tree]\nnamespace = "\xff"\n', b"tree = 1\n",
                                    b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"],
                         ids=["not-utf8", "tree-not-a-table", "deep"])
def test_hostile_rootseed_toml(tmp_path: Path, config: bytes) -> None:
    tree = _tree(tmp_path, BASE)
    (tree.root / "rootseed.toml").write_bytes(config)
    proc = tree.build("test-p", extra=("--json",))
    error = cli_error(proc, ErrorKind.TREE, exit_code=1)
    assert str(tree.root / "rootseed.toml") in error["message"]  # words: names the file


def test_over_long_source_file_name_is_not_found(tmp_path: Path) -> None:
    tree = _tree(tmp_path, BASE + '[sources.s]\nhash = "' + "0" * 64 + '"\n'
                 'mirrors = ["https://invalid.example/{file}", "file:///nowhere/{file}"]\n'
                 'file = "' + "a" * 400 + '"\n')
    proc = tree.build("test-p", extra=("--json",))
    cli_error(proc, ErrorKind.FETCH, exit_code=1)
