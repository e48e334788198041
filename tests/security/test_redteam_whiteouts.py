"""Red-team (#20): whiteouts and names.

A crafted base image layer whose whiteout names ``.`` or ``..`` (or nothing) must not make
unpacking delete a directory above its destination; a RUN step that creates a file named
like a whiteout (``.wh.x``, ``.wh..wh..opq``), a FIFO or a socket must fail with a message
naming the path instead of producing layers that crash or silently lose files in every
consumer; a non-UTF-8 file name in a build context is one clear problem of its package.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from hostile import BUSYBOX, HostileTree, directory, reg, rootseed, tar_bytes
from kinds import cli_error, raises_kind
from rootseed.errors import ErrorKind
from rootseed.oci import unpack_image
from rootseed.oci.entries import UnsupportedEntry, check_entry
from rootseed.oci.unpack import UnpackError


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def crafted_layout(layout: Path, layers: list[bytes]) -> Path:
    """A valid OCI layout (every digest right) whose uncompressed layers are ``layers``."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(layout, t)}
             for t in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
                        ).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **_blob(layout, config)},
        "layers": descs}).encode()
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(layout, manifest)}]}))
    return layout


LOWER = tar_bytes([directory("a"), directory("a/b"), reg("a/b/f"), reg("a/keep")])


@pytest.mark.parametrize("member", [".wh...", ".wh..", ".wh.", "a/b/.wh...", "a/.wh..",
                                    "a/b/.wh..wh.x"])
def test_whiteout_naming_dot_dot_deletes_nothing_outside(tmp_path: Path, member: str) -> None:
    layout = crafted_layout(tmp_path / "layout", [LOWER, tar_bytes([reg(member, b"")])])
    outer = tmp_path / "outer"  # the directory the unpack happens in (the cache's images/)
    outer.mkdir()
    (outer / "canary").write_bytes(b"beside the destination\n")
    with raises_kind(ErrorKind.REFUSED, UnpackError) as e:
        unpack_image(layout, outer / "dest")  # before: ".wh..." removed outer/ itself
    assert isinstance(e.value, UnpackError) and e.value.member == member
    assert (outer / "canary").read_bytes() == b"beside the destination\n"
    assert sorted(p.name for p in outer.iterdir()) == ["canary"]  # nothing half-unpacked


def test_a_proper_whiteout_still_removes_its_entry(tmp_path: Path) -> None:
    layout = crafted_layout(tmp_path / "layout", [LOWER, tar_bytes([reg("a/b/.wh.f", b"")])])
    unpack_image(layout, tmp_path / "dest")
    assert not (tmp_path / "dest" / "a" / "b" / "f").exists()
    assert (tmp_path / "dest" / "a" / "keep").exists()


def test_fifo_in_a_layer_is_refused_by_unpack(tmp_path: Path) -> None:
    fifo = tarfile.TarInfo("a/pipe")
    fifo.type = tarfile.FIFOTYPE
    layout = crafted_layout(tmp_path / "layout", [LOWER, tar_bytes([(fifo, None)])])
    with raises_kind(ErrorKind.REFUSED, UnpackError) as e:
        unpack_image(layout, tmp_path / "dest")
    assert isinstance(e.value, UnpackError) and e.value.member == "a/pipe"


def _producer(tmp_path: Path, script: str) -> HostileTree:
    tree = HostileTree(tmp_path)
    d = tree.package("producer", "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                     f'RUN ["/bin/busybox", "sh", "-c", "{script}"]\n')
    shutil.copy2(BUSYBOX, d / "busybox")
    tree.package("consumer", "FROM evil/test-producer\nCOPY g /g\n", files={"g": b"g\n"})
    return tree


@pytest.mark.parametrize(("script", "path"), [
    ("/bin/busybox mkdir /data; /bin/busybox touch /data/keep /data/.wh.keep", "/data/.wh.keep"),
    ("/bin/busybox mkdir /data; /bin/busybox touch /data/keep /data/.wh..wh..opq",
     "/data/.wh..wh..opq"),
    ("/bin/busybox mkdir /data; /bin/busybox touch /data/.wh..", "/data/.wh.."),
    ("/bin/busybox mkdir /data; /bin/busybox mkfifo /data/pipe", "/data/pipe"),
])
def test_run_output_that_no_layer_can_carry(tmp_path: Path, script: str, path: str) -> None:
    tree = _producer(tmp_path, script)
    proc = tree.build("test-consumer", extra=("--json",))
    # before: the producer was published; its consumer then failed with exit 70 (".wh..")
    # or was built without /data/keep
    cli_error(proc, ErrorKind.REFUSED, exit_code=1, path=path)
    assert not (tree.out / "test-producer").exists()


def test_check_entry_refuses_every_special_kind() -> None:
    for mode in (0o010644, 0o140644, 0o020644, 0o060644):
        with pytest.raises(UnsupportedEntry):
            check_entry("x", mode)
    check_entry("x/.whx", 0o100644)
    check_entry("x/wh.x", 0o100644)


def test_non_utf8_name_in_a_build_context(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    d = tree.package("bad", "FROM scratch\nCOPY . /ctx\n", files={"ok": b"ok\n"})
    (d / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name\n")
    tree.package("good", "FROM scratch\nCOPY f /f\n", files={"f": b"f\n"})
    check = rootseed("check", "--tree", str(tree.root))
    assert check.returncode == 1, check.stdout + check.stderr
    assert "test/bad" in check.stdout and "caf\\xe9" in check.stdout, check.stdout
    assert "not valid UTF-8" in check.stdout, check.stdout
    proc = rootseed("build", "--all", "--tree", str(tree.root), "--cache-dir", str(tree.cache),
                    "--out", str(tree.out), "--offline", env={"COLUMNS": "400"})
    assert proc.returncode == 1, proc.stderr
    shown = proc.stdout + proc.stderr  # the per-package summary table is on stdout
    # words: the summary for people names the package and why; no internal error
    assert "test-bad" in shown and "not valid UTF-8" in shown, shown
    assert "test-good" in shown and "internal error" not in shown


def test_plain_tar_helper_round_trip() -> None:  # the crafted layers above are real tars
    with tarfile.open(fileobj=io.BytesIO(LOWER)) as t:
        assert [m.name for m in t.getmembers()] == ["a", "a/b", "a/b/f", "a/keep"]
