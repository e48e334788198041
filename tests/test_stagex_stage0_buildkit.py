"""StageX's own stage0, built by rootseed from the seed, is StageX's published image.

Needs a StageX checkout (``ROOTSEED_STAGEX_TREE``; CI has none: StageX's files are not
committed here), the stage0 sources (``ROOTSEED_MIRROR``) and BuildKit's reference output.
The image must be ``cee5701e…``, the digest StageX publishes in ``digests/bootstrap.txt``,
and its ``oci-archive`` BuildKit's ``out/stagex-bootstrap-stage0.oci.tar`` byte for byte.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_reference import reference
from rootseed.oci.buildkit.export import write_archive
from rootseed.oci.verified import open_image

PUBLISHED = "sha256:cee5701e9d52177885a7b4149f83a6f825f7840cb8d7d27cda0d8fc1d107367c"

pytestmark = [pytest.mark.stagex_checkout, pytest.mark.mirror]


def test_stagex_stage0_is_stagex_s_published_image(tmp_path: Path) -> None:
    checkout, mirror = os.environ.get("ROOTSEED_STAGEX_TREE"), os.environ.get("ROOTSEED_MIRROR")
    if not checkout or not mirror:
        pytest.skip("set ROOTSEED_STAGEX_TREE=<StageX checkout> and ROOTSEED_MIRROR=<stage0 "
                    "sources> to build StageX's stage0")
    ref = reference()
    assert (Path(checkout) / "digests" / "bootstrap.txt").read_text().split()[0] == \
        PUBLISHED.partition(":")[2]
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "rootseed", "build", "bootstrap-stage0",
                        "--tree", checkout, "--mirror", mirror, "--offline",
                        "--cache-dir", os.environ.get("ROOTSEED_STAGE0_CACHE",
                                                      str(tmp_path / "cache")),
                        "--out", str(out)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    layout = out / "bootstrap-stage0"
    assert open_image(layout).manifest_digest == PUBLISHED
    archive = io.BytesIO()
    write_archive(layout, archive)
    assert archive.getvalue() == (ref / "out" / "stagex-bootstrap-stage0.oci.tar").read_bytes()
