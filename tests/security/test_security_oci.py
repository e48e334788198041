"""Altered image layouts: every reader refuses them, naming the blob (issue #12, item 3).

Two images are signed by two test keys (quorum 2). Then one blob of the first image is
flipped, replaced by the other image's blob, or truncated; ``verify`` (and ``sign``,
``challenge``'s reader, unpack) must refuse, naming the blob, with no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from kinds import cli_error, raises_kind
from rootseed.errors import ErrorKind
from rootseed.oci import BlobError, ImageConfig, LayoutError, open_image, unpack_image, write_image
from rootseed.oci.verified import BlobProblem
from trust_helpers import Keys, gpg

REGISTRY = "evil"
CONFIG = ImageConfig(env=("PATH=/bin",))


def _image(out: Path, name: str, text: bytes) -> str:
    rootfs = out.parent / f"rootfs-{name}"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "tool").write_bytes(text)
    return write_image(out / name, rootfs, CONFIG, {})


class Signed:
    def __init__(self, tmp: Path, keys: Keys, home: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.keys, self.home, self.capsys = tmp, keys, home, capsys
        self.out = tmp / "out"
        self.sigs = tmp / "signatures"
        self.a = _image(self.out, "test-a", b"genuine tool\n")
        self.b = _image(self.out, "test-b", b"other tool\n")
        self.keyring = tmp / "keyring.gpg"
        self.keyring.write_bytes(gpg(home, "--export", keys.alice, keys.bob))
        for pkg in ("test-a", "test-b"):
            for key in (keys.alice, keys.bob):
                code, _, err = self.run("sign", pkg, "--key", key, "--gnupghome", str(home),
                                        "--signatures", str(self.sigs), "--registry", REGISTRY,
                                        "--tag", "1.0", "--out", str(self.out))
                assert code == 0, err

    def run(self, *args: str) -> tuple[int, str, str]:
        r = run_cli(*args)
        return r.returncode, r.stdout, r.stderr

    def verify(self, pkg: str = "test-a", *extra: str) -> tuple[int, str, str]:
        return self.run("verify", pkg, "--keyring", str(self.keyring), "--quorum", "2",
                        "--signatures", str(self.sigs), "--registry", REGISTRY,
                        "--out", str(self.out), *extra)

    def blob(self, pkg: str, role: str) -> Path:
        image = open_image(self.out / pkg)
        digest = {"manifest": image.manifest_digest, "config": image.config_blob.digest,
                  "layer": image.layers[0].digest}[role]
        return self.out / pkg / "blobs" / "sha256" / digest.removeprefix("sha256:")


@pytest.fixture
def signed(tmp_path: Path, keys: Keys, gnupghome: Path,
           capsys: pytest.CaptureFixture[str]) -> Signed:
    return Signed(tmp_path, keys, gnupghome, capsys)


def test_untouched_images_pass(signed: Signed) -> None:
    assert signed.verify("test-a")[0] == 0
    assert signed.verify("test-b")[0] == 0


@pytest.mark.parametrize("role", ["manifest", "config", "layer"])
@pytest.mark.parametrize("attack", ["flip", "swap", "truncate", "symlink", "fifo"])
def test_altered_blob_is_refused_by_verify_naming_it(signed: Signed, role: str,
                                                      attack: str) -> None:
    target = signed.blob("test-a", role)
    other = signed.blob("test-b", role)
    data = bytearray(target.read_bytes())
    target.unlink()
    if attack == "flip":
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif attack == "swap":
        shutil.copyfile(other, target)
    elif attack == "truncate":
        target.write_bytes(bytes(data[:-1]))
    elif attack == "symlink":
        os.symlink(other, target)
    else:
        os.mkfifo(target)  # must not hang the reader
    code, out, _ = signed.verify("test-a", "--json")
    error = json.loads(out)["error"]
    named = "layer 0" if role == "layer" else role
    assert (code, error["kind"], error["role"], error["digest"]) == (
        1, "layout", named, f"sha256:{target.name}")


def test_swapped_index_points_at_an_unsigned_digest(signed: Signed) -> None:
    """index.json of test-a swapped to test-b's manifest (blobs copied): test-b's digest is
    not signed *as test-a*, so verify fails; nothing from index.json is taken on trust."""
    a, b = signed.out / "test-a", signed.out / "test-b"
    for blob in (b / "blobs" / "sha256").iterdir():
        shutil.copyfile(blob, a / "blobs" / "sha256" / blob.name)
    shutil.copyfile(b / "index.json", a / "index.json")
    code, out, _ = signed.verify("test-a")
    assert code == 1 and "FAIL" in out


def test_index_descriptor_lies_about_the_size(signed: Signed) -> None:
    index = json.loads((signed.out / "test-a" / "index.json").read_text())
    index["manifests"][0]["size"] += 1
    (signed.out / "test-a" / "index.json").write_text(json.dumps(index))
    code, out, _ = signed.verify("test-a", "--json")
    error = json.loads(out)["error"]
    assert (code, error["kind"], error["role"], error["problem"]) == (1, "layout", "manifest",
                                                                       "SIZE")


def test_sign_refuses_an_altered_layer(signed: Signed) -> None:
    layer = signed.blob("test-a", "layer")
    layer.write_bytes(layer.read_bytes()[:-3] + b"\0\0\0")
    before = sorted(p.name for p in signed.sigs.rglob("*"))
    code, out, _ = signed.run("sign", "test-a", "--key", signed.keys.mallory, "--gnupghome",
                              str(signed.home), "--signatures", str(signed.sigs), "--registry",
                              REGISTRY, "--tag", "1.0", "--out", str(signed.out), "--json")
    error = json.loads(out)["error"]
    assert (code, error["kind"], error["role"]) == (1, "layout", "layer 0")
    assert sorted(p.name for p in signed.sigs.rglob("*")) == before


def test_reader_errors_are_typed(tmp_path: Path) -> None:
    digest = _image(tmp_path / "out", "x", b"data")
    layout = tmp_path / "out" / "x"
    with pytest.raises(LayoutError):
        open_image(tmp_path / "nothing")
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    blob.write_bytes(blob.read_bytes().replace(b"layers", b"Layers"))
    with pytest.raises(BlobError) as e:
        open_image(layout)
    assert e.value.role == "manifest" and e.value.digest == digest
    assert e.value.problem is BlobProblem.DIGEST
    with pytest.raises(BlobError):
        unpack_image(layout, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()


def test_blob_name_cannot_escape_blobs_dir(tmp_path: Path) -> None:
    _image(tmp_path / "out", "x", b"data")
    layout = tmp_path / "out" / "x"
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))
    with raises_kind(ErrorKind.LAYOUT, LayoutError):
        open_image(layout)


# -- a consistent but hostile layout: digests match, the layer's members attack ----------

def _hostile_layout(layout: Path, layer: bytes) -> None:
    import hashlib

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    layer_digest = put(layer)
    config = json.dumps({"architecture": "386", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = put(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}]}).encode()
    manifest_digest = put(manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": len(manifest)}]}))


@pytest.mark.parametrize("attack", ["hardlink-absolute", "hardlink-dotdot",
                                    "hardlink-through-symlink", "file-through-symlink",
                                    "member-dotdot", "device"])
def test_unpack_of_a_hostile_layer_never_reaches_the_host(tmp_path: Path, attack: str) -> None:
    import tarfile

    from hostile import Canaries, link, reg, special, tar_bytes
    from rootseed.errors import RootseedError

    c = Canaries(tmp_path)
    members = {
        "hardlink-absolute": [link("evil", str(c.secret), hard=True)],
        "hardlink-dotdot": [link("evil", "../" * 12 + str(c.secret).lstrip("/"), hard=True)],
        "hardlink-through-symlink": [link("lnk", str(c.dir)),
                                     link("evil", "lnk/secret", hard=True)],
        "file-through-symlink": [link("lnk", str(c.dir)), reg("lnk/pwned")],
        "member-dotdot": [reg("../" * 12 + str(c.dir).lstrip("/") + "/pwned")],
        "device": [special("null", tarfile.CHRTYPE)],
    }[attack]
    layout = tmp_path / "layout"
    _hostile_layout(layout, tar_bytes(members))
    open_image(layout)  # the digests are all consistent: only the content is hostile
    with pytest.raises(RootseedError):
        unpack_image(layout, tmp_path / "rootfs")
    assert not (tmp_path / "rootfs").exists()
    c.assert_unchanged()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_challenge_refuses_an_altered_recorded_image(tmp_path: Path) -> None:
    from hostile import HostileTree, rootseed

    tree = HostileTree(tmp_path)
    tree.package("a", "FROM scratch\nCOPY note.txt /\n", files={"note.txt": b"hi\n"})
    assert tree.build("test-a").returncode == 0
    layer = open_image(tree.out / "test-a").layers[0].path
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0x01
    layer.write_bytes(bytes(data))
    proc = rootseed("challenge", "test-a", "--tree", str(tree.root), "--cache-dir",
                    str(tree.cache), "--out", str(tree.out), "--offline", "--json")
    cli_error(proc, ErrorKind.LAYOUT, exit_code=1, role="layer 0",
              digest=f"sha256:{layer.name}")
