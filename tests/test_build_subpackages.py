"""Subpackages: one extra image per ``[package] subpackages`` entry, built from the stage
``package-<sub>``, referred to by other packages as ``<ns>/<stage>-<sub>``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildtree import BUSYBOX, base_package, write
from rootseed.build.digests import read_digests
from rootseed.build.engine import Builder, BuildOptions
from rootseed.errors import RootseedError
from rootseed.oci import read_image, unpack_image
from rootseed.provenance.statement import PROVENANCE_FILE, read_statement
from rootseed.provenance.trace import trace
from rootseed.tree import Tree

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

# core-lib: the main image (last stage) and two subpackage images, each with its own /which.
LIB_CONTAINERFILE = """\
FROM rs/bootstrap-base AS build
RUN mkdir -p /out/main /out/dev /out/doc && echo main > /out/main/which \\
    && echo dev > /out/dev/which && echo doc > /out/doc/which && echo hdr > /out/dev/lib.h

FROM scratch AS package-lib-dev
COPY --from=build /out/dev /

FROM scratch AS package-lib-doc
COPY --from=build /out/doc /

FROM scratch AS package
COPY --from=build /out/main /
"""

# core-user: FROM one subpackage image, files from the other and from the main image.
USER_CONTAINERFILE = """\
FROM rs/core-lib-dev
COPY --from=rs/core-lib-doc /which /doc-which
COPY --from=rs/core-lib:1.0 /which /main-which
"""


def lib_package(tree: Path, containerfile: str = LIB_CONTAINERFILE,
                subpackages: str = '["lib-dev", "lib-doc"]') -> None:
    d = tree / "core" / "lib"
    write(d / "package.toml", f'''
[package]
name = "lib"
version = "1.0"
description = "a library with subpackages"
license = "MIT"
subpackages = {subpackages}
''')
    write(d / "Containerfile", containerfile)


def user_package(tree: Path) -> None:
    d = tree / "core" / "user"
    write(d / "package.toml", '''
[package]
name = "user"
version = "3.0"
description = "uses subpackage images"
license = "MIT"
''')
    write(d / "Containerfile", USER_CONTAINERFILE)


def make_tree(root: Path) -> Path:
    """bootstrap-base (its source marked as a seed, so trace can end there), core-lib with
    two subpackages, core-user built from them."""
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base = base_package(tree)
    toml = base / "package.toml"
    toml.write_text(toml.read_text().replace("mirrors =", "seed = true\nmirrors ="))
    lib_package(tree)
    user_package(tree)
    return tree


def builder(tree: Path, tmp: Path) -> Builder:
    return Builder(Tree.load(tree), cache_dir=tmp / "cache", out=tmp / "out")


def files(layout: Path, dest: Path) -> dict[str, str]:
    unpack_image(layout, dest)
    return {p.relative_to(dest).as_posix(): p.read_text()
            for p in sorted(dest.rglob("*")) if p.is_file()}


def test_subpackage_images_layouts_provenance_and_trace(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    out = tmp_path / "out"
    results = builder(tree, tmp_path).build(["core-user"], BuildOptions(jobs=2, progress=False))
    assert [r.package for r in results] == ["bootstrap-base", "core-lib", "core-user"]
    base, lib, user = results
    assert list(lib.subpackages) == ["core-lib-dev", "core-lib-doc"]
    dev, doc = lib.subpackages["core-lib-dev"], lib.subpackages["core-lib-doc"]
    assert (dev.subpackage, doc.subpackage) == ("lib-dev", "lib-doc")
    assert (lib.image, dev.image, doc.image) == (out / "core-lib", out / "core-lib-dev",
                                                 out / "core-lib-doc")
    # three layouts, three distinct digests, each with the files of its own stage
    digests = {lib.manifest_digest, dev.manifest_digest, doc.manifest_digest}
    assert len(digests) == 3
    for name, (layout, digest) in lib.images().items():
        assert layout == out / name and read_image(layout).manifest_digest == digest
    assert files(lib.image, tmp_path / "u-main") == {"which": "main\n"}
    assert files(dev.image, tmp_path / "u-dev") == {"which": "dev\n", "lib.h": "hdr\n"}
    assert files(doc.image, tmp_path / "u-doc") == {"which": "doc\n"}
    assert not base.subpackages and not user.subpackages
    # the build stage was built once and reused by the subpackage targets
    assert lib.stages_built.count("build") == 1
    assert sorted(lib.stages_built) == ["build", "package", "package-lib-dev", "package-lib-doc"]

    # each subpackage image has its own provenance, with its package's sources/Containerfile
    for sub in (dev, doc):
        prov = read_statement(sub.image / PROVENANCE_FILE)
        assert prov.package == sub.name and prov.subject_name == f"rs/{sub.name}"
        assert prov.subject_digest == sub.manifest_digest
        assert sub.record.target == f"package-{sub.subpackage}"
        assert sub.record.containerfile_sha256 == lib.record.containerfile_sha256
        assert sub.record.sources == lib.record.sources and sub.record.version == "1.0"
        assert [p.package for p in sub.record.parents] == ["bootstrap-base"]
    assert lib.record.package == "core-lib" and lib.record.target is None

    # the child gets the subpackage images, not the main image, and provenance says so
    assert files(user.image, tmp_path / "u-user") == {
        "which": "dev\n", "lib.h": "hdr\n", "doc-which": "doc\n", "main-which": "main\n"}
    assert sorted((p.package, p.reference, p.manifest_digest) for p in user.record.parents) == [
        ("core-lib", "rs/core-lib:1.0", lib.manifest_digest),
        ("core-lib-dev", "rs/core-lib-dev", dev.manifest_digest),
        ("core-lib-doc", "rs/core-lib-doc", doc.manifest_digest)]
    prov = read_statement(user.image / PROVENANCE_FILE)
    assert {p.package: p.digest for p in prov.parents} == {
        "core-lib": lib.manifest_digest, "core-lib-dev": dev.manifest_digest,
        "core-lib-doc": doc.manifest_digest}

    # trace: child -> subpackage images -> their package's build parent -> the seed
    node = trace(out, "core-user")
    walked = {n.package: n.digest for n in node.walk()}
    assert walked == {"bootstrap-base": base.manifest_digest, "core-lib": lib.manifest_digest,
                      "core-lib-dev": dev.manifest_digest, "core-lib-doc": doc.manifest_digest,
                      "core-user": user.manifest_digest}
    dev_chain = [n.package for n in trace(out, "core-lib-dev").walk()]
    assert dev_chain == ["bootstrap-base", "core-lib-dev"]
    # a subpackage image replaced by the main image breaks the chain loudly
    shutil.rmtree(out / "core-lib-dev")
    shutil.copytree(out / "core-lib", out / "core-lib-dev")
    with pytest.raises(RootseedError, match="core-user: parent core-lib-dev does not match"):
        trace(out, "core-user")


def test_second_build_is_cached_and_rewrites_nothing_else(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    b = builder(tree, tmp_path)
    first = b.build(["core-lib"], BuildOptions(progress=False))[-1]
    again = b.build(["core-lib"], BuildOptions(progress=False))[-1]
    assert again.cached and again.stages_built == ()
    assert again.images() == first.images()
    # --target builds that one stage only: no subpackage images with it
    target = b.build(["core-lib"], BuildOptions(target="build", progress=False))[-1]
    assert target.subpackages == {}


def test_missing_subpackage_stage_is_a_clear_error(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    lib_package(tree, subpackages='["lib-dev", "lib-doc", "lib-man"]')
    with pytest.raises(RootseedError) as e:
        builder(tree, tmp_path).build(["core-lib"], BuildOptions(progress=False))
    assert ("core-lib: packages/core/lib/Containerfile has no stage 'package-lib-man' for "
            "subpackage 'lib-man'") in e.value.message
    assert e.value.hint is not None and "FROM ... AS package-lib-man" in e.value.hint
    assert not (tmp_path / "out" / "core-lib").exists()
    assert not (tmp_path / "out" / "core-lib-dev").exists()


def test_own_subpackage_image_is_refused(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    lib_package(tree, LIB_CONTAINERFILE + "COPY --from=rs/core-lib-doc /which /doc\n")
    with pytest.raises(RootseedError, match="is a subpackage of this package itself"):
        builder(tree, tmp_path).build(["core-lib"], BuildOptions(progress=False))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rootseed", *args], capture_output=True,
                          text=True, check=False)


def test_cli_digests_check_json_and_trace(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    out = tmp_path / "o"
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    r = cli("digests", "core-lib", *common)
    assert r.returncode == 0, r.stderr
    hexes = {n: read_image(out / n).manifest_digest.removeprefix("sha256:")
             for n in ("core-lib", "core-lib-dev", "core-lib-doc")}
    assert (tmp_path / "digests" / "core.txt").read_text() == "".join(
        f"{hexes[n]} {n}\n" for n in sorted(hexes))
    assert read_digests(tmp_path / "digests")["core-lib-dev"] == hexes["core-lib-dev"]
    r = cli("build", "core-lib", "--check", "--json", *common)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)["results"][-1]
    assert {n: v["manifest_digest"] for n, v in result["subpackages"].items()} == {
        n: f"sha256:{hexes[n]}" for n in ("core-lib-dev", "core-lib-doc")}
    # a wrong recorded digest of a subpackage image fails the check
    core = tmp_path / "digests" / "core.txt"
    core.write_text(core.read_text().replace(hexes["core-lib-doc"], "0" * 64))
    r = cli("build", "core-lib", "--check", *common)
    assert r.returncode != 0 and "digest check failed" in r.stderr
    assert f"core-lib-doc: built sha256:{hexes['core-lib-doc']}" in r.stderr
    r = cli("trace", "core-lib-doc", *common)
    assert r.returncode == 0, r.stderr
    assert "core-lib-doc" in r.stdout and "bootstrap-base" in r.stdout
