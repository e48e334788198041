"""The builder digest (part of every cache key) covers exactly the code that decides
outputs: a new module nothing output-deciding imports (a backend not chosen yet) keeps
every key; a change to output-deciding code changes them."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from rootseed.engine.actions import (
    Action,
    Command,
    builder_digest,
    builder_files,
    code_files,
    digest_files,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "rootseed"


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of rootseed's source to change."""
    copy = tmp_path / "rootseed"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    return copy


def _key(root: Path) -> str:
    builder = digest_files(builder_files(root))
    return Action(Command("RUN", {"argv": ["true"]}, "linux/amd64"), "sha256:" + "0" * 64,
                  {}, builder).key


def test_the_digest_is_of_the_installed_package() -> None:
    assert builder_digest() == digest_files(builder_files(resources.files("rootseed")))


def test_output_deciding_code_is_covered_and_the_rest_is_not() -> None:
    files = set(builder_files(SRC))
    assert {"engine/stage.py", "engine/ops.py", "engine/fsops.py", "engine/extract.py",
            "engine/layers.py", "engine/executor.py", "engine/copyexec.py",
            "engine/export.py", "engine/planner.py", "oci/layer.py", "oci/layout.py",
            "oci/config.py", "oci/unpack.py", "sandbox/options.py", "sandbox/execute.py",
            "sandbox/_overlay_holder.py", "plan/planner.py", "containerfile/parse.py",
            "containerfile/expand.py", "fsutil.py"} <= files
    assert not files & {"engine/engine.py", "engine/publish.py", "engine/cache.py",
                        "engine/whole.py", "cli/__init__.py", "provenance/statement.py",
                        "crosscheck/run.py", "trust/quorum.py"}


def test_a_new_unrelated_module_keeps_every_key(package: Path) -> None:
    before = _key(package)
    (package / "engine" / "remote.py").write_text('"""A REAPI executor."""\n')
    (package / "oci" / "newformat").mkdir()
    (package / "oci" / "newformat" / "__init__.py").write_text('"""Another format."""\n')
    with (package / "engine" / "publish.py").open("a") as f:  # publishing decides nothing
        f.write("\n# how images are copied to out/ changes no output\n")
    assert _key(package) == before


@pytest.mark.parametrize("module", ["engine/fsops.py", "oci/layer.py", "engine/stage.py",
                                    "plan/planner.py", "sandbox/options.py"])
def test_a_change_to_output_deciding_code_changes_the_keys(package: Path, module: str
                                                           ) -> None:
    before = _key(package)
    with (package / module).open("a") as f:
        f.write("\n# changed\n")
    assert _key(package) != before


def test_a_new_module_an_output_deciding_one_imports_is_covered(package: Path) -> None:
    before = _key(package)
    (package / "engine" / "helper.py").write_text("X = 1\n")
    stage = package / "engine" / "stage.py"
    stage.write_text(stage.read_text().replace(
        "from rootseed.engine import fsops\n",
        "from rootseed.engine import fsops, helper  # noqa: F401\n"))
    first = _key(package)
    assert first != before
    (package / "engine" / "helper.py").write_text("X = 2\n")
    assert _key(package) != first


def test_files_of_an_installed_package_are_found_as_through_importlib(tmp_path: Path) -> None:
    """An installed package (a directory) is read through ``os.path`` (fast); the files
    found are those any other ``Traversable`` (here the package zipped) gives."""
    import zipfile

    root = Path(str(resources.files("rootseed")))
    archive = tmp_path / "rootseed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(root.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                z.write(f, f"rootseed/{f.relative_to(root).as_posix()}")
    zipped = zipfile.Path(archive, "rootseed/")
    assert builder_files(root) == builder_files(zipped)
    assert code_files(root, ["rootseed.provenance.validate"]) == code_files(
        zipped, ["rootseed.provenance.validate"])


def test_the_package_root_is_what_importlib_resources_gives() -> None:
    from rootseed.engine.actions import _package_root

    assert _package_root() == resources.files("rootseed")
