"""Shared images (engine/shared.py, remote/images.py) without a service: what the engine
keeps of a taken image and when it takes it again, and which records the remote side
refuses before reading a blob. The service end to end: tests/test_remote_build.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rootseed.engine import maintenance
from rootseed.engine.cache import BuildCache
from rootseed.engine.interface import ImageIdent
from rootseed.engine.publish import layout_files
from rootseed.engine.shared import RECORD, SharedCache, SharedImageRefused, ident_name
from rootseed.oci import ImageConfig, write_image
from rootseed.remote.client import BadOutput, OutputProblem
from rootseed.remote.images import MAX_FILES, RemoteImages, record_action
from rootseed.remote.merkle import digest_of
from rootseed.remote.protos import re_pb2

IDENT = ImageIdent("sha256:" + "ab" * 32, "image", "pkg")
ORIGIN: dict[str, object] = {"executor": "remote", "remote_cached": True, "image": True,
                             "service": "grpc://fake:1", "worker": "builder other"}


def _layout(tmp: Path, text: str = "hello\n") -> tuple[Path, str]:
    rootfs = tmp / f"rootfs-{len(text)}"
    rootfs.mkdir()
    (rootfs / "greeting").write_text(text)
    layout = tmp / f"layout-{len(text)}"
    digest = write_image(layout, rootfs, ImageConfig(), {})
    return layout, digest


class FakeShared:
    """A shared cache that copies one layout's files (plus ``extra``) into ``dest``."""

    where = "grpc://fake:1"

    def __init__(self, layout: Path | None, extra: dict[str, bytes] | None = None) -> None:
        self.layout = layout
        self.extra = extra or {}
        self.fetches = 0
        self.lookups = 0
        self.stored: list[tuple[ImageIdent, list[str]]] = []

    def record(self, ident: ImageIdent) -> str | None:
        self.lookups += 1
        return None if self.layout is None else f"record of {self.layout.name}"

    def fetch(self, ident: ImageIdent, dest: Path) -> dict[str, object] | None:
        self.fetches += 1
        if self.layout is None:
            return None
        for rel in self.layout.rglob("*"):
            target = dest / rel.relative_to(self.layout)
            if rel.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(rel, target)
        for name, data in self.extra.items():
            (dest / name).write_bytes(data)
        return {**ORIGIN, "record": self.record(ident)}

    def store(self, ident: ImageIdent, layout: Path, files: list[str]) -> None:
        self.stored.append((ident, files))


def test_a_taken_image_is_checked_kept_and_reused(tmp_path: Path) -> None:
    layout, digest = _layout(tmp_path)
    cache = BuildCache(tmp_path / "cache")
    shared = FakeShared(layout)
    taken = SharedCache(cache).take(shared, IDENT)
    assert taken is not None and taken.manifest_digest == digest
    assert taken.origin == {**ORIGIN, "record": f"record of {layout.name}"}
    assert taken.layout == tmp_path / "cache" / "shared" / ident_name(IDENT) / "image"
    assert sorted(layout_files(taken.layout, digest)) == sorted(
        str(p.relative_to(taken.layout)) for p in taken.layout.rglob("*") if p.is_file())
    assert taken.fetched
    again = SharedCache(cache).take(shared, IDENT)
    assert shared.fetches == 1  # kept: not fetched again
    assert again is not None and not again.fetched
    assert (again.layout, again.manifest_digest, again.origin) == (
        taken.layout, taken.manifest_digest, taken.origin)
    assert not list((tmp_path / "cache" / "work").glob("*/"))  # no work dir left


def test_the_service_s_current_record_decides(tmp_path: Path) -> None:
    """A kept image is used only while the service still records the same files: a
    record replaced there (a forged one corrected, a rebuilt image) is fetched anew, and
    one gone from there is a miss (the kept copy is not a claim of its own)."""
    layout, digest = _layout(tmp_path)
    other, other_digest = _layout(tmp_path, "the corrected image\n")
    cache = BuildCache(tmp_path / "cache")
    shared = FakeShared(layout)
    assert SharedCache(cache).take(shared, IDENT) is not None
    shared.layout = other  # the record was replaced on the service
    again = SharedCache(cache).take(shared, IDENT)
    assert again is not None and again.fetched and shared.fetches == 2
    assert again.manifest_digest == other_digest != digest
    shared.layout = None  # the record is gone from the service
    assert SharedCache(cache).take(shared, IDENT) is None
    assert shared.fetches == 2 and shared.lookups == 5


def test_no_record_is_a_miss_and_leaves_nothing(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache")
    assert SharedCache(cache).take(FakeShared(None), IDENT) is None
    assert not (tmp_path / "cache" / "shared").exists()


def test_a_file_the_manifest_does_not_name_refuses_the_image(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    cache = BuildCache(tmp_path / "cache")
    with pytest.raises(SharedImageRefused) as e:
        SharedCache(cache).take(FakeShared(layout, {"payload.sh": b"#!/bin/sh\n"}), IDENT)
    assert "payload.sh" in e.value.message  # words: names the file, for people
    assert not (tmp_path / "cache" / "shared").exists()
    assert not [p for p in (tmp_path / "cache" / "work").iterdir() if p.is_dir()]


def test_a_blob_that_does_not_match_its_name_refuses_the_image(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    index = json.loads((layout / "index.json").read_text())
    manifest = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    doc = json.loads(manifest.read_text())
    layer = layout / "blobs" / "sha256" / doc["layers"][0]["digest"].split(":")[1]
    os.chmod(layer, 0o644)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises(SharedImageRefused):
        SharedCache(BuildCache(tmp_path / "cache")).take(FakeShared(layout), IDENT)
    assert not (tmp_path / "cache" / "shared").exists()


@pytest.mark.parametrize("damage", ["blob", "record", "forged-record", "index",
                                    "extra-file", "oci-layout"])
def test_a_kept_image_changed_in_the_cache_is_taken_again(tmp_path: Path,
                                                          damage: str) -> None:
    layout, digest = _layout(tmp_path)
    other, other_digest = _layout(tmp_path, "another image\n")
    cache = BuildCache(tmp_path / "cache")
    shared = FakeShared(layout)
    taken = SharedCache(cache).take(shared, IDENT)
    assert taken is not None
    entry = taken.layout.parent
    if damage == "blob":  # one blob changed in place
        blob = next(p for p in (taken.layout / "blobs" / "sha256").iterdir()
                    if p.stat().st_size > 200)
        os.chmod(blob, 0o644)
        blob.write_bytes(b"\0" + blob.read_bytes()[1:])
    elif damage == "record":  # another image put in place, its record unchanged
        shutil.rmtree(taken.layout)
        shutil.copytree(other, taken.layout)
    elif damage == "index":  # a second manifest beside the verified one
        index = json.loads((taken.layout / "index.json").read_text())
        index["manifests"].append({**index["manifests"][0], "digest": "sha256:" + "0" * 64})
        os.chmod(taken.layout / "index.json", 0o644)
        (taken.layout / "index.json").write_text(json.dumps(index))
    elif damage == "extra-file":  # a file the manifest does not name
        (taken.layout / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"extra\n")
    elif damage == "oci-layout":  # no digest or seal covers it: out/ would get it
        os.chmod(taken.layout / "oci-layout", 0o644)
        (taken.layout / "oci-layout").write_bytes(ESCAPES.encode() + b" not a layout")
    else:  # another image with a record written by someone without the key
        shutil.rmtree(taken.layout)
        shutil.copytree(other, taken.layout)
        record = json.loads((entry / RECORD).read_text())
        record["manifest"] = other_digest
        (entry / RECORD).write_text(json.dumps(record))
    again = SharedCache(cache).take(shared, IDENT)
    assert shared.fetches == 2
    assert again is not None and again.manifest_digest == digest != other_digest


def test_prune_removes_taken_images_by_age(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    cache = BuildCache(tmp_path / "cache")
    assert SharedCache(cache).take(FakeShared(layout), IDENT) is not None
    assert maintenance.usage(tmp_path / "cache").areas["shared"].entries == 1
    kept = maintenance.prune(tmp_path / "cache", 1.0)
    assert "shared" not in kept.removed
    pruned = maintenance.prune(tmp_path / "cache", 0)
    assert pruned.removed["shared"] == 1
    assert not list((tmp_path / "cache" / "shared").iterdir())


# -- the remote side: a record's names, before any blob is read -------------------------

def _record(*files: tuple[str, re_pb2.Digest]) -> re_pb2.ActionResult:
    result = re_pb2.ActionResult(exit_code=0)
    for path, d in files:
        result.output_files.add(path=path, digest=d)
    return result


BLOB = digest_of(b"blob")


@pytest.mark.parametrize("path", [
    "../escape", "/etc/passwd", "/tmp/pwned", "blobs/../../pwned", "blobs/sha256/../../x",
    "blobs/sha256/../../../pwned", "image/index.json", "blobs/sha256/", ".",
    "blobs/sha256/" + "0" * 64, "blobs/sha512/" + BLOB.hash,
    "blobs/sha256/" + BLOB.hash.upper(), "index.json/x", "provenance.json", "",
    "oci-layout\0", "oci-layout\0x"])
def test_a_record_naming_no_layout_file_is_refused(path: str) -> None:
    with pytest.raises(BadOutput) as e:
        RemoteImages._files(_record((path, BLOB)))
    assert e.value.problem is OutputProblem.NOT_AN_IMAGE


#: terminal escapes (OSC 52 writes the clipboard) where a digest goes
ESCAPES = "\x1b]52;c;aGVsbG8=\x07\x1b[2J"


@pytest.mark.parametrize("size", [0, 10, 3 << 20])
@pytest.mark.parametrize("path", ["index.json", "oci-layout"])
def test_a_digest_that_is_no_sha256_is_refused_before_it_is_shown(path: str,
                                                                  size: int) -> None:
    d = re_pb2.Digest(hash=ESCAPES + "A" * (1 << 20), size_bytes=size)
    with pytest.raises(BadOutput) as e:
        RemoteImages._files(_record((path, d)))
    assert e.value.problem is OutputProblem.NOT_AN_IMAGE
    # words: no terminal escape in the text shown to people
    assert "\x1b" not in e.value.message and len(e.value.message) < 1000


def test_a_record_naming_a_file_twice_or_too_many_is_refused() -> None:
    twice = ("blobs/sha256/" + BLOB.hash, BLOB)
    with pytest.raises(BadOutput) as e:
        RemoteImages._files(_record(twice, twice))
    assert e.value.problem is OutputProblem.DUPLICATE_NAME
    many = _record(*[(f"blobs/sha256/{digest_of(str(i).encode()).hash}",
                      digest_of(str(i).encode())) for i in range(MAX_FILES + 1)])
    with pytest.raises(BadOutput) as e:
        RemoteImages._files(many)
    assert e.value.problem is OutputProblem.NOT_AN_IMAGE
    tree = _record(("index.json", BLOB))
    tree.output_directories.add(path="blobs", tree_digest=BLOB)
    with pytest.raises(BadOutput):
        RemoteImages._files(tree)


def test_a_layout_record_is_accepted() -> None:
    files = [("oci-layout", digest_of(b"{}")), ("index.json", digest_of(b"[]")),
             ("blobs/sha256/" + BLOB.hash, BLOB)]
    assert RemoteImages._files(_record(*files)) == files


def test_records_differ_by_key_layout_and_package_and_no_worker_can_run_them() -> None:
    actions = {digest_of(record_action(i)[0].SerializeToString(deterministic=True)).hash
               for i in (IDENT, ImageIdent(IDENT.key, "image-buildkit-x", "pkg"),
                         ImageIdent(IDENT.key, "image", "other"),
                         ImageIdent("sha256:" + "cd" * 32, "image", "pkg"))}
    assert len(actions) == 4
    action, cmd = record_action(IDENT)
    assert [(p.name, p.value) for p in action.platform.properties] == [
        ("rootseed-record", "image")]
    assert list(cmd.arguments)[2:] == [IDENT.key, "image", "pkg"]
