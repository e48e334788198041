"""Build the example tree twice, in different places, and get the same images.

``examples/`` builds offline from its own ``mirror/``: the seed rebuilds itself, then
assembles hello.hex0.  Two builds with different tree locations, caches, outputs and
working directories must produce identical manifest digests, and the images must hold
exactly the files ``[outputs]`` lists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from rootseed import shipped

EXAMPLES = shipped.examples()
PACKAGES = ("seed-hex0", "seed-hello")

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)")


def build(workspace: Path) -> Path:
    """Copy the tree into ``workspace`` and build seed-hello offline; return the out dir."""
    tree = workspace / "tree"
    shutil.copytree(EXAMPLES, tree)
    out = workspace / "out"
    r = run_cli("build", "seed-hello", "--tree", tree, "--out", out, "--cache-dir",
                workspace / "cache", "--offline", cwd=workspace)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def manifest_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert isinstance(digest, str)
    return digest


def blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":", 1)
    data = (layout / "blobs" / algorithm / hexdigest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hexdigest
    return data


def image_files(layout: Path) -> dict[str, bytes]:
    """Regular files of the image (layers applied in order), by path without leading '/'."""
    manifest = json.loads(blob(layout, manifest_digest(layout)))
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = blob(layout, layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                name = member.name.removeprefix("./").lstrip("/")
                if member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    files[name] = extracted.read()
    return files


def expected_outputs(package: str) -> dict[str, tuple[str, int]]:
    stage, name = package.split("-", 1)
    data = tomllib.loads((EXAMPLES / stage / name / "package.toml").read_text())
    return {path: (sha, size) for path, (sha, size) in data["outputs"].items()}


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = build(tmp_path_factory.mktemp("first"))
    second = build(tmp_path_factory.mktemp("second-elsewhere"))
    return first, second


def test_two_builds_give_the_same_digests(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    assert (first / "seed-hello").is_dir()
    for package in PACKAGES:
        if (first / package).is_dir() or (second / package).is_dir():
            assert manifest_digest(first / package) == manifest_digest(second / package)


def test_images_hold_the_listed_outputs(two_builds: tuple[Path, Path]) -> None:
    first, _ = two_builds
    for package in PACKAGES:
        layout = first / package
        if not layout.is_dir():
            continue  # a dependency the builder did not write to --out
        files = image_files(layout)
        got = {path: (hashlib.sha256(data).hexdigest(), len(data))
               for path, data in files.items()}
        assert got == expected_outputs(package)


def test_builds_equal_the_committed_golden_digests(two_builds: tuple[Path, Path]) -> None:
    """Not only two builds here agreeing: both equal what was recorded and committed."""
    recorded = {line.split()[1]: line.split()[0]
                for line in (shipped.digests() / "seed.txt").read_text().splitlines()}
    assert sorted(recorded) == sorted(PACKAGES)
    for out in two_builds:
        for package in PACKAGES:
            assert manifest_digest(out / package) == f"sha256:{recorded[package]}", package
