"""Tree loading, with StageX's reader (src/common.py, src/targets.py) as the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinds import raises_kind
from rootseed.errors import ErrorKind, RootseedError
from rootseed.tree import ProblemKind, Severity, Tree, UnbuildableError, arg_prefix
from treegen import stagex_like_tree, write_package


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree.load(stagex_like_tree(tmp_path))


def test_packages_and_default_namespace(tree: Tree) -> None:
    assert tree.namespace == "stagex"
    # core/gcc lists subpackages: one package each, none for the directory itself
    # unless listed (StageX's targets.py registers only the subpackages)
    assert sorted(tree.packages) == ["bootstrap-stage0", "bootstrap-stage1", "core-gcc",
                                     "core-gcc-cross", "core-gcc-libs", "core-libstdcxx"]
    assert tree.problems == ()


def test_subpackages_are_packages(tree: Tree) -> None:
    libs = tree.get("core-gcc-libs")
    assert (libs.stage, libs.pname, libs.origin, libs.target) == (
        "core", "gcc-libs", "core-gcc", "package-gcc-libs")
    assert libs.version == "13.1.0" and not hasattr(libs, "subpackages")
    gcc = tree.get("core-gcc")
    assert gcc.target == "package-gcc" and gcc.origin == "core-gcc"
    assert libs.containerfile == gcc.containerfile == tree.get("core-libstdcxx").containerfile
    assert libs.deps == gcc.deps == ("bootstrap-stage1",)  # the whole file's, as StageX
    assert tree.get("bootstrap-stage1").target is None
    assert tree.get("bootstrap-stage1").origin is None


def test_placeholders(tree: Tree) -> None:
    s0 = tree.get("bootstrap-stage0").sources[0]
    assert s0.file == "stage0-posix-1.6.0.tar.gz"
    assert s0.mirrors == ("https://example.org/stage0/1.6/stage0-posix-1.6.0.tar.gz",)
    tcc = tree.get("bootstrap-stage1").source("tcc")
    assert tcc.version == tcc.own_version == "0.9.27"
    assert tcc.mirrors == ("https://example.org/tcc-0-9-27_0_9_27.tar.bz2",)
    assert tcc.file == "tcc-0-9-27_0_9_27.tar.bz2"  # last path part of the mirror
    extra = tree.get("bootstrap-stage1").source("tcc_extra")
    assert (extra.version, extra.own_version) == ("1.2.3-r4", None)  # the package's
    assert extra.file == "tcc-extra-1.2.3.tar.bz2"


def test_build_args_as_stagex(tree: Tree) -> None:
    args = tree.get("bootstrap-stage1").build_args()
    assert args == {
        "VERSION": "1.2.3-r4", "VERSION_UNDER": "1_2_3-r4", "VERSION_DASH": "1-2-3-r4",
        "VERSION_MAJOR": "1", "VERSION_MAJOR_MINOR": "1.2", "VERSION_STRIP_SUFFIX": "1.2.3",
        "TCC_VERSION": "0.9.27",
        # targets.py: {version} is the source's, {version_dash}/{version_under} the
        # package's; a source without a version of its own gets no _VERSION/_SOURCE
        "TCC_SOURCE": "tcc-1-2-3-r4_1_2_3-r4.tar.bz2",
        "SOURCE_DATE_EPOCH": "1"}
    s0 = tree.get("bootstrap-stage0").build_args()
    assert s0["STAGE0_GIT_SHA"] == "0123456789abcdef0123456789abcdef01234567"
    assert "STAGE0_VERSION" not in s0 and "STAGE0_SOURCE" not in s0


def test_arg_prefix_is_str_upper() -> None:
    assert arg_prefix("m2_planet") == "M2_PLANET"
    assert arg_prefix("M2libc") == "M2LIBC"
    assert arg_prefix("gcc-libs") == "GCC-LIBS"  # targets.py: source_name.upper()
    assert arg_prefix("py-ruamel-yaml") == "PY-RUAMEL-YAML"


def test_version_from(tree: Tree) -> None:
    assert tree.get("core-gcc-cross").version == "13.1.0"
    assert tree.get("core-gcc-cross").build_args()["VERSION"] == "13.1.0"


def test_dependencies_from_containerfile(tree: Tree) -> None:
    assert tree.get("bootstrap-stage0").deps == ()
    assert tree.get("bootstrap-stage1").deps == ("bootstrap-stage0",)
    assert tree.get("core-gcc").deps == ("bootstrap-stage1",)
    # tags and digests are stripped; subpackage images are packages of their own
    assert tree.get("core-gcc-cross").deps == ("bootstrap-stage1", "core-gcc-libs",
                                               "core-libstdcxx")


def test_order_dependencies_first(tree: Tree) -> None:
    assert tree.order(["core-gcc-cross"]) == [
        "bootstrap-stage0", "bootstrap-stage1", "core-gcc-libs", "core-libstdcxx",
        "core-gcc-cross"]
    assert tree.package_for_image("stagex/core-libstdcxx:1") == "core-libstdcxx"
    assert tree.package_for_image("docker.io/library/alpine") is None


def test_checkout_root_or_packages_dir(tmp_path: Path) -> None:
    stagex_like_tree(tmp_path / "checkout" / "packages")
    (tmp_path / "checkout" / "digests").mkdir()
    a = Tree.load(tmp_path / "checkout")
    b = Tree.load(tmp_path / "checkout" / "packages")
    assert a.root == b.root == (tmp_path / "checkout" / "packages").resolve()
    assert sorted(a.packages) == sorted(b.packages)


def test_namespace_from_rootseed_toml(tmp_path: Path) -> None:
    (tmp_path / "rootseed.toml").write_text('[tree]\nnamespace = "acme"\n')
    write_package(tmp_path, "a", "x", '[package]\nname="x"\nversion="1"\ndescription="d"\n'
                  'license="MIT"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "y", '[package]\nname="y"\nversion="1"\ndescription="d"\n'
                  'license="MIT"\n', "FROM acme/a-x\nFROM stagex/other\n")
    tree = Tree.load(tmp_path)
    assert tree.get("a-y").deps == ("a-x",)


def test_optional_fields_as_stagex(tmp_path: Path) -> None:
    """Only [package] name is required; no version means no VERSION* args, tag latest;
    a version without a dot has VERSION_MAJOR_MINOR "None", as StageX spells it."""
    write_package(tmp_path, "a", "bare", '[package]\nname="bare"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "one", '[package]\nname="one"\nversion="20250807"\n'
                  'description=""\n', "FROM scratch\n")
    tree = Tree.load(tmp_path)
    assert tree.problems == ()
    bare = tree.get("a-bare")
    assert (bare.version, bare.declared_version, bare.license, bare.description) == (
        "latest", None, "", "")
    assert bare.build_args() == {"SOURCE_DATE_EPOCH": "1"}
    assert tree.get("a-one").build_args()["VERSION_MAJOR_MINOR"] == "None"


BASE = '[package]\nname="x"\nversion="1"\ndescription="d"\nlicense="MIT"\n'
SRC = '[sources.s]\nhash="{h}"\nmirrors=["https://e.org/s.tgz"]\n'


@pytest.mark.parametrize(("toml", "kind", "needle"), [
    ('[package]\nversion="1"\n', ProblemKind.MISSING_FIELD, "missing required field 'name'"),
    ('name="x"\n', ProblemKind.MISSING_FIELD, "[package]: missing table"),
    (BASE + '[sources.s]\nmirrors=["https://e.org/s.tgz"]\n', ProblemKind.MISSING_FIELD,
     "[sources.s]: missing required field 'hash'"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\n', ProblemKind.MISSING_FIELD,
     "[sources.s]: missing required field 'mirrors'"),
    (BASE + SRC.format(h="abc"), ProblemKind.BAD_HASH, "[sources.s] hash: must be 64 lowercase hex"),
    (BASE + SRC.format(h="A" * 64), ProblemKind.BAD_HASH, "must be 64 lowercase hex"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\nmirrors=["https://e.org/{verzion}.tgz"]\n',
     ProblemKind.BAD_PLACEHOLDER, "unknown placeholder {verzion}"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\nfile="s.{format}"\nmirrors=["https://e.org/{file}"]\n',
     ProblemKind.BAD_PLACEHOLDER, "unknown placeholder {format}"),
    (BASE + '[sources.s]\nhash="' + "a" * 64 + '"\nversion="2"\nfile="s-{version_major}.tgz"\n'
     'mirrors=["https://e.org/{file}"]\n', ProblemKind.BAD_PLACEHOLDER,
     "{version_major} in the file name of a source with its own version"),
    ('[package]\nname="x"\n[sources.s]\nhash="' + "a" * 64 + '"\nmirrors=["https://e.org/s-{version}.tgz"]\n',
     ProblemKind.BAD_FIELD, "neither the source nor the package has a version"),
    ('[package]\nname="x"\nversion_from="a-nope"\n', ProblemKind.VERSION_FROM,
     "version_from: no package 'a-nope'"),
    ('[package]\nname="x"\nversion=1\n', ProblemKind.BAD_FIELD, "version: must be a string"),
    ('[package]\nname="x"\nsubpackages="y"\n', ProblemKind.BAD_FIELD, "subpackages: must be a list"),
    ('[package]\nname="y"\n', ProblemKind.NAME_MISMATCH, "'y' is not the directory's name 'x'"),
    (BASE + "[sources.s\n", ProblemKind.BAD_TOML, "not valid TOML"),
    (BASE + '[outputs]\n"bin/x" = ["zz", 1]\n', ProblemKind.BAD_FIELD, "[outputs] 'bin/x'"),
])
def test_a_broken_package_is_recorded_and_the_rest_loads(
        tmp_path: Path, toml: str, kind: ProblemKind, needle: str) -> None:
    d = write_package(tmp_path, "a", "x", toml, "FROM scratch\n")
    write_package(tmp_path, "a", "user", BASE.replace('"x"', '"user"'), "FROM stagex/a-x\n")
    write_package(tmp_path, "a", "fine", BASE.replace('"x"', '"fine"'), "FROM scratch\n")
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is kind and problem.severity is Severity.ERROR
    assert problem.file == d / "package.toml" and problem.package == "a-x"
    assert needle in problem.describe()
    with pytest.raises(UnbuildableError) as e:
        tree.get("a-x") if "a-x" not in tree.packages else tree.order(["a-x"])
    assert e.value.problem is problem and e.value.file == str(d / "package.toml")
    # its dependent is blocked, naming the cause; an unrelated package builds
    with pytest.raises(UnbuildableError) as e:
        tree.order(["a-user"])
    assert e.value.via == "a-x" and e.value.problem is problem
    assert tree.blocker("a-user") == ("a-x", problem)
    assert tree.order(["a-fine"]) == ["a-fine"]
    assert tree.buildable() == ["a-fine"]


def test_both_versions_is_a_warning_and_version_from_wins(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "y", BASE.replace('"x"', '"y"').replace('"1"', '"7.2"'),
                  "FROM scratch\n")
    write_package(tmp_path, "a", "x", BASE + 'version_from="a-y"\n', "FROM scratch\n")
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is ProblemKind.BOTH_VERSIONS and problem.severity is Severity.WARNING
    assert tree.get("a-x").version == "7.2"


def test_version_from_a_subpackage(tmp_path: Path) -> None:
    write_package(tmp_path, "core", "llvm", '[package]\nname="llvm"\nversion="18.1"\n'
                  'subpackages=["llvm", "clang"]\n', "FROM scratch AS package-llvm\n"
                  "FROM scratch AS package-clang\n")
    write_package(tmp_path, "pallet", "clang", '[package]\nname="clang"\n'
                  'version_from="core-clang"\n', "FROM stagex/core-clang\n")
    tree = Tree.load(tmp_path)
    assert tree.problems == ()
    assert tree.get("pallet-clang").version == "18.1"
    assert tree.get("pallet-clang").deps == ("core-clang",)


def test_version_from_loop(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", '[package]\nname="x"\nversion_from="a-y"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "y", '[package]\nname="y"\nversion_from="a-x"\n', "FROM scratch\n")
    tree = Tree.load(tmp_path)
    assert {p.kind for p in tree.problems} == {ProblemKind.VERSION_FROM}
    # words: the message names the loop, for people
    assert "version_from loops: a-x -> a-y -> a-x" in tree.broken["a-x"].message


def test_lone_containerfile_or_toml_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "user" / "mesa").mkdir(parents=True)
    (tmp_path / "user" / "mesa" / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "user" / "doc").mkdir(parents=True)
    (tmp_path / "user" / "doc" / "package.toml").write_text('[package]\nname="doc"\n')
    write_package(tmp_path, "a", "x", BASE, "FROM scratch\n")
    tree = Tree.load(tmp_path)
    assert sorted(tree.packages) == ["a-x"]
    assert sorted((p.kind, p.severity) for p in tree.problems) == [
        (ProblemKind.NO_CONTAINERFILE, Severity.WARNING),
        (ProblemKind.NO_PACKAGE_TOML, Severity.WARNING)]
    assert tree.errors() == ()


def test_duplicate_image(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", '[package]\nname="x"\nsubpackages=["y"]\n',
                  "FROM scratch AS package-y\n")
    write_package(tmp_path, "a", "y", '[package]\nname="y"\n', "FROM scratch\n")
    write_package(tmp_path, "a", "z", '[package]\nname="z"\n', "FROM scratch\n")
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is ProblemKind.DUPLICATE_IMAGE
    assert "image a-y" in problem.message  # words: names the image, for people
    assert sorted(tree.packages) == ["a-z"]


def test_missing_dependency_is_clear(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", BASE, "FROM scratch\nCOPY --from=stagex/a-gone /a /a\n")
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is ProblemKind.UNKNOWN_IMAGE and problem.line == 2
    assert problem.describe(tmp_path).startswith("a/x/Containerfile:2: refers to image "
                                                 "'stagex/a-gone'")
    with pytest.raises(UnbuildableError) as raised:
        tree.order(["a-x"])
    assert raised.value.kind is ErrorKind.TREE and raised.value.problem is problem


def test_self_reference(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", '[package]\nname="x"\nsubpackages=["x", "x-dev"]\n',
                  "FROM scratch AS package-x\nFROM stagex/a-x-dev AS package-x-dev\n")
    tree = Tree.load(tmp_path)
    assert [p.kind for p in tree.problems] == [ProblemKind.SELF_REFERENCE]
    assert set(tree.broken) == {"a-x", "a-x-dev"}


def test_cycle_is_clear(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", BASE, "FROM stagex/a-y\n")
    write_package(tmp_path, "a", "y", BASE.replace('"x"', '"y"'), "FROM stagex/a-x\n")
    write_package(tmp_path, "a", "z", BASE.replace('"x"', '"z"'), "FROM stagex/a-x\n")
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is ProblemKind.CYCLE
    assert problem.message == "dependency cycle: a-x -> a-y -> a-x"  # words: the cycle
    assert set(tree.broken) == {"a-x", "a-y"}
    assert tree.blocker("a-z") == ("a-x", problem)
    assert tree.order_all()[-3:] == ["a-x", "a-y", "a-z"]


def test_unknown_package_suggests(tree: Tree) -> None:
    with pytest.raises(RootseedError) as e:
        tree.get("core-gc")
    assert e.value.hint is not None and "core-gcc" in e.value.hint


def test_no_packages_is_an_error(tmp_path: Path) -> None:
    with raises_kind(ErrorKind.TREE):
        Tree.load(tmp_path)


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
    tree = Tree.load(tmp_path)
    [problem] = tree.problems
    assert problem.kind is ProblemKind.PLAN
    assert "not supported for --from" in problem.message  # words: says why, for people
    with pytest.raises(UnbuildableError) as raised:
        tree.order(["a-y"])
    assert raised.value.kind is ErrorKind.TREE and raised.value.problem is problem
    assert tree.order(["a-x"]) == ["a-x"]
