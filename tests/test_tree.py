from __future__ import annotations

from pathlib import Path

import pytest

from rootseed.errors import RootseedError
from rootseed.tree import Tree
from treegen import stagex_like_tree, write_package


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree.load(stagex_like_tree(tmp_path))


def test_packages_and_default_namespace(tree: Tree) -> None:
    assert tree.namespace == "stagex"
    assert sorted(tree.packages) == ["bootstrap-stage0", "bootstrap-stage1", "core-gcc",
                                     "core-gcc-cross"]


def test_placeholders(tree: Tree) -> None:
    s0 = tree.get("bootstrap-stage0").sources[0]
    assert s0.file == "stage0-posix-1.6.0.tar.gz"
    assert s0.mirrors == ("https://example.org/stage0/1.6/stage0-posix-1.6.0.tar.gz",)
    tcc = tree.get("bootstrap-stage1").source("tcc")
    assert tcc.version == "0.9.27"
    assert tcc.mirrors == ("https://example.org/tcc-0-9-27_0_9_27-0.9.27.tar.bz2",)
    assert tcc.file == "tcc-0-9-27_0_9_27-0.9.27.tar.bz2"  # last path part of the mirror


def test_version_strip_suffix_and_build_args(tree: Tree) -> None:
    args = tree.get("bootstrap-stage1").build_args()
    assert args["VERSION"] == "1.2.3-r4"
    assert args["VERSION_STRIP_SUFFIX"] == "1.2.3"
    assert args["VERSION_MAJOR"] == "1"
    assert args["VERSION_MAJOR_MINOR"] == "1.2"
    assert args["TCC_VERSION"] == "0.9.27"
    assert args["TCC_SOURCE"] == "tcc-0-9-27_0_9_27-0.9.27.tar.bz2"
    assert args["SOURCE_DATE_EPOCH"] == "1"
    s0 = tree.get("bootstrap-stage0").build_args()
    assert s0["STAGE0_GIT_SHA"] == "0123456789abcdef0123456789abcdef01234567"


def test_version_from(tree: Tree) -> None:
    assert tree.get("core-gcc-cross").version == "13.1.0"


def test_dependencies_from_containerfile(tree: Tree) -> None:
    assert tree.get("bootstrap-stage0").deps == ()
    assert tree.get("bootstrap-stage1").deps == ("bootstrap-stage0",)
    # tags, digests and subpackage images all resolve to their package
    assert tree.get("core-gcc").deps == ("bootstrap-stage1",)
    assert tree.get("core-gcc-cross").deps == ("bootstrap-stage1", "core-gcc")


def test_order_dependencies_first(tree: Tree) -> None:
    assert tree.order(["core-gcc-cross"]) == [
        "bootstrap-stage0", "bootstrap-stage1", "core-gcc", "core-gcc-cross"]
    assert tree.package_for_image("stagex/core-libstdcxx:1") == "core-gcc"
    assert tree.package_for_image("docker.io/library/alpine") is None


def test_namespace_from_rootseed_toml(tmp_path: Path) -> None:
    (tmp_path / "rootseed.toml").write_text('[tree]\nnamespace = "acme"\n')
    write_package(tmp_path, "a", "x", '[package]\nname="x"\nversion="1"\ndescription="d"\n'
                  'license="MIT"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "y", '[package]\nname="y"\nversion="1"\ndescription="d"\n'
                  'license="MIT"\n', "FROM acme/a-x\nFROM stagex/other\n")
    tree = Tree.load(tmp_path)
    assert tree.get("a-y").deps == ("a-x",)


BASE = '[package]\nname="x"\nversion="1"\ndescription="d"\nlicense="MIT"\n'
SRC = '[sources.s]\nhash="{h}"\nmirrors=["https://e.org/s.tgz"]\n'


@pytest.mark.parametrize(("toml", "needle"), [
    ('[package]\nname="x"\nversion="1"\nlicense="MIT"\n', "missing required field 'description'"),
    (BASE + '[sources.s]\nmirrors=["https://e.org/s.tgz"]\n', "[sources.s]: missing required field 'hash'"),
    (BASE + SRC.format(h="abc"), "[sources.s] hash: must be 64 lowercase hex"),
    (BASE + SRC.format(h="A" * 64), "must be 64 lowercase hex"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\nmirrors=["https://e.org/{verzion}.tgz"]\n',
     "unknown placeholder {verzion}"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\nfile="s.{format}"\nmirrors=["https://e.org/{file}"]\n',
     "unknown placeholder {format}"),
    ('[package]\nname="x"\nversion="1"\nversion_from="a-y"\ndescription="d"\nlicense="MIT"\n',
     "'version' and 'version_from' are both set"),
    ('[package]\nname="x"\nversion_from="a-nope"\ndescription="d"\nlicense="MIT"\n',
     "version_from: no package 'a-nope'"),
    (BASE + "[sources.s\n", "not valid TOML"),
    (BASE + '[outputs]\n"bin/x" = ["zz", 1]\n', "[outputs] 'bin/x'"),
])
def test_validation_names_file_and_field(tmp_path: Path, toml: str, needle: str) -> None:
    d = write_package(tmp_path, "a", "x", toml, "FROM scratch\n")
    with pytest.raises(RootseedError) as e:
        Tree.load(tmp_path)
    assert needle in e.value.message
    assert str(d / "package.toml") in e.value.message


def test_missing_dependency_is_clear(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", BASE, "FROM scratch\nCOPY --from=stagex/a-gone /a /a\n")
    with pytest.raises(RootseedError, match=r"Containerfile:2: refers to image 'stagex/a-gone'"):
        Tree.load(tmp_path)


def test_cycle_is_clear(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", BASE, "FROM stagex/a-y\n")
    write_package(tmp_path, "a", "y", BASE.replace('"x"', '"y"'), "FROM stagex/a-x\n")
    with pytest.raises(RootseedError, match=r"dependency cycle: a-x -> a-y -> a-x"):
        Tree.load(tmp_path)


def test_unknown_package_suggests(tree: Tree) -> None:
    with pytest.raises(RootseedError) as e:
        tree.get("core-gc")
    assert e.value.hint is not None and "core-gcc" in e.value.hint


def test_dependencies_see_arg_expansion_like_the_builder(tmp_path: Path) -> None:
    """``FROM ${NS}/…`` names a package once global ARGs are expanded (by the planner the
    builder uses); ``--from`` is never expanded (BuildKit: dockerfile2llb/convert.go
    toCommand), so a variable there is an error, and a stage FROM the variable works."""
    write_package(tmp_path, "a", "x", BASE, "FROM scratch\n")
    write_package(tmp_path, "a", "z", BASE.replace('"x"', '"z"'), "FROM scratch\n")
    write_package(tmp_path, "a", "w", BASE.replace('"x"', '"w"'), "FROM scratch\n")
    write_package(tmp_path, "a", "y", BASE.replace('"x"', '"y"'),
                  "ARG NS=stagex\nARG BASE=stagex/a-z\nFROM ${BASE} AS base\n"
                  "FROM ${NS}/a-x\nCOPY --from=base /a /a\n")
    assert Tree.load(tmp_path).get("a-y").deps == ("a-x", "a-z")
    # --build-arg reaches the dependency scan as it reaches the builder
    assert Tree.load(tmp_path, build_args={"BASE": "stagex/a-w"}).get("a-y").deps == (
        "a-w", "a-x")
    write_package(tmp_path, "a", "y", BASE.replace('"x"', '"y"'),
                  "ARG BASE=stagex/a-z\nFROM scratch\nCOPY --from=${BASE} /a /a\n")
    with pytest.raises(RootseedError, match="not supported for --from"):
        Tree.load(tmp_path)
