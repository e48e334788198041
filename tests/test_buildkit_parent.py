"""A StageX package built FROM another package's image: the parent's blobs, reused."""

from __future__ import annotations

from pathlib import Path

from rootseed.engine.engine import Builder, BuildOptions
from rootseed.oci.verified import open_image
from rootseed.tree import Tree


def write_package(root: Path, name: str, containerfile: str) -> None:
    package = root / "packages" / "test" / name
    package.mkdir(parents=True)
    (package / "Containerfile").write_text(containerfile)
    (package / "data").write_text(name)
    (package / "package.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "1.0"\ndescription = "x"\nlicense = "MIT"\n'
        'platforms = ["linux/amd64"]\n')


def test_child_image_reuses_the_parent_blobs_and_history(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write_package(root, "base", "FROM scratch\nCOPY data /base/data\nENV A=1\n")
    write_package(root, "child", "FROM stagex/test-base\nCOPY data /child/data\n"
                                 "WORKDIR /child\n")
    with Builder(Tree.load(root), cache_dir=tmp_path / "cache", out=tmp_path / "out") as b:
        results = {r.package: r for r in b.build(["test-child"], BuildOptions(
            progress=False, snapshots="overlay"))}
    base = open_image(results["test-base"].image)
    child = open_image(results["test-child"].image)
    assert [x.digest for x in child.layers[:1]] == [x.digest for x in base.layers]
    assert len(child.layers) == 3  # the base's COPY, then COPY and WORKDIR /child
    assert child.manifest["layers"][0] == base.manifest["layers"][0]
    history = [h["created_by"] for h in child.config_json["history"]]
    assert history == ["COPY data /base/data # buildkit", "ENV A=1",
                       "COPY data /child/data # buildkit", "WORKDIR /child"]
    assert child.config_json["config"]["Env"][-1] == "A=1"
    assert child.config_json["config"]["WorkingDir"] == "/child"


def test_two_packages_with_the_same_stage_get_their_own_names(tmp_path: Path) -> None:
    """The stage entry (and its cached image) is shared by key; BuildKit's image names
    the package, so the second package's image is written again, with its name."""
    root = tmp_path / "tree"
    for name in ("one", "two"):
        # a heredoc: the step reads no context, so both stages have one key
        write_package(root, name, "FROM scratch\nCOPY <<EOF /data\nsame\nEOF\n")
        (root / "packages" / "test" / name / "package.toml").write_text(
            '[package]\nname = "x"\nversion = "1.0"\ndescription = "x"\nlicense = "MIT"\n'
            'platforms = ["linux/amd64"]\n'.replace('"x"\nversion', f'"{name}"\nversion', 1))
    with Builder(Tree.load(root), cache_dir=tmp_path / "cache", out=tmp_path / "out") as b:
        for name in ("one", "two", "one"):
            result, = b.build([f"test-{name}"], BuildOptions(progress=False,
                                                             snapshots="overlay"))
            image = open_image(result.image)
            assert image.index_entry["annotations"]["io.containerd.image.name"] == \
                f"docker.io/stagex/test-{name}:1.0"
            assert image.manifest["annotations"][
                "containerd.io/distribution.source.docker.io"] == f"stagex/test-{name}"
