"""Red-team: unbounded inputs stay a problem of the one package that holds them.

On main before this change, one package's input broke the whole tree (exit 70 in
``check``, ``list`` and in the build of *unrelated* packages):

* a 5,001-digit integer in a package.toml: tomllib raises a bare ValueError (int's
  4300-digit limit), which is not a TOMLDecodeError;
* ``${A:-${A:-…}}`` nested 5,000 deep: RecursionError in the expander;
* an ARG "billion laughs" (``ARG A1=$A0$A0…``, tenfold per line) in 0.5 KB expands towards
  10^11 characters (MemoryError, or the machine swaps).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import NAMESPACE, Canaries, HostileTree, rootseed
from kinds import cli_error
from rootseed.errors import ErrorKind

TOML = '[package]\nname = "{name}"\nversion = "1.0"\ndescription = "a"\nlicense = "MIT"\n'


def _laughs() -> str:
    lines = ["FROM scratch", "ARG A0=xxxxxxxxxx"]
    lines += [f"ARG A{i}=" + f"$A{i - 1}" * 10 for i in range(1, 12)]
    return "\n".join([*lines, "ENV Z=$A11", "COPY f /f", ""])


CASES = {
    "huge-integer": ("FROM scratch\nCOPY f /f\n", "x = " + "1" * 5001 + "\n",
                     "4300 digits"),
    "deep-expansion": ("FROM scratch\nARG A\nENV B=" + "${A:-" * 5000 + "x" + "}" * 5000
                       + "\nCOPY f /f\n", "", "more than 100 deep"),
    "billion-laughs": (_laughs(), "", "expands to more than"),
}


def _tree(tmp_path: Path, containerfile: str, toml_extra: str) -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.package("good", "FROM scratch\nCOPY f /f\n", files={"f": b"ok\n"})
    bad = tree.package("bad", containerfile, files={"f": b"x\n"})
    (bad / "package.toml").write_text(TOML.format(name="bad") + toml_extra)
    return tree


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_broken_package_does_not_break_the_tree(tmp_path: Path, case: str) -> None:
    containerfile, toml_extra, message = CASES[case]
    canaries = Canaries(tmp_path)
    tree = _tree(tmp_path, containerfile, toml_extra)

    check = rootseed("check", "--tree", str(tree.root), timeout=120)
    assert check.returncode == 1, check.stderr
    # words: what is tested is that people are shown the problem, bounded
    assert message in check.stdout + check.stderr
    shown = [line for line in (check.stdout + check.stderr).splitlines() if message in line]
    assert shown and all(len(line) < 1000 for line in shown), "the message is not bounded"
    assert "test/bad" in shown[0]

    listing = rootseed("list", "--tree", str(tree.root), timeout=120)
    # words: the summary for people
    assert "test-good" in listing.stdout and "1 problem makes 1 package unbuildable" in listing.stderr, listing.stderr

    build = tree.build("test-good", timeout=120)  # an unrelated package still builds
    assert build.returncode == 0, build.stderr
    assert (tree.out / "test-good" / "index.json").is_file()

    bad = tree.build("test-bad", extra=("--json",), timeout=120)
    error = cli_error(bad, ErrorKind.TREE, exit_code=1, package="test-bad")
    assert message in error["message"]  # words: as above
    assert not (tree.out / "test-bad").exists()
    canaries.assert_unchanged()
    assert NAMESPACE == "evil"
