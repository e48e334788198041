"""``Tree.load(only=...)`` (``rootseed build NAME``): only what NAME needs is planned, and
what it loads equals a full load."""

from __future__ import annotations

from pathlib import Path

import pytest

import rootseed.tree as tree_module
from rootseed.containerfile import Containerfile
from rootseed.errors import RootseedError
from rootseed.settings import default_tree
from rootseed.tree import ProblemKind, Tree, UnbuildableError
from treegen import stagex_like_tree, write_package


def same_as_full(root: Path, name: str) -> Tree:
    """The partial load of ``name``: every package it holds is the full load's, and it
    holds everything ``name`` needs."""
    full = Tree.load(root)
    part = Tree.load(root, only=[name])
    assert {n: full.packages[n] for n in part.packages} == part.packages
    assert set(full.order([name])) <= set(part.packages)
    assert part.order([name]) == full.order([name])
    assert part.namespace == full.namespace
    return part


def test_shipped_tree_every_package() -> None:
    root = default_tree()
    for name in Tree.load(root).buildable():
        same_as_full(root, name)


def test_stagex_like_tree_every_package(tmp_path: Path) -> None:
    root = stagex_like_tree(tmp_path)
    for name in Tree.load(root).buildable():
        same_as_full(root, name)


def test_only_the_needed_containerfiles_are_parsed(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = stagex_like_tree(tmp_path)
    # unrelated packages, one of them broken twice over: not read at all for stage1
    write_package(root, "user", "broken", "[package\n", "BOGUS instruction\n")
    for i in range(5):
        write_package(root, "user", f"p{i}", f'[package]\nname="p{i}"\n',
                      "FROM stagex/core-gcc\n")
    parsed: list[Path] = []
    real = tree_module.parse_file  # type: ignore[attr-defined]

    def counting(path: Path, *, display: str | None = None) -> Containerfile:
        parsed.append(path)
        return real(path, display=display)

    monkeypatch.setattr(tree_module, "parse_file", counting)
    part = same_as_full(root, "bootstrap-stage1")
    assert sorted(p.parent.name for p in parsed[-2:]) == ["stage0", "stage1"]
    parsed.clear()
    Tree.load(root, only=["bootstrap-stage1"])
    assert sorted(p.parent.name for p in parsed) == ["stage0", "stage1"]
    assert sorted(part.packages) == ["bootstrap-stage0", "bootstrap-stage1"]
    assert part.problems == ()  # user-broken's problems are not this build's
    full = Tree.load(root)
    assert {p.kind for p in full.problems} == {ProblemKind.BAD_TOML}


def test_subpackages_behind_an_escaped_key_are_seen(tmp_path: Path) -> None:
    """A quoted TOML key can spell ``subpackages`` with escapes: the image it registers
    (and the duplicate it makes) are found without parsing every package.toml."""
    write_package(tmp_path, "a", "x", '[package]\nname="x"\n"\\u0073ubpackages"=["y"]\n',
                  "FROM scratch AS package-y\n")
    write_package(tmp_path, "a", "y", '[package]\nname="y"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "user", '[package]\nname="user"\n', "FROM stagex/a-y\n")
    with pytest.raises(UnbuildableError) as e:
        Tree.load(tmp_path, only=["a-user"]).order(["a-user"])
    assert e.value.problem.kind is ProblemKind.DUPLICATE_IMAGE


def test_version_from_outside_the_closure(tmp_path: Path) -> None:
    write_package(tmp_path, "core", "llvm", '[package]\nname="llvm"\nversion="18.1"\n'
                  'subpackages=["llvm", "clang"]\n', "FROM scratch AS package-llvm\n"
                  "FROM scratch AS package-clang\n")
    write_package(tmp_path, "pallet", "clang", '[package]\nname="clang"\n'
                  'version_from="core-clang"\n', "FROM scratch\n")
    part = same_as_full(tmp_path, "pallet-clang")
    assert part.get("pallet-clang").version == "18.1"
    assert sorted(part.packages) == ["pallet-clang"]


def test_broken_dependency_blocks_as_in_a_full_load(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", '[package]\nname="x"\n', "FROM stagex/a-nothing\n")
    write_package(tmp_path, "a", "user", '[package]\nname="user"\n', "FROM stagex/a-x\n")
    part = Tree.load(tmp_path, only=["a-user"])
    with pytest.raises(UnbuildableError) as e:
        part.order(["a-user"])
    assert e.value.via == "a-x" and e.value.problem.kind is ProblemKind.UNKNOWN_IMAGE


def test_an_unknown_name_still_suggests(tmp_path: Path) -> None:
    root = stagex_like_tree(tmp_path)
    part = Tree.load(root, only=["stage1"])
    assert len(part.packages) == len(Tree.load(root).packages)  # loaded whole for the hint
    with pytest.raises(RootseedError) as e:
        part.get("stage1")
    assert e.value.hint is not None and "bootstrap-stage1" in e.value.hint
