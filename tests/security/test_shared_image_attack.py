"""A forged shared-image record (remote/images.py): anyone who may call
``UpdateActionResult`` on the service can replace the image a builder recorded for a
package. What the forger can do, and what not:

* a record naming files outside a layout (``../``, absolute paths), or a layout with a
  file its manifest does not name, is refused before or after download: a warning, the
  package is built step by step (the local digest), its own image recorded in place of
  the forged one, the host unchanged and nothing of the record kept;
* a *valid* image for another tree is a claim rootseed cannot refute without building:
  it is taken, and attributed (the recording "worker" and the service, in the event and
  the result); it stays in the cache's shared area, so a build without ``--remote`` (or
  with ``--remote-no-images``) on the same cache never uses it."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import rootseed
from hostile import Canaries
from remotecluster import Cluster
from rootseed.engine.interface import ImageIdent
from rootseed.oci import ImageConfig, write_image
from rootseed.remote.client import Remote
from rootseed.remote.images import record_action
from rootseed.remote.merkle import digest_of, file_digest
from rootseed.remote.protos import re_pb2

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def _build(tree: Path, cache: Path, out: Path, *args: str) -> tuple[dict[str, Any],
                                                                   list[dict[str, Any]], str]:
    r = rootseed("build", "core-app", "--tree", str(tree), "--cache-dir", str(cache),
                 "--out", str(out), "--offline", "--json", *args, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    return json.loads(r.stdout), events, r.stderr


def _digest(result: dict[str, Any]) -> str:
    return next(r["manifest_digest"] for r in result["results"] if r["package"] == "core-app")


def _ident(cache: Path) -> ImageIdent:
    """core-app's ident, as the builder that took its image kept it."""
    for record in (cache / "shared").glob("*/shared.json"):
        data = json.loads(record.read_text())
        if data["package"] == "core-app":
            return ImageIdent(data["key"], data["layout"], data["package"])
    raise AssertionError("no image of core-app was taken")


def _forge(cluster: Cluster, ident: ImageIdent, files: dict[str, Path | bytes],
           worker: str = "forger") -> None:
    action, _ = record_action(ident)
    result = re_pb2.ActionResult(exit_code=0)
    result.execution_metadata.worker = worker
    blobs: dict[str, bytes | Path] = {}
    for rel, blob in files.items():
        d = digest_of(blob) if isinstance(blob, bytes) else file_digest(blob)
        result.output_files.add(path=rel, digest=d)
        blobs[d.hash] = blob
    with Remote(cluster.endpoint) as remote:
        remote.upload(blobs)
        remote.update_result(digest_of(action.SerializeToString(deterministic=True)), result)


def _layout_files(layout: Path) -> dict[str, Path | bytes]:
    return {str(p.relative_to(layout)): p for p in layout.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def recorded(remote_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, str, ImageIdent, Path]:
    """A tree whose core-app image the first builder recorded and a second took (one per
    module: each test forges the record anew before it builds), and the first's out/."""
    tmp = tmp_path_factory.mktemp("recorded")
    tree = make_tree(tmp)
    app_package(tree, f"FROM rs/bootstrap-base\nRUN echo {secrets.token_hex(8)} > /mark\n")
    first, _, _ = _build(tree, tmp / "a", tmp / "out-a", "--remote", remote_cluster.endpoint)
    second, events, _ = _build(tree, tmp / "b", tmp / "out-b",
                               "--remote", remote_cluster.endpoint)
    assert _digest(second) == _digest(first)
    assert "core-app" in [e["package"] for e in events if e["event"] == "image"]
    return tree, _digest(first), _ident(tmp / "b"), tmp / "out-a" / "core-app"


@pytest.mark.parametrize("attack", ["traversal", "absolute", "extra-file"])
def test_a_record_that_is_no_layout_is_refused_and_the_package_built(
        remote_cluster: Cluster, tmp_path: Path,
        recorded: tuple[Path, str, ImageIdent, Path], attack: str) -> None:
    tree, digest, ident, layout = recorded
    canaries = Canaries(tmp_path)
    files = {k: v for k, v in _layout_files(layout).items() if k != "provenance.json"}
    target = canaries.dir / "planted"
    if attack == "traversal":
        files["../../../../../../../../.." + str(target)] = b"pwned\n"
    elif attack == "absolute":
        files[str(target)] = b"pwned\n"
    else:
        files["blobs/sha256/" + digest_of(b"#!/bin/sh\n").hash] = b"#!/bin/sh\n"
    _forge(remote_cluster, ident, files)
    result, events, stderr = _build(tree, tmp_path / "c", tmp_path / "out-c",
                                    "--remote", remote_cluster.endpoint)
    assert _digest(result) == digest
    assert not [e for e in events if e["event"] == "image" and e["package"] == "core-app"]
    assert "was not taken" in stderr  # words: the warning, for people
    assert not target.exists()
    canaries.assert_unchanged()
    assert "core-app" not in [json.loads(p.read_text())["package"]
                              for p in (tmp_path / "c" / "shared").glob("*/shared.json")]
    # the build recorded its own image in place of the forged record: a next builder
    # takes the true one
    again, events, _ = _build(tree, tmp_path / "d", tmp_path / "out-d",
                              "--remote", remote_cluster.endpoint)
    assert _digest(again) == digest
    assert "core-app" in [e["package"] for e in events if e["event"] == "image"]


def test_a_valid_forged_image_is_a_claim_attributed_and_kept_apart(
        remote_cluster: Cluster, tmp_path: Path,
        recorded: tuple[Path, str, ImageIdent, Path]) -> None:
    tree, digest, ident, _ = recorded
    rootfs = tmp_path / "evil-rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "sh").write_text("#!/evil\n")
    evil = tmp_path / "evil"
    evil_digest = write_image(evil, rootfs, ImageConfig(), {})
    _forge(remote_cluster, ident, _layout_files(evil), worker="forger \x1b[31mred")
    result, events, _ = _build(tree, tmp_path / "c", tmp_path / "out-c",
                               "--remote", remote_cluster.endpoint)
    assert _digest(result) == evil_digest != digest  # a claim taken as such...
    (event,) = [e for e in events if e["event"] == "image" and e["package"] == "core-app"]
    # ... and attributed: who recorded it (no terminal escape passed on), where
    assert event["worker"] == "forger ?[31mred"
    assert event["service"] == remote_cluster.endpoint
    shared = next(r["shared"] for r in result["results"] if r["package"] == "core-app")
    assert shared["worker"] == "forger ?[31mred"
    # the same cache without --remote, or with --remote-no-images: never the claim
    local, events, _ = _build(tree, tmp_path / "c", tmp_path / "out-local")
    assert _digest(local) == digest
    assert not [e for e in events if e["event"] == "image"]
    no_images, events, _ = _build(tree, tmp_path / "c", tmp_path / "out-no-images",
                                  "--remote", remote_cluster.endpoint, "--remote-no-images")
    assert _digest(no_images) == digest
    assert not [e for e in events if e["event"] == "image"]


def test_a_forged_image_that_fails_the_package_pins_is_refused(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """[outputs] pins are the package's own check: a forged image that does not hold the
    pinned files is refused like a broken record, and the package is built."""
    import hashlib

    mark = f"{secrets.token_hex(8)}\n".encode()
    tree = make_tree(tmp_path)
    app_package(tree, f"FROM rs/bootstrap-base\nRUN printf '{mark.decode().strip()}\\n' > /mark\n",
                outputs=f'[outputs]\n"mark" = ["{hashlib.sha256(mark).hexdigest()}", '
                        f'{len(mark)}]\n')
    first, _, _ = _build(tree, tmp_path / "a", tmp_path / "out-a",
                         "--remote", remote_cluster.endpoint)
    _build(tree, tmp_path / "b", tmp_path / "out-b", "--remote", remote_cluster.endpoint)
    ident = _ident(tmp_path / "b")
    rootfs = tmp_path / "evil-rootfs"
    rootfs.mkdir()
    (rootfs / "mark").write_text("not the pinned file\n")
    evil = tmp_path / "evil"
    write_image(evil, rootfs, ImageConfig(), {})
    _forge(remote_cluster, ident, _layout_files(evil))
    canaries = Canaries(tmp_path)
    result, events, stderr = _build(tree, tmp_path / "c", tmp_path / "out-c",
                                    "--remote", remote_cluster.endpoint)
    assert _digest(result) == _digest(first)
    assert not [e for e in events if e["event"] == "image" and e["package"] == "core-app"]
    assert "was not taken" in stderr  # words: the warning, for people
    canaries.assert_unchanged()
