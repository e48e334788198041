"""Which directories of a tree are packages, found by one listing per directory: the same
answers as asking for each name (links followed; a dangling link is no file)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildtree import write
from rootseed.tree import Tree
from rootseed.tree.problems import ProblemKind

TOML = '[package]\nname = "{}"\nversion = "1"\ndescription = "x"\nlicense = "MIT"\n'


def _tree(root: Path) -> Path:
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    for name in ("plain", "linked", "dangling", "docker", "tomlonly", "nothing"):
        (tree / "core" / name).mkdir(parents=True)
    write(tree / "core/plain/package.toml", TOML.format("plain"))
    write(tree / "core/plain/Containerfile", "FROM scratch\n")
    # files reached through links count, as their targets
    write(root / "elsewhere/Containerfile", "FROM scratch\n")
    write(root / "elsewhere/package.toml", TOML.format("linked"))
    os.symlink(root / "elsewhere/Containerfile", tree / "core/linked/Containerfile")
    os.symlink(root / "elsewhere/package.toml", tree / "core/linked/package.toml")
    # a dangling link is not a Containerfile
    write(tree / "core/dangling/package.toml", TOML.format("dangling"))
    os.symlink(root / "absent", tree / "core/dangling/Containerfile")
    # a Dockerfile when there is no Containerfile
    write(tree / "core/docker/package.toml", TOML.format("docker"))
    write(tree / "core/docker/Dockerfile", "FROM scratch\n")
    # a package.toml that is a directory is not one
    write(tree / "core/tomlonly/Containerfile", "FROM scratch\n")
    (tree / "core/tomlonly/package.toml").mkdir()
    # only a dangling link: not a package directory at all
    os.symlink(root / "absent", tree / "core/nothing/package.toml")
    return tree


def test_package_directories_as_asked_name_by_name(tmp_path: Path) -> None:
    tree = Tree.load(_tree(tmp_path))
    assert sorted(tree.packages) == ["core-docker", "core-linked", "core-plain"]
    assert tree.packages["core-docker"].containerfile.name == "Dockerfile"
    kinds = {(p.package, p.kind) for p in tree.problems}
    assert ("core-dangling", ProblemKind.NO_CONTAINERFILE) in kinds
    assert ("core-tomlonly", ProblemKind.NO_PACKAGE_TOML) in kinds
    assert not any(p.package == "core-nothing" for p in tree.problems)


def test_a_directory_that_cannot_be_listed_is_asked_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory one may enter but not read (mode 0311) cannot be listed; its files are
    still found by name, as before (simulated: the tests may run as root)."""
    root = _tree(tmp_path)
    scandir = os.scandir

    def refusing(path: str) -> Iterator[os.DirEntry[str]]:
        if os.path.basename(path) in ("plain", "dangling", "nothing"):
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    tree = Tree.load(root)
    assert sorted(tree.packages) == ["core-docker", "core-linked", "core-plain"]
    kinds = {(p.package, p.kind) for p in tree.problems}
    assert ("core-dangling", ProblemKind.NO_CONTAINERFILE) in kinds
    assert not any(p.package == "core-nothing" for p in tree.problems)
