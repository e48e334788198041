"""``rootseed challenge PKG``: a rebuild that differs is caught and the file named.

A busybox base image, and packages on top of it that write the build time, random bytes,
or a constant to ``/stamp``. Each is built through the command line, then challenged:
the time and random ones must come back "differs" (exit 2) naming ``stamp`` with both
sha256; the constant one "identical" (exit 0); one with nothing recorded exit 1.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from buildtree import base_package, write
from clirun import Result
from clirun import rootseed as run_cli
from rootseed.oci import unpack_image

NS = "ch"
BASE = """\
FROM scratch
COPY --chmod=0755 busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]
ENV PATH=/bin
"""
STAMPS = {
    "core-clock": "date +%s%N > /stamp",
    "core-noise": "head -c 32 /dev/urandom > /stamp",
    "core-steady": "echo steady > /stamp",
}

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or not Path("/usr/bin/busybox").is_file(),
    reason="needs bubblewrap (bwrap) and busybox-static (/usr/bin/busybox)")


def rootseed(*args: str, cwd: Path) -> Result:
    return run_cli(*args, cwd=cwd)


def make_tree(root: Path) -> Path:
    tree = root / "packages"
    write(tree / "rootseed.toml", f'[tree]\nnamespace = "{NS}"\n')
    base_package(tree, BASE)
    for package, command in STAMPS.items():
        stage, name = package.split("-", 1)
        write(tree / stage / name / "package.toml",
              f'[package]\nname = "{name}"\nversion = "1"\ndescription = "writes /stamp"\n'
              'license = "MIT"\n')
        write(tree / stage / name / "Containerfile",
              f"FROM {NS}/bootstrap-base\nRUN {command}\n")
    return tree


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree, built once into ``<root>/out`` (cache ``<root>/cache``); returns ``root``."""
    root = tmp_path_factory.mktemp("challenge")
    tree = make_tree(root)
    r = rootseed("build", *STAMPS, "--tree", str(tree), "--cache-dir", str(root / "cache"),
                 "--out", str(root / "out"), "--offline", "--json", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {x["package"] for x in json.loads(r.stdout)["results"]} >= set(STAMPS)
    return root


def challenge(root: Path, package: str, *extra: str) -> tuple[int, dict[str, Any]]:
    r = rootseed("challenge", package, "--tree", str(root / "packages"), "--cache-dir",
                 str(root / "cache"), "--out", str(root / "out"), "--offline", "--json", *extra,
                 cwd=root)
    data = json.loads(r.stdout)
    assert isinstance(data, dict)
    return r.returncode, data


def recorded_stamp(root: Path, package: str) -> bytes:
    dest = root / f"unpacked-{package}"
    if not dest.exists():
        unpack_image(root / "out" / package, dest)
    return (dest / "stamp").read_bytes()


@pytest.mark.parametrize("package", ["core-clock", "core-noise"])
def test_a_rebuild_that_differs_names_the_file(built: Path, package: str) -> None:
    stamp = recorded_stamp(built, package)
    if package == "core-clock":
        # busybox's date prints whole seconds (no %N support): let the clock move past the
        # recorded second so the rebuild cannot print the same value.
        seconds = int(stamp.decode().strip().removesuffix("%N")[:10])
        while time.time() < seconds + 1.05:
            time.sleep(0.05)
    code, result = challenge(built, package)
    assert code == 2, result
    assert result["verdict"] == "differs"
    index = json.loads((built / "out" / package / "index.json").read_text())
    assert result["recorded"] == index["manifests"][0]["digest"]
    assert result["rebuilt"] is not None and result["rebuilt"] != result["recorded"]
    [difference] = result["differences"]
    assert difference["path"] == "stamp" and difference["what"] == "content"
    recorded, rebuilt = difference["recorded"], difference["rebuilt"]
    assert recorded["sha256"] == hashlib.sha256(stamp).hexdigest()
    assert len(rebuilt["sha256"]) == 64 and rebuilt["sha256"] != recorded["sha256"]
    saved = json.loads((built / "out" / package / "challenge.json").read_text())
    assert saved["verdict"] == "differs" and saved["differences"] == result["differences"]


def test_a_deterministic_package_is_identical(built: Path) -> None:
    code, result = challenge(built, "core-steady")
    assert code == 0, result
    assert result["verdict"] == "identical" and result["differences"] == []
    index = json.loads((built / "out" / "core-steady" / "index.json").read_text())
    assert result["recorded"] == result["rebuilt"] == index["manifests"][0]["digest"]
    assert recorded_stamp(built, "core-steady") == b"steady\n"


def test_nothing_recorded_cannot_be_decided(built: Path, tmp_path: Path) -> None:
    empty = tmp_path / "digests"
    empty.mkdir()
    r = rootseed("challenge", "core-steady", "--tree", str(built / "packages"), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--offline",
                 "--digests-dir", str(empty), "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["verdict"] == "undecided" and result["rebuilt"] is None
    assert result["reason"].startswith("no recorded digest for core-steady")
