"""The planner as the tree and the builder call it: one platform, one set of build args."""

from __future__ import annotations

from pathlib import Path

from rootseed.plan import (
    DEFAULT_PLATFORM,
    ImageRef,
    Platform,
    image_references,
    package_platform,
    plan_package,
)
from rootseed.tree import Tree
from treegen import write_package


def toml(name: str, platforms: str = "") -> str:
    return (f'[package]\nname = "{name}"\nversion = "1.0"\ndescription = "d"\n'
            f'license = "MIT"\n{platforms}\n[sources.src]\nhash = "{"a" * 64}"\n'
            'mirrors = ["https://example.org/src-{version}.tar.gz"]\n')


def make(root: Path) -> Path:
    for arch in ("386", "amd64"):
        write_package(root, "core", f"base-{arch}", toml(f"base-{arch}"), "FROM scratch\n")
    text = ("ARG TARGETARCH\nFROM stagex/core-base-${TARGETARCH}\nARG SRC_SOURCE\n"
            "COPY fetch/${SRC_SOURCE} /src/\n")
    write_package(root, "core", "i386", toml("i386", 'platforms = ["linux/386"]'), text)
    write_package(root, "core", "plain", toml("plain"), text)
    return root


def test_tree_scan_and_builder_plan_use_the_package_platform(tmp_path: Path) -> None:
    # before one planner, the tree scan expanded TARGETARCH as amd64 and the builder as 386
    tree = Tree.load(make(tmp_path))
    i386, plain = tree.get("core-i386"), tree.get("core-plain")
    assert package_platform(i386) == Platform("linux", "386")
    assert package_platform(plain) == DEFAULT_PLATFORM == Platform("linux", "amd64")
    assert i386.deps == ("core-base-386",)
    assert plain.deps == ("core-base-amd64",)
    assert plan_package(i386).get(0).base == ImageRef("stagex/core-base-386")
    assert image_references(i386) == (("stagex/core-base-386", 2),)


def test_stagex_build_args_and_overrides_reach_the_plan(tmp_path: Path) -> None:
    tree = Tree.load(make(tmp_path))
    package = tree.get("core-plain")
    copy = plan_package(package).get(0).steps[-1]
    assert copy.undeclared == frozenset()
    assert "sources=(FetchPath(path='src-1.0.tar.gz')" in repr(copy)
    overridden = plan_package(package, build_args={"SRC_SOURCE": "other.tar.gz",
                                                   "TARGETARCH": "386"})
    assert "FetchPath(path='other.tar.gz')" in repr(overridden.get(0).steps[-1])
    assert overridden.get(0).base == ImageRef("stagex/core-base-386")
    # --build-arg reaches the tree's dependency scan too
    assert Tree.load(tmp_path, build_args={"TARGETARCH": "386"}).get("core-plain").deps == (
        "core-base-386",)
