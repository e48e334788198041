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

from rootseed.cli import main
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
        self.capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err and code != 70, captured.err
        return code, captured.out, captured.err

    def verify(self, pkg: str = "test-a") -> tuple[int, str, str]:
        return self.run("verify", pkg, "--keyring", str(self.keyring), "--quorum", "2",
                        "--signatures", str(self.sigs), "--registry", REGISTRY,
                        "--out", str(self.out))

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
    code, out, err = signed.verify("test-a")
    assert code == 1
    assert "PASS" not in out
    named = "layer 0" if role == "layer" else role
    assert f"{named} blob sha256:{target.name}" in err.replace("\n", "")


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
    code, _, err = signed.verify("test-a")
    assert code == 1 and "manifest blob" in err


def test_sign_refuses_an_altered_layer(signed: Signed) -> None:
    layer = signed.blob("test-a", "layer")
    layer.write_bytes(layer.read_bytes()[:-3] + b"\0\0\0")
    before = sorted(p.name for p in signed.sigs.rglob("*"))
    code, _, err = signed.run("sign", "test-a", "--key", signed.keys.mallory, "--gnupghome",
                              str(signed.home), "--signatures", str(signed.sigs), "--registry",
                              REGISTRY, "--tag", "1.0", "--out", str(signed.out))
    assert code == 1 and "layer 0 blob" in err
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
    with pytest.raises(LayoutError, match="not a sha256 digest"):
        open_image(layout)
