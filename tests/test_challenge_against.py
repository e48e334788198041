"""``rootseed challenge PKG --against IMAGE`` with BuildKit's reference outputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from buildkit_reference import archive_files, build_case, reference


def challenge(tree_out: Path, package: str, against: Path) -> tuple[int, dict[str, object]]:
    r = subprocess.run([sys.executable, "-m", "rootseed", "challenge", package, "--tree",
                        str(tree_out.parent / "tree"), "--out", str(tree_out), "--cache-dir",
                        str(tree_out.parent / "cache"), "--against", str(against), "--json"],
                       capture_output=True, text=True, check=False)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tampered_layout(archive: Path, dest: Path, layer: int, path: str, content: bytes) -> None:
    """BuildKit's image with one file of one layer changed, digests made consistent (a
    valid image someone else could have published)."""
    files = archive_files(archive)

    def blob(digest: str) -> bytes:
        return files["blobs/sha256/" + digest.partition(":")[2]]

    index = json.loads(files["index.json"])
    inner = json.loads(blob(index["manifests"][0]["digest"]))
    manifest = json.loads(blob(inner["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    old = gzip.decompress(blob(manifest["layers"][layer]["digest"]))
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(old)) as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            if m.name == path:
                data, m.size = content, len(content)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    tar = out.getvalue()
    layer_blob = gzip.compress(tar, mtime=0)
    config["rootfs"]["diff_ids"][layer] = _sha(tar)
    config_blob = json.dumps(config).encode()
    manifest["layers"][layer].update(digest=_sha(layer_blob), size=len(layer_blob))
    manifest["config"].update(digest=_sha(config_blob), size=len(config_blob))
    manifest_blob = json.dumps(manifest).encode()
    inner["manifests"][0].update(digest=_sha(manifest_blob), size=len(manifest_blob))
    inner_blob = json.dumps(inner).encode()
    index["manifests"][0].update(digest=_sha(inner_blob), size=len(inner_blob))
    (dest / "blobs" / "sha256").mkdir(parents=True)
    for name, data in files.items():
        if name.startswith("blobs/"):
            (dest / name).write_bytes(data)
    for data in (layer_blob, config_blob, manifest_blob, inner_blob):
        (dest / "blobs" / "sha256" / _sha(data).partition(":")[2]).write_bytes(data)
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_bytes(files["oci-layout"])


def test_buildkit_s_image_matches_the_local_build(tmp_path: Path) -> None:
    layout = build_case(tmp_path, "layers")
    code, result = challenge(layout.parent, "test-layers",
                             reference() / "out" / "layers.oci.tar")
    assert (code, result["verdict"], result["first_difference"]) == (0, "identical", None)
    assert result["theirs_digest"] == (reference() / "out" / "layers.digest").read_text().strip()


def test_a_changed_file_is_named_with_its_layer(tmp_path: Path) -> None:
    layout = build_case(tmp_path, "layers")
    other = tmp_path / "other"
    tampered_layout(reference() / "out" / "layers.oci.tar", other, 2, "work/dir/b", b"B\n")
    code, result = challenge(layout.parent, "test-layers", other)
    assert code == 2 and result["verdict"] == "differs"
    first = result["first_difference"]
    assert isinstance(first, dict)
    assert (first["where"], first["path"], first["what"]) == ("layer 2", "work/dir/b", "content")
