"""BuildKit's own outputs (``../shared/reference/buildkit/`` beside the repository, or
``$ROOTSEED_BUILDKIT_REFERENCE``): the cases and helpers to read them."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

REPO = Path(__file__).resolve().parent.parent
#: beside the repository (a worktree one level deeper looks one more level up)
REFERENCE = Path(os.environ.get("ROOTSEED_BUILDKIT_REFERENCE") or next(
    (p for p in (REPO.parent / "shared" / "reference" / "buildkit",
                 REPO.parent.parent / "shared" / "reference" / "buildkit") if p.is_dir()),
    REPO.parent / "shared" / "reference" / "buildkit"))
CASES = ("add-archive", "copy-kinds", "layers", "multistage", "run-whiteout")


def reference() -> Path:
    if not (REFERENCE / "out").is_dir():
        pytest.skip(f"BuildKit's reference outputs are not at {REFERENCE} (set "
                    "ROOTSEED_BUILDKIT_REFERENCE)")
    return REFERENCE


def archive_files(path: Path) -> dict[str, bytes]:
    """name → bytes of every file of an oci-archive tar."""
    with tarfile.open(path) as tar:
        found: dict[str, bytes] = {}
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                found[member.name] = f.read()
        return found


def layer_tars(files: dict[str, bytes]) -> list[bytes]:
    """The decompressed layer tars of an oci-archive's image, in manifest order."""
    def blob(digest: str) -> bytes:
        return files["blobs/sha256/" + digest.partition(":")[2]]

    index: dict[str, Any] = json.loads(files["index.json"])
    doc = json.loads(blob(index["manifests"][0]["digest"]))
    if "manifests" in doc:
        doc = json.loads(blob(doc["manifests"][0]["digest"]))
    return [gzip.decompress(blob(x["digest"])) for x in doc["layers"]]


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tar:
        return tar.getmembers()


# buildkit-build passes no VERSION build arg (StageX's Makefile would pass VERSION=1.0):
# BuildKit took the Containerfile's global default, so rootseed is given that value.
BUILD_ARGS = {"multistage": {"VERSION": "1.2.3"}}


def case_tree(root: Path, case: str) -> Path:
    package = root / "packages" / "test" / case
    package.mkdir(parents=True)
    with tarfile.open(reference() / "cases" / f"{case}.context.tar") as tar:
        # the reference is ours (modes matter: setuid/setgid files), not hostile input
        tar.extractall(package, filter="fully_trusted")
    (package / "package.toml").write_text(
        f'[package]\nname = "{case}"\nversion = "1.0"\ndescription = "BuildKit case"\n'
        'license = "MIT"\nplatforms = ["linux/amd64"]\n')
    return root


def build_case(tmp_path: Path, case: str) -> Path:
    tree = Tree.load(case_tree(tmp_path / "tree", case))
    assert tree.namespace == "stagex"
    with Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out") as builder:
        result, = builder.build([f"test-{case}"], BuildOptions(
            progress=False, snapshots="overlay", build_args=BUILD_ARGS.get(case, {})))
    return result.image
