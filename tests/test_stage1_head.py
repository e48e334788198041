"""StageX's stage1, its head for real: live-bootstrap's first two steps on our stage0.

Two trees, both FROM rootseed's own ``packages/bootstrap/stage0`` (the 20 tools StageX's
stage0 yields) and both needing the pinned live-bootstrap and M2libc tarballs:

* ``tests/trees/stage1head``: a package written here that uses BuildKit's features the
  way StageX's stage1 does (ARGs inherited through ``FROM base``, ``ADD fetch/…``,
  ``COPY --from=fetch``, ENV/WORKDIR chains, kaem as SHELL). Runs whenever the mirrors are
  there: ``ROOTSEED_STAGE1_MIRROR=<dir>`` (the stage1-head tarballs), else the
  ``stage1-head/`` directory beside ``ROOTSEED_MIRROR`` (the stage0 sources, also needed).
* StageX's own ``packages/bootstrap/stage1/Containerfile``, unmodified up to and including
  the ``simple-patch-1.0`` step (cut there at test time: mes-0.27's sources are not
  reachable), from the checkout in ``ROOTSEED_STAGEX_TREE=<StageX checkout>``.

The built binaries must equal live-bootstrap's published ``steps/*/*.x86.checksums``, read
from the live-bootstrap tarball itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest

from rootseed import shipped
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.oci import unpack_image
from rootseed.plan import PlannedCopy, StagePath, plan_package
from rootseed.tree import Tree

STAGE0 = shipped.packages() / "bootstrap" / "stage0"
HEAD_TREE = Path(__file__).parent / "trees" / "stage1head"
STEPS = ("checksum-transcriber-1.0", "simple-patch-1.0")
SOURCES = ("live_bootstrap", "M2libc")  # the stage1 sources the two steps read
LAST_STEP = "ENV pkg=simple-patch-1.0"
EXPORT = "\nFROM scratch AS package\nCOPY --from=build /usr/bin /usr/bin\n"

pytestmark = [pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
              pytest.mark.mirror]


def _dir(value: str | None) -> Path | None:
    return Path(value) if value else None


def mirrors() -> tuple[Path, Path]:
    """(stage0 sources, stage1-head sources), or skip saying which variable to set."""
    stage0 = _dir(os.environ.get("ROOTSEED_MIRROR"))
    stage1 = _dir(os.environ.get("ROOTSEED_STAGE1_MIRROR"))
    if stage1 is None and stage0 is not None and (stage0.parent / "stage1-head").is_dir():
        stage1 = stage0.parent / "stage1-head"
    if stage0 is None and stage1 is not None and (stage1.parent / "stage0").is_dir():
        stage0 = stage1.parent / "stage0"
    if stage1 is None or stage0 is None:
        pytest.skip("set ROOTSEED_STAGE1_MIRROR=<dir with the live-bootstrap and M2libc "
                    "tarballs> and ROOTSEED_MIRROR=<stage0 sources> (or only ROOTSEED_MIRROR "
                    "with stage1-head/ beside it) to build the head of stage1")
    if not (stage0 / "hex0-seed").is_file():
        pytest.skip(f"{stage0} has no hex0-seed (the stage0 sources)")
    if not list(stage1.glob("live-bootstrap-*.tar.gz")):
        pytest.skip(f"{stage1} has no live-bootstrap-<commit>.tar.gz")
    return stage0, stage1


def published_checksums(tarball: Path) -> dict[str, str]:
    """``/usr/bin/<tool>`` → sha256, from live-bootstrap's ``steps/<step>/<step>.x86.checksums``."""
    found: dict[str, str] = {}
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if (len(parts) == 4 and parts[1] == "steps" and parts[2] in STEPS
                    and parts[3] == f"{parts[2]}.x86.checksums"):
                f = tar.extractfile(member)
                assert f is not None
                for line in f.read().decode().splitlines():
                    sha, path = line.split()
                    found[path] = sha
    assert len(found) == len(STEPS), f"expected one checksum per step, got {found}"
    return found


@pytest.fixture
def cache(stage0_built: Path) -> Path:
    """The run's shared cache, where stage0 is built once for every real-chain test."""
    return stage0_built


def make_tree(root: Path, stage1_dir: Path) -> Path:
    packages = root / "packages"  # no rootseed.toml: namespace "stagex", as StageX's
    shutil.copytree(STAGE0, packages / "bootstrap" / "stage0")
    shutil.copytree(stage1_dir, packages / "bootstrap" / "stage1-head")
    return packages


def build_and_compare(packages: Path, cache: Path, out: Path, stage0: Path, stage1: Path
                      ) -> None:
    builder = Builder(Tree.load(packages), cache_dir=cache, out=out,
                      mirrors=(stage0, stage1), offline=True)
    (result,) = [r for r in builder.build(["bootstrap-stage1-head"],
                                          BuildOptions(progress=False))
                 if r.package == "bootstrap-stage1-head"]
    rootfs = out.parent / "rootfs"
    unpack_image(result.image, rootfs)
    expected = published_checksums(next(stage1.glob("live-bootstrap-*.tar.gz")))
    for path, sha in sorted(expected.items()):
        built = rootfs / path.lstrip("/")
        assert built.is_file(), f"{path} was not built"
        assert hashlib.sha256(built.read_bytes()).hexdigest() == sha, path


def test_stage1_head_matches_live_bootstrap(tmp_path: Path, cache: Path) -> None:
    stage0, stage1 = mirrors()
    packages = make_tree(tmp_path, HEAD_TREE / "bootstrap" / "stage1-head")
    # the planner hands base's ARGs on to `FROM base AS build` (BuildKit dispatchState.init)
    plan = plan_package(Tree.load(packages).get("bootstrap-stage1-head"))
    build = plan.stage("build")
    assert build is not None
    paths = [s.path for step in build.steps if isinstance(step, PlannedCopy)
             for s in step.sources if isinstance(s, StagePath)]
    assert paths == ["live-bootstrap-15cb1064ee9cc54f880586fb814752c459a5c897/steps",
                     "M2libc-3a700010872697c4be9e3fab3cf707fce706741e"]
    build_and_compare(packages, cache, tmp_path / "out", stage0, stage1)


def truncated_stagex_stage1(checkout: Path, dest: Path) -> None:
    """StageX's stage1 package, cut after the simple-patch-1.0 step, into ``dest``: the
    Containerfile unmodified up to there (plus a stage exporting /usr/bin), package.toml
    with only the sources those steps read."""
    source = checkout / "packages" / "bootstrap" / "stage1"
    text = (source / "Containerfile").read_text(encoding="utf-8")
    start = text.index(LAST_STEP)
    end = text.index("RUN pass1.kaem\n", start) + len("RUN pass1.kaem\n")
    dest.mkdir(parents=True)
    (dest / "Containerfile").write_text(text[:end] + EXPORT, encoding="utf-8")
    data = tomllib.loads((source / "package.toml").read_text(encoding="utf-8"))
    lines = ["[package]"]
    lines += [f"{k} = {_toml(v)}" for k, v in data["package"].items()]
    for sid in SOURCES:
        lines.append(f"\n[sources.{sid}]")
        lines += [f"{k} = {_toml(v)}" for k, v in data["sources"][sid].items()]
    text_toml = "\n".join(lines) + "\n"
    # the package is named after its directory here (bootstrap-stage1-head)
    (dest / "package.toml").write_text(
        text_toml.replace(f'name = "{data["package"]["name"]}"', 'name = "stage1-head"', 1),
        encoding="utf-8")


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"unexpected TOML value {value!r}")


@pytest.mark.stagex_checkout
def test_stagex_stage1_truncated_matches_live_bootstrap(tmp_path: Path, cache: Path) -> None:
    checkout = _dir(os.environ.get("ROOTSEED_STAGEX_TREE"))
    if checkout is None:
        pytest.skip("set ROOTSEED_STAGEX_TREE=<StageX checkout> to build StageX's own stage1 "
                    "Containerfile up to simple-patch-1.0")
    stage0, stage1 = mirrors()
    head = tmp_path / "stage1"
    truncated_stagex_stage1(checkout, head)
    packages = make_tree(tmp_path / "tree", head)
    build_and_compare(packages, cache, tmp_path / "out", stage0, stage1)
