"""Red-team (#20): an attacker who can write the cache rewrites a record together with
the content it describes.

The records (``complete.json``, ``action.json``, ``stage.json``, ``image.json``, crosscheck
memos) say what an entry holds; content is checked against them. Without a MAC the
attacker simply records the digest of the changed content. Each test makes such a
consistent forgery, then checks that rootseed says so, does not use the entry, and
publishes exactly what a clean build publishes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hostile import HostileTree
from rootseed.crosscheck.memo import recall, remember
from rootseed.engine.layers import layer_digest
from rootseed.engine.record import BuildRecord
from rootseed.oci import unpack_image


def _digest(proc_stdout: str) -> str:
    return proc_stdout.split()[0]


def _file_in_image(layout: Path, tmp: Path, name: str) -> bytes:
    target = tmp / f"unpacked-{len(list(tmp.glob('unpacked-*')))}"
    unpack_image(layout, target)
    return (target / name).read_bytes()


def test_changed_base_rootfs_with_a_rewritten_complete_json(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("base", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    tree.package("child", "FROM evil/test-base\nCOPY g /g\n", files={"g": b"g\n"})
    first = tree.build("test-child")
    assert first.returncode == 0, first.stderr
    [unpacked] = (tree.cache / "images").glob("*/rootfs")
    (unpacked / "f").write_bytes(b"evil\n")
    record = unpacked.parent / "complete.json"
    forged = json.loads(record.read_text())
    forged["content"] = layer_digest(unpacked)  # the digest of the changed content
    record.write_text(json.dumps(forged))
    again = tree.build("test-child", extra=("--no-cache",))
    assert again.returncode == 0, again.stderr
    # before: used without a word, and the child image shipped the changed file
    # words: a warning for people (the build succeeds; warnings have no kind)
    assert "unpacked image" in again.stderr and "not written by rootseed" in again.stderr
    assert _digest(again.stdout) == _digest(first.stdout)
    assert _file_in_image(tree.out / "test-child", tmp_path, "f") == b"data\n"


def test_crafted_cached_image_is_not_published_as_cached(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    first = tree.build("test-plain")
    assert first.returncode == 0, first.stderr
    # the attacker builds the image they want elsewhere (a valid, verifying layout)
    other = HostileTree(tmp_path / "attacker")
    other.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"evil\n"})
    assert other.build("test-plain").returncode == 0
    [cached] = (tree.cache / "builds").glob("*/image")
    shutil.rmtree(cached)
    shutil.copytree(other.out / "test-plain", cached)
    (cached / "provenance.json").unlink(missing_ok=True)
    shutil.rmtree(tree.out)
    again = tree.build("test-plain")
    assert again.returncode == 0, again.stderr
    # before: "(cached)" with the attacker's digest, and a fresh provenance attesting it
    # words: a warning for people (the build succeeds; warnings have no kind)
    assert "not the one rootseed wrote there" in again.stderr, again.stderr
    assert _digest(again.stdout) == _digest(first.stdout)
    assert _file_in_image(tree.out / "test-plain", tmp_path, "f") == b"data\n"


def test_changed_layer_with_rewritten_action_and_stage_records(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    first = tree.build("test-plain")
    assert first.returncode == 0, first.stderr
    [layer] = (tree.cache / "actions").glob("*/layer")
    (layer / "f").write_bytes(b"evil\n")
    new = layer_digest(layer)
    action = layer.parent / "action.json"
    record = json.loads(action.read_text())
    old, record["digest"] = record["digest"], new
    action.write_text(json.dumps(record))
    for stage in (tree.cache / "builds").glob("*/stage.json"):
        stage.write_text(stage.read_text().replace(old, new))
        shutil.rmtree(stage.parent / "image")  # so the image is written from the layer
    shutil.rmtree(tree.out)
    again = tree.build("test-plain")
    assert again.returncode == 0, again.stderr
    # before: the image was written from the changed layer, without a warning
    # words: a warning for people (the build succeeds; warnings have no kind)
    assert "not written by rootseed" in again.stderr, again.stderr
    assert _digest(again.stdout) == _digest(first.stdout)
    assert _file_in_image(tree.out / "test-plain", tmp_path, "f") == b"data\n"


def test_a_record_copied_to_another_entry_is_not_believed(tmp_path: Path) -> None:
    """A signed record names its entry: moving one (with its content) elsewhere fails."""
    tree = HostileTree(tmp_path)
    tree.package("a", "FROM scratch\nCOPY f /f\n", files={"f": b"a\n"})
    tree.package("b", "FROM scratch\nCOPY f /f\n", files={"f": b"b\n"})
    first = tree.build("test-b")
    assert first.returncode == 0 and tree.build("test-a").returncode == 0
    entries = {json.loads((p / "stage.json").read_text())["package"]: p
               for p in (tree.cache / "builds").iterdir()}
    shutil.rmtree(entries["test-b"])
    shutil.copytree(entries["test-a"], entries["test-b"])  # b's key, a's content
    shutil.rmtree(tree.out)
    again = tree.build("test-b")
    assert again.returncode == 0, again.stderr
    assert _digest(again.stdout) == _digest(first.stdout)
    assert _file_in_image(tree.out / "test-b", tmp_path, "f") == b"b\n"


RECORD = BuildRecord(package="bootstrap-stage0", version="1", namespace="rootseed",
                     containerfile_sha256="a" * 64, target=None, build_args={},
                     sources=(), parents=(), manifest_digest="sha256:" + "b" * 64,
                     rootseed_version="0.1.0")


def test_forged_crosscheck_memo_is_not_recalled(tmp_path: Path) -> None:
    """A memo makes ``bootstrap`` report a chain step as crosschecked without replaying
    it; one written by someone else (here: a passing one for a build never checked)
    must not count."""
    remember(tmp_path, RECORD, [{"identical": True, "summary": "ok"}])
    (path,) = (tmp_path / "crosscheck").iterdir()
    forged = [{"identical": True, "summary": "M1 equals M1 computed in Python"}]
    path.write_text(json.dumps(forged))  # the format before records were signed
    assert recall(tmp_path, RECORD) is None
    path.write_text(json.dumps({"lines": forged, "mac": "0" * 64}))
    assert recall(tmp_path, RECORD) is None
