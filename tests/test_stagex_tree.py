"""rootseed reads a real StageX checkout as StageX's own reader does.

Opt-in: ``ROOTSEED_STAGEX_TREE=<checkout>`` (a StageX checkout: ``packages/``, ``src/``).
The test runs StageX's own ``src/targets.py`` on it (in a subprocess, writing nothing
into the checkout) and compares, for every package and subpackage it derives: the name,
the version tag, the ``--target``, the build args and the dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rootseed import shipped
from rootseed.tree import ProblemKind, Tree

CHECKOUT = os.environ.get("ROOTSEED_STAGEX_TREE")

pytestmark = [pytest.mark.stagex_checkout, pytest.mark.skipif(
    not CHECKOUT, reason="set ROOTSEED_STAGEX_TREE=<StageX checkout> to compare with StageX's "
    "own src/targets.py")]

# Imports StageX's targets.py from the checkout and prints what it derives as JSON.
# ``git ls-files`` (Makefile prerequisites only) is replaced: the checkout need not be a
# git work tree. No bytecode is written into the checkout.
DRIVER = r"""
import contextlib, io, json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "src")
import targets
targets.check_output = lambda *a, **k: ""
with contextlib.redirect_stdout(io.StringIO()):
    generator = targets.TargetGenerator()
found = {}
for stage, packages in generator.packages.items():
    for name, p in packages.items():
        found[f"{stage}-{name}"] = {
            "version": p.version or "latest", "deps": sorted(set(p.deps)),
            "args": targets.TargetGenerator.get_build_args(p).split(" \\\n\t  ")}
json.dump(found, sys.stdout)
"""


@pytest.fixture(scope="module")
def stagex() -> dict[str, Any]:
    assert CHECKOUT is not None
    r = subprocess.run([sys.executable, "-c", DRIVER], cwd=CHECKOUT, capture_output=True,
                       text=True, check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, f"StageX's targets.py failed on {CHECKOUT}:\n{r.stderr}"
    found: dict[str, Any] = json.loads(r.stdout)
    assert found, "StageX derived no packages"
    return found


@pytest.fixture(scope="module")
def tree() -> Tree:
    assert CHECKOUT is not None
    return Tree.load(Path(CHECKOUT))


def _args(words: list[str]) -> tuple[dict[str, str], str | None]:
    args = {"SOURCE_DATE_EPOCH": "1"}
    target = None
    for word in words:
        if word.startswith("--build-arg "):
            key, _, value = word.removeprefix("--build-arg ").partition("=")
            args[key] = value
        elif word.startswith("--target "):
            target = word.removeprefix("--target ")
    return args, target


def test_same_packages_as_stagex(stagex: dict[str, Any], tree: Tree) -> None:
    assert sorted(tree.packages) == sorted(stagex)
    # StageX skips a Containerfile without package.toml: a warning here, never an error
    assert tree.errors() == ()
    assert {p.kind for p in tree.problems} <= {ProblemKind.NO_PACKAGE_TOML,
                                              ProblemKind.NO_CONTAINERFILE}


def test_same_versions_targets_build_args_and_deps(stagex: dict[str, Any], tree: Tree) -> None:
    for name, derived in sorted(stagex.items()):
        package = tree.get(name)
        args, target = _args(derived["args"])
        assert package.version == derived["version"], name
        assert package.target == target, name
        assert package.build_args() == args, name
        assert list(package.deps) == derived["deps"], name


def test_list_cli_names_every_package(stagex: dict[str, Any]) -> None:
    assert CHECKOUT is not None
    r = subprocess.run([sys.executable, "-m", "rootseed", "list", "--tree", CHECKOUT, "--json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    names = [p["name"] for p in json.loads(r.stdout)["packages"]]
    assert sorted(names) == sorted(stagex)


MIRROR = os.environ.get("ROOTSEED_MIRROR")
REPO_STAGE0 = shipped.packages() / "bootstrap" / "stage0"


@pytest.mark.mirror
@pytest.mark.skipif(not MIRROR, reason="set ROOTSEED_MIRROR=<dir with the stage0 tarballs and "
                    "hex0-seed> (and ROOTSEED_STAGEX_TREE) to build StageX's own stage0")
def test_stagex_stage0_builds_the_twenty_pinned_tools(tmp_path: Path) -> None:
    """StageX's bootstrap/stage0, unmodified (its Containerfile, its hex0-seed, kaem-minimal
    running its script), built by rootseed: the 20 tools equal the pins rootseed's own
    stage0 package records in [outputs]."""
    import hashlib
    import tomllib

    from rootseed.oci import unpack_image

    assert CHECKOUT is not None and MIRROR is not None
    r = subprocess.run([sys.executable, "-m", "rootseed", "build", "bootstrap-stage0",
                        "--tree", CHECKOUT, "--mirror", MIRROR, "--offline",
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                        "--json"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    unpack_image(tmp_path / "out" / "bootstrap-stage0", tmp_path / "rootfs")
    with (REPO_STAGE0 / "package.toml").open("rb") as f:
        pins = tomllib.load(f)["outputs"]
    assert len(pins) == 20
    built = {f"bin/{p.name}": [hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size]
             for p in (tmp_path / "rootfs" / "bin").iterdir()}
    assert built == pins
