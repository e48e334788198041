"""Red-team: deeply nested JSON in hostile layouts and cache entries (issue #12, "no
traceback and no exit 70 on any input").

``json.loads`` raises :class:`RecursionError` (not :class:`ValueError`) on deeply nested
arrays; a reader that only catches ``ValueError`` then ends in "internal error" (exit 70).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree, rootseed
from kinds import raises_kind
from rootseed.errors import ErrorKind
from rootseed.oci import ImageConfig, LayoutError, open_image, write_image
from rootseed.oci.verified import BlobError, BlobProblem

DEEP = b"[" * 200_000 + b"]" * 200_000


def _image(tmp: Path) -> Path:
    rootfs = tmp / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "tool").write_bytes(b"tool\n")
    write_image(tmp / "out" / "x", rootfs, ImageConfig(env=("PATH=/bin",)), {})
    return tmp / "out" / "x"


def test_deep_index_json_is_a_layout_error(tmp_path: Path) -> None:
    layout = _image(tmp_path)
    (layout / "index.json").write_bytes(DEEP)
    with raises_kind(ErrorKind.LAYOUT, LayoutError):
        open_image(layout)


def test_deep_manifest_blob_is_a_blob_error(tmp_path: Path) -> None:
    """A manifest that hashes right (the attacker wrote the whole layout) but nests deep."""
    layout = _image(tmp_path)
    digest = hashlib.sha256(DEEP).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(DEEP)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=f"sha256:{digest}", size=len(DEEP))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(BlobError) as e:
        open_image(layout)
    assert e.value.role == "manifest" and e.value.problem is BlobProblem.MALFORMED


def test_deep_stage_json_in_the_cache_is_a_miss(tmp_path: Path) -> None:
    """A poisoned cache entry's stage.json nests deep: the next build treats it as a miss
    (rebuilds), no internal error, host unchanged."""
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    first = tree.build("test-plain")
    assert first.returncode == 0, first.stderr
    entries = list((tree.cache / "builds").glob("*/stage.json"))
    assert entries
    for entry in entries:
        entry.write_bytes(DEEP)
    again = tree.build("test-plain")
    assert again.returncode == 0, again.stderr
    canaries.assert_unchanged()


@pytest.mark.parametrize("payload", [DEEP, b"[" + b"9" * 5000 + b"]"],
                         ids=["deep", "huge-number"])
@pytest.mark.parametrize("name", ["challenge.json", "crosscheck.json"])
def test_report_survives_hostile_json_in_out(tmp_path: Path, payload: bytes,
                                             name: str) -> None:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    assert tree.build("test-plain").returncode == 0
    (tree.out / "test-plain" / name).write_bytes(payload)
    page = tmp_path / "report.html"
    proc = rootseed("report", "-o", str(page), "--tree", str(tree.root), "--out",
                    str(tree.out), "--cache-dir", str(tree.cache))
    assert proc.returncode == 0, proc.stderr
    assert page.is_file()
