"""Our layouts as other OCI tools see them: skopeo inspects, umoci unpacks identically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocitree import describe, make_tree
from rootseed.oci import ImageConfig, read_image, unpack_image, write_image

REF = "org.opencontainers.image.ref.name"
CONFIG = ImageConfig(env=("PATH=/bin",), cmd=("/bin/sh",), labels={"k": "v"})


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    write_image(tmp_path / "img", make_tree(tmp_path / "rootfs"), CONFIG, {REF: "1.2.3"})
    return tmp_path / "img"


def test_skopeo_inspect(layout: Path) -> None:
    skopeo = need("skopeo")
    image = read_image(layout)
    for ref in (f"oci:{layout}", f"oci:{layout}:1.2.3"):
        r = subprocess.run([skopeo, "inspect", ref], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == image.manifest_digest
        assert (info["Architecture"], info["Os"]) == ("386", "linux")
        assert info["Created"] == "1970-01-01T00:00:01Z"
        assert info["Layers"] == [d["digest"] for d in image.manifest["layers"]]
        assert info["Env"] == ["PATH=/bin"] and info["Labels"] == {"k": "v"}
    r = subprocess.run([skopeo, "inspect", "--raw", f"oci:{layout}"], capture_output=True,
                       timeout=120)
    assert r.returncode == 0
    assert json.loads(r.stdout) == image.manifest


@pytest.mark.parametrize("rootless", [False, True])
def test_umoci_unpack_matches_ours(layout: Path, tmp_path: Path, rootless: bool) -> None:
    umoci = need("umoci")
    if not rootless and os.geteuid() != 0:
        pytest.skip("umoci unpack without --rootless needs root")
    bundle = tmp_path / "bundle"
    r = subprocess.run([umoci, "unpack", *(["--rootless"] if rootless else []),
                        "--image", f"{layout}:1.2.3", str(bundle)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    unpack_image(layout, tmp_path / "ours")
    theirs = describe(bundle / "rootfs")
    assert theirs == describe(tmp_path / "ours")
    assert theirs == describe(tmp_path / "rootfs")
    # byte for byte: every regular file
    for rel, entry in theirs.items():
        if entry[0] == "file":
            assert (bundle / "rootfs" / rel).read_bytes() == \
                (tmp_path / "ours" / rel).read_bytes()
