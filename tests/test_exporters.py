"""The image exporter is a part of its own: the builder takes any ImageExporter, caches
each exporter's layouts apart (named by a digest of the exporter's code), and publishes
what the exporter wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.export import SquashedExporter, layout_name
from rootseed.engine.interface import ImageRequest
from rootseed.errors import RootseedError
from rootseed.oci import read_image, write_image
from rootseed.tree import Tree


class LabelledExporter:
    """A second exporter: today's single layer, with one more annotation."""

    name = "labelled"

    def __init__(self) -> None:
        self.calls = 0

    def export(self, request: ImageRequest, layout_dir: Path) -> str:
        self.calls += 1
        return write_image(layout_dir, request.rootfs, request.config,
                           {**request.annotations, "org.example.exporter": self.name},
                           epoch=request.epoch)


def _tree(root: Path) -> Path:
    (root / "rootseed.toml").parent.mkdir(parents=True)
    (root / "rootseed.toml").write_text('[tree]\nnamespace = "rs"\n')
    pkg = root / "test" / "files"
    pkg.mkdir(parents=True)
    (pkg / "package.toml").write_text('[package]\nname = "files"\nversion = "1"\n'
                                      'description = "d"\nlicense = "MIT"\n')
    (pkg / "Containerfile").write_text("FROM scratch\nCOPY f /f\n")
    (pkg / "f").write_text("data\n")
    return root


def test_a_second_exporter_plugs_in_and_is_cached_apart(tmp_path: Path) -> None:
    tree = Tree.load(_tree(tmp_path / "tree"))
    options = BuildOptions(progress=False, snapshots="copy")
    with Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out") as builder:
        [plain] = builder.build(["test-files"], options)
    exporter = LabelledExporter()
    with Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out2",
                 exporter=exporter) as builder:
        [labelled] = builder.build(["test-files"], options)
        [again] = builder.build(["test-files"], options)
    assert exporter.calls == 1  # the second build found its layout in the cache
    assert again.manifest_digest == labelled.manifest_digest != plain.manifest_digest
    image = read_image(labelled.image)
    assert image.manifest["annotations"]["org.example.exporter"] == "labelled"
    name = layout_name(exporter)
    assert name.startswith("image-labelled-") and name != layout_name(SquashedExporter())
    assert list((tmp_path / "cache" / "builds").glob(f"*/{name}/index.json"))
    assert list((tmp_path / "cache" / "builds").glob("*/image/index.json"))  # kept too


def test_an_exporter_name_cannot_be_a_path() -> None:
    bad = LabelledExporter()
    bad.name = "../x"
    with pytest.raises(RootseedError):
        layout_name(bad)
