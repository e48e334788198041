"""Red-team: a poisoned stage entry names its layers with refs that point out of the cache
(or at a link out of it). The layer store reads refs through one typed parser
(engine/refs.py) and resolves them to one directory each: such an entry is a miss, the
stage is built again to the same image, and the host is unchanged."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree
from rootseed.engine.layers import layer_digest
from rootseed.oci import manifest_digest

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

CONTAINERFILE = "FROM scratch\nCOPY f /f\nWORKDIR /srv\nCOPY g /srv/g\n"


def _poison(cache: Path, refs: list[str], digest: str) -> int:
    """Point every layer of every layered stage entry at ``refs`` (in turn), recording
    ``digest`` for each."""
    poisoned = 0
    for record in (cache / "builds").glob("*/stage.json"):
        state = json.loads(record.read_text())
        layers = state.get("snapshot", {}).get("layers", [])
        for n, layer in enumerate(layers):
            layer["ref"] = refs[n % len(refs)]
            layer["digest"] = digest
            poisoned += 1
        record.write_text(json.dumps(state))
        shutil.rmtree(record.parent / "image", ignore_errors=True)  # exported again from it
    return poisoned


@pytest.mark.parametrize("refs", [
    # <cache>/actions/../../planted/layer: a directory of the attacker's outside the
    # cache, with its digest recorded
    ["action:../../planted"],
    ["image:..", "stage:/", "flat:../../planted"],
    ["work:deadbeef", "action:"],
], ids=["traversal", "root-and-parent", "unstored-kinds"])
def test_layer_refs_out_of_the_cache_are_misses(tmp_path: Path, refs: list[str]) -> None:
    planted = tmp_path / "planted"
    for inner in ("layer", "rootfs"):
        (planted / inner).mkdir(parents=True)
        (planted / inner / "stolen").write_bytes(b"must never reach the image\n")
    recorded = layer_digest(planted / "layer")
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("refs", CONTAINERFILE, files={"f": b"f\n", "g": b"g\n"})
    first = tree.build("test-refs", extra=("--snapshots", "overlay", "--json"))
    if first.returncode != 0 and json.loads(first.stdout)["error"]["kind"] == "sandbox":
        pytest.skip("overlay snapshots are not available here")
    assert first.returncode == 0, first.stderr
    digest = manifest_digest(tree.out / "test-refs")
    assert _poison(tree.cache, refs, recorded) > 0
    shutil.rmtree(tree.out)
    again = tree.build("test-refs", extra=("--snapshots", "overlay"))
    assert again.returncode == 0, again.stderr
    assert manifest_digest(tree.out / "test-refs") == digest
    canaries.assert_unchanged()


def test_a_layer_swapped_for_a_link_to_the_host_is_not_used(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("refs", CONTAINERFILE, files={"f": b"f\n", "g": b"g\n"})
    first = tree.build("test-refs", extra=("--snapshots", "overlay", "--json"))
    if first.returncode != 0 and json.loads(first.stdout)["error"]["kind"] == "sandbox":
        pytest.skip("overlay snapshots are not available here")
    assert first.returncode == 0, first.stderr
    digest = manifest_digest(tree.out / "test-refs")
    layers = sorted((tree.cache / "actions").glob("*/layer"))
    assert layers
    for layer in layers:
        shutil.rmtree(layer)
        os.symlink(canaries.dir, layer)
    shutil.rmtree(tree.out)
    again = tree.build("test-refs", extra=("--snapshots", "overlay"),
                       timeout=300)
    assert again.returncode == 0, again.stderr
    assert manifest_digest(tree.out / "test-refs") == digest
    canaries.assert_unchanged()
