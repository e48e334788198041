"""Deterministic layers and image layouts: digests, round trips, safety."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from kinds import raises_kind
from ocitree import ENTRIES, describe, make_tree
from rootseed.console import canonical_json
from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci import ImageConfig, manifest_digest, read_image, unpack_image, write_image
from rootseed.oci.digest import sha256_bytes
from rootseed.oci.entries import UnsupportedEntry
from rootseed.oci.layer import write_layer
from rootseed.oci.unpack import UnpackError
from rootseed.oci.verified import BlobError, BlobProblem, LayoutError

REF = "org.opencontainers.image.ref.name"
CONFIG = ImageConfig(env=("PATH=/bin", "LANG=C"), entrypoint=("/bin/sh",), cmd=("-c", "true"),
                     working_dir="/src", user="0:0", labels={"b": "2", "a": "1"})


def layer_bytes(rootfs: Path, epoch: int = 1) -> bytes:
    buf = io.BytesIO()
    write_layer(rootfs, buf, epoch=epoch)
    return buf.getvalue()


def members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return tar.getmembers()


# -- determinism --------------------------------------------------------------------------------

def test_same_content_same_digests(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", seed=1, umask=0o022, mtime_base=1_600_000_000)
    two = make_tree(tmp_path / "elsewhere" / "two", seed=2, umask=0o077,
                    mtime_base=1_700_000_000, owner=1234 if os.geteuid() == 0 else None)
    assert layer_bytes(one) == layer_bytes(two)
    d1 = write_image(tmp_path / "out1" / "img", one, CONFIG, {REF: "1.0"})
    d2 = write_image(tmp_path / "out2" / "other-name", two, CONFIG, {REF: "1.0"})
    assert d1 == d2
    files1 = sorted(p.relative_to(tmp_path / "out1" / "img") for p in
                    (tmp_path / "out1" / "img").rglob("*"))
    files2 = sorted(p.relative_to(tmp_path / "out2" / "other-name") for p in
                    (tmp_path / "out2" / "other-name").rglob("*"))
    assert files1 == files2
    for rel in files1:
        a, b = tmp_path / "out1" / "img" / rel, tmp_path / "out2" / "other-name" / rel
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), rel


@pytest.mark.parametrize("change", ["content", "mode", "symlink", "name", "hardlink"])
def test_any_content_change_changes_digest(tmp_path: Path, change: str) -> None:
    base = make_tree(tmp_path / "base")
    other = make_tree(tmp_path / "other")
    if change == "content":
        (other / "bin" / "su").write_text("setuiD\n")
        os.chmod(other / "bin" / "su", 0o4755)
    elif change == "mode":
        os.chmod(other / "secret", 0o755)
    elif change == "symlink":
        os.unlink(other / "bin" / "sh")
        os.symlink("tool-hard", other / "bin" / "sh")
    elif change == "name":
        os.rename(other / "empty", other / "empty2")
    elif change == "hardlink":
        os.unlink(other / "bin" / "tool-hard2")
        (other / "bin" / "tool-hard2").write_text("#!/bin/sh\necho tool\n")
        os.chmod(other / "bin" / "tool-hard2", 0o755)
    assert layer_bytes(base) != layer_bytes(other)
    assert write_image(tmp_path / "i1", base, CONFIG, {}) != \
        write_image(tmp_path / "i2", other, CONFIG, {})


def test_config_changes_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    d1 = write_image(tmp_path / "i1", root, CONFIG, {})
    d2 = write_image(tmp_path / "i2", root, ImageConfig(env=("PATH=/bin",)), {})
    d3 = write_image(tmp_path / "i3", root, ImageConfig(env=("PATH=/bin",), architecture="amd64"),
                     {})
    assert len({d1, d2, d3}) == 3


def test_layer_tar_properties(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r", owner=4321 if os.geteuid() == 0 else None)
    os.utime(root / "zero-length", (0, 0))  # older than the epoch: kept
    blob = layer_bytes(root)
    # gzip header: no FNAME flag, mtime 0
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[3] == 0 and blob[4:8] == b"\0\0\0\0"
    raw = gzip.decompress(blob)
    assert raw[257:265] == b"ustar\x0000"  # POSIX ustar/pax magic, not GNU
    ms = members(blob)
    names = [m.name for m in ms]
    assert names == sorted(names, key=os.fsencode)
    assert len(names) == len(ENTRIES)
    for m in ms:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == (0 if m.name == "zero-length" else 1)
        assert (m.devmajor, m.devminor) == (0, 0)
        assert not any(k in m.pax_headers for k in ("atime", "ctime")), m.pax_headers
        assert not any(k.startswith("SCHILY.xattr") for k in m.pax_headers)
    by = {m.name: m for m in ms}
    assert by["bin/su"].mode == 0o4755 and by["bin/wall"].mode == 0o2711
    assert by["sticky"].mode == 0o1777 and by["secret"].mode == 0o750
    assert by["bin/sh"].issym() and by["bin/sh"].linkname == "tool"
    assert by["bin/abs"].linkname == "/bin/tool"
    assert by["bin/tool"].isreg()
    # the first path in sort order carries the data, the others link to it
    assert by["bin/tool-hard"].islnk() and by["bin/tool-hard"].linkname == "bin/tool"
    assert by["bin/tool-hard2"].islnk() and by["bin/tool-hard2"].linkname == "bin/tool"
    assert "ünïcødé-名前.txt" in by
    assert any(len(n) > 100 for n in names)


def test_epoch_clamps_and_created(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    os.utime(root / "a" / "b", (500, 500))
    ms = {m.name: m for m in members(layer_bytes(root, epoch=1000))}
    assert ms["a/b"].mtime == 500 and ms["bin/tool"].mtime == 1000
    write_image(tmp_path / "img", root, CONFIG, {}, epoch=1000)
    assert read_image(tmp_path / "img").config_json["created"] == "1970-01-01T00:16:40Z"


def test_refuses_sockets(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))
        with raises_kind(ErrorKind.REFUSED, UnsupportedEntry) as e:
            write_image(tmp_path / "img", root, CONFIG, {})
        assert e.value.path == "sock"
    assert sorted(os.listdir(tmp_path)) == ["r"]  # nothing half-written


def test_refuses_fifos_and_whiteout_names(tmp_path: Path) -> None:
    """No image holds a FIFO, or a file a consumer would read as a whiteout (#20)."""
    for n, (name, make) in enumerate((("pipe", os.mkfifo),
                                      (".wh.bin", lambda p: p.write_bytes(b"")))):
        root = make_tree(tmp_path / f"r{n}")
        make(root / name)
        with raises_kind(ErrorKind.REFUSED, UnsupportedEntry) as e:
            write_image(tmp_path / f"img{n}", root, CONFIG, {})
        assert e.value.path == name
        assert not (tmp_path / f"img{n}").exists()


# -- layout -------------------------------------------------------------------------------------

def test_layout_documents(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    digest = write_image(tmp_path / "img", root, CONFIG, {REF: "1.4.0", "x.y": "z"})
    img = tmp_path / "img"
    assert json.loads((img / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index_text = (img / "index.json").read_text()
    index = json.loads(index_text)
    assert index_text == canonical_json(index)
    [desc] = index["manifests"]
    assert desc["digest"] == digest == manifest_digest(img)
    assert desc["annotations"] == {REF: "1.4.0"}
    assert desc["platform"] == {"architecture": "386", "os": "linux"}
    image = read_image(img)
    assert image.manifest_digest == digest
    assert image.ref_name == "1.4.0"
    assert image.manifest["annotations"] == {"x.y": "z"}
    assert image.config == CONFIG
    cfg = image.config_json
    assert cfg["created"] == "1970-01-01T00:00:01Z"
    assert (cfg["architecture"], cfg["os"]) == ("386", "linux")
    assert cfg["config"] == {"Env": ["PATH=/bin", "LANG=C"], "Entrypoint": ["/bin/sh"],
                             "Cmd": ["-c", "true"], "WorkingDir": "/src", "User": "0:0",
                             "Labels": {"a": "1", "b": "2"}}
    [layer] = image.layer_blob_paths
    blob = layer.read_bytes()
    assert cfg["rootfs"] == {"type": "layers",
                             "diff_ids": [sha256_bytes(gzip.decompress(blob))]}
    assert image.manifest["layers"][0]["digest"] == sha256_bytes(blob)
    for p in (img / "blobs" / "sha256").iterdir():
        assert "sha256:" + p.name == sha256_bytes(p.read_bytes())
    assert ImageConfig.from_oci(cfg) == CONFIG


def test_default_ref_and_bad_ref(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    write_image(tmp_path / "img", root, ImageConfig(), {})
    assert read_image(tmp_path / "img").ref_name == "latest"
    with raises_kind(ErrorKind.USAGE):
        write_image(tmp_path / "bad", root, ImageConfig(), {REF: "no spaces allowed"})
    assert not (tmp_path / "bad").exists()


def test_rewrite_replaces_atomically(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    out = tmp_path / "out"
    write_image(out / "img", root, CONFIG, {})
    (out / "img" / "provenance.json").write_text("{}")
    d2 = write_image(out / "img", root, ImageConfig(), {})
    assert manifest_digest(out / "img") == d2
    assert sorted(os.listdir(out)) == ["img"]
    assert not (out / "img" / "provenance.json").exists()
    before = {p: p.read_bytes() for p in (out / "img").rglob("*") if p.is_file()}
    with pytest.raises(RootseedError):  # a failing write leaves the old layout
        write_image(out / "img", tmp_path / "missing", CONFIG, {})
    assert {p: p.read_bytes() for p in (out / "img").rglob("*") if p.is_file()} == before
    assert sorted(os.listdir(out)) == ["img"]


def test_read_image_detects_corruption(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    write_image(tmp_path / "img", root, CONFIG, {})
    image = read_image(tmp_path / "img")
    cfg_blob = tmp_path / "img" / "blobs" / "sha256" / \
        image.manifest["config"]["digest"].split(":")[1]
    cfg_blob.write_bytes(cfg_blob.read_bytes().replace(b"386", b"387"))
    with raises_kind(ErrorKind.LAYOUT, BlobError) as e:
        read_image(tmp_path / "img")
    assert (e.value.role, e.value.problem) == ("config", BlobProblem.DIGEST)
    with raises_kind(ErrorKind.LAYOUT, LayoutError) as e:
        read_image(tmp_path / "nothing")
    assert not isinstance(e.value, BlobError) and e.value.layout == tmp_path / "nothing"


@pytest.mark.parametrize("damage", ["flip-middle", "flip-crc", "truncate", "recompress"])
def test_unpack_detects_layer_corruption(tmp_path: Path, damage: str) -> None:
    root = make_tree(tmp_path / "r")
    write_image(tmp_path / "img", root, CONFIG, {})
    [layer] = read_image(tmp_path / "img").layer_blob_paths
    data = bytearray(layer.read_bytes())
    if damage == "flip-middle":
        data[len(data) // 2] ^= 0xFF
    elif damage == "flip-crc":
        data[-6] ^= 0xFF
    elif damage == "truncate":
        del data[-100:]
    else:  # same tar, other gzip level: the size or digest check must notice
        other = gzip.compress(gzip.decompress(bytes(data)), compresslevel=1, mtime=0)
        data = bytearray(other)
    layer.write_bytes(bytes(data))
    with pytest.raises(RootseedError):
        unpack_image(tmp_path / "img", tmp_path / "dest")
    assert sorted(os.listdir(tmp_path)) == ["img", "r"]


# -- unpack -------------------------------------------------------------------------------------

def test_round_trip(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r", umask=0o077)
    write_image(tmp_path / "img", root, CONFIG, {})
    image = unpack_image(tmp_path / "img", tmp_path / "dest")
    assert image.config == CONFIG
    assert describe(tmp_path / "dest") == describe(root)
    st = os.lstat(tmp_path / "dest" / "bin" / "su")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == 1
    assert os.lstat(tmp_path / "dest" / "secret").st_mtime == 1
    assert stat.S_IMODE(os.stat(tmp_path / "dest").st_mode) == 0o755
    # and it packs again to the very same image
    assert write_image(tmp_path / "img2", tmp_path / "dest", CONFIG, {}) == \
        manifest_digest(tmp_path / "img")


def test_unpack_into_existing_empty_dir_only(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "r")
    write_image(tmp_path / "img", root, CONFIG, {})
    (tmp_path / "empty").mkdir()
    unpack_image(tmp_path / "img", tmp_path / "empty")
    assert describe(tmp_path / "empty") == describe(root)
    with raises_kind(ErrorKind.REFUSED, UnpackError):
        unpack_image(tmp_path / "img", tmp_path / "empty")


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = b"x",
           linkname: str = "", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info, data if kind == tarfile.REGTYPE else None


def hand_made_layout(path: Path, layers: list[bytes]) -> Path:
    """An OCI layout around hand-made (possibly hostile) uncompressed layer tars."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        d = sha256_bytes(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d, len(data)

    descs, diff_ids = [], []
    for raw in layers:
        gz = gzip.compress(raw, mtime=0)
        d, size = put(gz)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": d, "size": size})
        diff_ids.append(sha256_bytes(raw))
    cd, cs = put(canonical_json({"architecture": "386", "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    md, ms = put(canonical_json({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd, "size": cs},
        "layers": descs}).encode())
    (path / "index.json").write_text(canonical_json({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
         "size": ms}]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return path


@pytest.mark.parametrize("entries", [
    [_entry("../evil")],
    [_entry("a/../../evil")],
    [_entry("/etc/evil")],
    [_entry("link", tarfile.SYMTYPE, linkname="/"), _entry("link/evil")],
    [_entry("up", tarfile.SYMTYPE, linkname=".."), _entry("up/evil")],
    [_entry("hard", tarfile.LNKTYPE, linkname="../../etc/passwd")],
    [_entry("hard", tarfile.LNKTYPE, linkname="not-there")],
    [_entry("dev", tarfile.CHRTYPE)],
])
def test_unpack_refuses_hostile_layers(tmp_path: Path, entries: list[tuple[tarfile.TarInfo,
                                       bytes | None]]) -> None:
    layout = hand_made_layout(tmp_path / "img", [_tar(entries)])
    with raises_kind(ErrorKind.REFUSED, UnpackError):
        unpack_image(layout, tmp_path / "work" / "dest")
    assert os.listdir(tmp_path / "work") == []  # no partial output
    assert sorted(os.listdir(tmp_path)) == ["img", "work"]  # nothing written outside


def test_whiteouts_across_layers(tmp_path: Path) -> None:
    lower = _tar([_entry("a", tarfile.DIRTYPE, mode=0o755), _entry("a/x"), _entry("a/y"),
                  _entry("b", tarfile.DIRTYPE, mode=0o755), _entry("b/z"), _entry("keep"),
                  _entry("gone"), _entry("file-then-dir")])
    upper = _tar([_entry("a/.wh..wh..opq", data=b""), _entry("a/new"), _entry(".wh.b"),
                  _entry(".wh.gone"), _entry("file-then-dir", tarfile.DIRTYPE, mode=0o700),
                  _entry("file-then-dir/inner"), _entry("keep", data=b"upper")])
    layout = hand_made_layout(tmp_path / "img", [lower, upper])
    unpack_image(layout, tmp_path / "dest")
    d = tmp_path / "dest"
    assert sorted(os.listdir(d)) == ["a", "file-then-dir", "keep"]
    assert os.listdir(d / "a") == ["new"]
    assert (d / "keep").read_bytes() == b"upper"
    assert (d / "file-then-dir" / "inner").is_file()
    assert stat.S_IMODE(os.stat(d / "file-then-dir").st_mode) == 0o700
    # an opaque marker does not hide entries of its own layer, whatever the order
    same = _tar([_entry("c", tarfile.DIRTYPE, mode=0o755), _entry("c/-early"),
                 _entry("c/.wh..wh..opq", data=b""), _entry("c/late")])
    unpack_image(hand_made_layout(tmp_path / "img2", [same]), tmp_path / "dest2")
    assert sorted(os.listdir(tmp_path / "dest2" / "c")) == ["-early", "late"]


def test_unpack_read_only_dirs_and_implicit_parents(tmp_path: Path) -> None:
    layer = _tar([_entry("ro", tarfile.DIRTYPE, mode=0o555), _entry("ro/f", mode=0o400),
                  _entry("implicit/parent/file")])
    unpack_image(hand_made_layout(tmp_path / "img", [layer]), tmp_path / "dest")
    d = tmp_path / "dest"
    assert stat.S_IMODE(os.stat(d / "ro").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(d / "ro" / "f").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(d / "implicit" / "parent").st_mode) == 0o755
