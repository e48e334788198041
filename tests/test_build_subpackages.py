"""Subpackages, as StageX's targets.py makes them: a package.toml listing ``subpackages``
stands for one package per entry (``<stage>-<sub>``, built from the stage ``package-<sub>``
of the shared Containerfile, its own image), referred to as ``<ns>/<stage>-<sub>``; the
directory itself is an image only when listed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from buildtree import BUSYBOX, base_package, write
from clirun import Result, rootseed
from kinds import raises_kind
from rootseed.engine.digests import read_digests
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.errors import ErrorKind
from rootseed.oci import read_image, unpack_image
from rootseed.provenance.statement import PROVENANCE_FILE, read_statement
from rootseed.provenance.trace import trace
from rootseed.tree import ProblemKind, Tree, UnbuildableError

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

# core/lib: three subpackages (lib itself among them), each with its own /which.
LIB_CONTAINERFILE = """\
FROM rs/bootstrap-base AS build
RUN mkdir -p /out/main /out/dev /out/doc && echo main > /out/main/which \\
    && echo dev > /out/dev/which && echo doc > /out/doc/which && echo hdr > /out/dev/lib.h

FROM scratch AS package-lib-dev
COPY --from=build /out/dev /

FROM scratch AS package-lib-doc
COPY --from=build /out/doc /

FROM scratch AS package-lib
COPY --from=build /out/main /
"""

# core-user: FROM one subpackage image, files from the other and from the main image.
USER_CONTAINERFILE = """\
FROM rs/core-lib-dev
COPY --from=rs/core-lib-doc /which /doc-which
COPY --from=rs/core-lib:1.0 /which /main-which
"""


def lib_package(tree: Path, containerfile: str = LIB_CONTAINERFILE,
                subpackages: str = '["lib", "lib-dev", "lib-doc"]') -> None:
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
    assert [r.package for r in results] == ["bootstrap-base", "core-lib", "core-lib-dev",
                                            "core-lib-doc", "core-user"]
    base, lib, dev, doc, user = results
    assert (lib.image, dev.image, doc.image) == (out / "core-lib", out / "core-lib-dev",
                                                 out / "core-lib-doc")
    # three layouts, three distinct digests, each with the files of its own stage
    assert len({lib.manifest_digest, dev.manifest_digest, doc.manifest_digest}) == 3
    for r in (lib, dev, doc):
        assert r.images() == {r.package: (out / r.package, r.manifest_digest)}
        assert read_image(r.image).manifest_digest == r.manifest_digest
    assert files(lib.image, tmp_path / "u-main") == {"which": "main\n"}
    assert files(dev.image, tmp_path / "u-dev") == {"which": "dev\n", "lib.h": "hdr\n"}
    assert files(doc.image, tmp_path / "u-doc") == {"which": "doc\n"}
    # the shared build stage was built once and reused by the other subpackages
    assert sum(r.stages_built.count("build") for r in (lib, dev, doc)) == 1

    # each subpackage image has its own provenance, with the directory's sources/Containerfile
    for r, sub in ((lib, "lib"), (dev, "lib-dev"), (doc, "lib-doc")):
        prov = read_statement(r.image / PROVENANCE_FILE)
        assert prov.package == r.package and prov.subject_name == f"rs/{r.package}"
        assert prov.subject_digest == r.manifest_digest
        # the target is recorded when it is not the file's last stage (package-lib is)
        assert r.record.target == (None if sub == "lib" else f"package-{sub}")
        assert r.record.containerfile_sha256 == lib.record.containerfile_sha256
        assert r.record.sources == lib.record.sources and r.record.version == "1.0"
        assert [p.package for p in r.record.parents] == ["bootstrap-base"]

    # the child gets each image it names, and provenance says so
    assert files(user.image, tmp_path / "u-user") == {
        "which": "dev\n", "lib.h": "hdr\n", "doc-which": "doc\n", "main-which": "main\n"}
    assert sorted((p.package, p.reference, p.manifest_digest) for p in user.record.parents) == [
        ("core-lib", "rs/core-lib:1.0", lib.manifest_digest),
        ("core-lib-dev", "rs/core-lib-dev", dev.manifest_digest),
        ("core-lib-doc", "rs/core-lib-doc", doc.manifest_digest)]

    # trace: child -> subpackage images -> their build parent -> the seed
    node = trace(out, "core-user")
    walked = {n.package: n.digest for n in node.walk()}
    assert walked == {"bootstrap-base": base.manifest_digest, "core-lib": lib.manifest_digest,
                      "core-lib-dev": dev.manifest_digest, "core-lib-doc": doc.manifest_digest,
                      "core-user": user.manifest_digest}
    dev_chain = [n.package for n in trace(out, "core-lib-dev").walk()]
    assert dev_chain == ["bootstrap-base", "core-lib-dev"]
    # a subpackage image replaced by another breaks the chain loudly
    shutil.rmtree(out / "core-lib-dev")
    shutil.copytree(out / "core-lib", out / "core-lib-dev")
    with raises_kind(ErrorKind.PROVENANCE, package="core-user"):
        trace(out, "core-user")


def test_directory_not_listed_is_no_image(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    lib_package(tree, subpackages='["lib-dev", "lib-doc"]')
    loaded = Tree.load(tree)
    assert "core-lib" not in loaded.packages
    # core-user names rs/core-lib:1.0, which no package builds now
    assert [p.kind for p in loaded.problems] == [ProblemKind.UNKNOWN_IMAGE]
    assert loaded.buildable() == ["bootstrap-base", "core-lib-dev", "core-lib-doc"]


def test_second_build_is_cached_and_rewrites_nothing_else(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    b = builder(tree, tmp_path)
    first = b.build(["core-lib-dev"], BuildOptions(progress=False))[-1]
    again = b.build(["core-lib-dev"], BuildOptions(progress=False))[-1]
    assert again.cached and again.stages_built == ()
    assert again.images() == first.images()
    # --target overrides the subpackage's own stage
    target = b.build(["core-lib-dev"], BuildOptions(target="build", progress=False))[-1]
    assert target.record.target == "build"


def test_missing_subpackage_stage_is_a_clear_error(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    lib_package(tree, subpackages='["lib", "lib-dev", "lib-doc", "lib-man"]')
    with raises_kind(ErrorKind.PLAN, package="core-lib-man",
                     file="packages/core/lib/Containerfile"):
        builder(tree, tmp_path).build(["core-lib-man"], BuildOptions(progress=False))
    assert not (tmp_path / "out" / "core-lib-man").exists()


def test_own_subpackage_image_is_refused(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    lib_package(tree, LIB_CONTAINERFILE + "COPY --from=rs/core-lib-doc /which /doc\n")
    with pytest.raises(UnbuildableError) as raised:
        builder(tree, tmp_path).build(["core-lib"], BuildOptions(progress=False))
    assert raised.value.kind is ErrorKind.TREE
    assert (raised.value.name, raised.value.problem.kind) == ("core-lib",
                                                              ProblemKind.SELF_REFERENCE)


def cli(*args: str) -> Result:
    return rootseed(*args)


def test_cli_digests_check_json_and_trace(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    out = tmp_path / "o"
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out", str(out)]
    r = cli("digests", "core-lib", "core-lib-dev", "core-lib-doc", *common)
    assert r.returncode == 0, r.stderr
    hexes = {n: read_image(out / n).manifest_digest.removeprefix("sha256:")
             for n in ("core-lib", "core-lib-dev", "core-lib-doc")}
    assert (tmp_path / "digests" / "core.txt").read_text() == "".join(
        f"{hexes[n]} {n}\n" for n in sorted(hexes))
    assert read_digests(tmp_path / "digests")["core-lib-dev"] == hexes["core-lib-dev"]
    r = cli("build", "core-lib-dev", "core-lib-doc", "--check", "--json", *common)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)["results"]
    assert {v["package"]: v["manifest_digest"] for v in results[1:]} == {
        n: f"sha256:{hexes[n]}" for n in ("core-lib-dev", "core-lib-doc")}
    # a wrong recorded digest of a subpackage image fails the check
    core = tmp_path / "digests" / "core.txt"
    core.write_text(core.read_text().replace(hexes["core-lib-doc"], "0" * 64))
    r = cli("build", "core-lib-doc", "--check", "--json", *common)
    assert r.returncode == 1, r.stderr
    [problem] = json.loads(r.stdout)["check"]  # the --json result says what differs
    assert f"core-lib-doc: built sha256:{hexes['core-lib-doc']}" in problem
    r = cli("trace", "core-lib-doc", *common)
    assert r.returncode == 0, r.stderr
    assert "core-lib-doc" in r.stdout and "bootstrap-base" in r.stdout
