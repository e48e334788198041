"""``trace``: a 3-level chain reaches the seed; every kind of broken link is caught."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from kinds import raises_kind
from provenance_fixtures import (
    CHILD_PKG,
    GRANDCHILD_PKG,
    NAMESPACE,
    SEED_PKG,
    SEED_SHA,
    build,
    layout_digest,
    plain_source,
    record,
    seed_source,
    three_level_chain,
    write_layout,
)
from rootseed.engine.record import ParentImage
from rootseed.errors import ErrorKind
from rootseed.oci.verified import BlobError, BlobProblem
from rootseed.provenance.statement import write_statement
from rootseed.provenance.trace import trace


def _manifest_sha(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    blob = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    return "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()


def test_three_levels_reach_the_seed(tmp_path: Path) -> None:
    chain = three_level_chain(tmp_path)
    root = trace(tmp_path, GRANDCHILD_PKG)
    assert root.package == GRANDCHILD_PKG
    assert root.digest == chain.grandchild == _manifest_sha(tmp_path / GRANDCHILD_PKG)
    [child] = root.parents
    assert (child.package, child.digest) == (CHILD_PKG, chain.child)
    [seed] = child.parents
    assert (seed.package, seed.digest, seed.parents) == (SEED_PKG, chain.seed, [])
    assert seed.verified == ["digest recomputed", "sources pinned (sha256)",
                             f"seed: hex0-seed sha256 {SEED_SHA}"]
    assert root.verified == ["digest recomputed", "sources pinned (sha256)",
                             "parents verified (1)"]
    assert [n.package for n in root.walk()] == [SEED_PKG, CHILD_PKG, GRANDCHILD_PKG]
    assert root.location == f"out/{GRANDCHILD_PKG}"


def test_quorum_hook(tmp_path: Path) -> None:
    chain = three_level_chain(tmp_path)
    calls: list[tuple[str, str]] = []

    def status(package: str, digest: str) -> str | None:
        calls.append((package, digest))
        return "quorum 2/2" if package == CHILD_PKG else None

    root = trace(tmp_path, GRANDCHILD_PKG, quorum_status=status)
    assert sorted(calls) == sorted([(SEED_PKG, chain.seed), (CHILD_PKG, chain.child),
                                    (GRANDCHILD_PKG, chain.grandchild)])
    assert root.quorum is None and root.parents[0].quorum == "quorum 2/2"


def test_shared_parent_visited_once(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    build(tmp_path, "core-both", parents=(GRANDCHILD_PKG, SEED_PKG))
    root = trace(tmp_path, "core-both")
    names = [n.package for n in root.walk()]
    assert names == [SEED_PKG, CHILD_PKG, GRANDCHILD_PKG, "core-both"]


def test_tampered_provenance_subject(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    prov = tmp_path / CHILD_PKG / "provenance.json"
    st = json.loads(prov.read_text())
    st["subject"][0]["digest"]["sha256"] = "0" * 64
    prov.write_text(json.dumps(st))
    with raises_kind(ErrorKind.PROVENANCE, package=CHILD_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_tampered_provenance_unparseable(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    prov = tmp_path / SEED_PKG / "provenance.json"
    prov.write_text(prov.read_text().replace('"predicateType"', '"predicateTypo"'))
    with raises_kind(ErrorKind.PROVENANCE, package=SEED_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_tampered_parent_manifest_blob(tmp_path: Path) -> None:
    chain = three_level_chain(tmp_path)
    blob = tmp_path / CHILD_PKG / "blobs" / "sha256" / chain.child.split(":")[1]
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with raises_kind(ErrorKind.LAYOUT, BlobError) as e:
        trace(tmp_path, GRANDCHILD_PKG)
    assert (e.value.layout.name, e.value.role) == (CHILD_PKG, "manifest")
    assert e.value.problem in (BlobProblem.SIZE, BlobProblem.DIGEST)


def test_tampered_layer_blob(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    layer = tmp_path / SEED_PKG / "blobs" / "sha256" / hashlib.sha256(
        SEED_PKG.encode()).hexdigest()
    layer.write_bytes(b"evil")
    with raises_kind(ErrorKind.LAYOUT, BlobError) as e:
        trace(tmp_path, GRANDCHILD_PKG)
    assert (e.value.layout.name, e.value.role) == (SEED_PKG, "layer 0")
    assert e.value.problem in (BlobProblem.SIZE, BlobProblem.DIGEST)


def test_parent_rebuilt_differently(tmp_path: Path) -> None:
    chain = three_level_chain(tmp_path)
    # a fully consistent, but different, image now sits where the child's parent was
    shutil.rmtree(tmp_path / CHILD_PKG)
    new = build(tmp_path, CHILD_PKG, parents=(SEED_PKG,), content=b"something else")
    with raises_kind(ErrorKind.PROVENANCE, package=GRANDCHILD_PKG) as e:
        trace(tmp_path, GRANDCHILD_PKG)
    msg = e.value.message
    # words: names the parent, what the child was built from and what is there, for people
    assert msg.startswith(f"{GRANDCHILD_PKG}: parent {CHILD_PKG} does not match")
    assert chain.child in msg and new in msg


def test_parent_found_in_cache(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    chain = three_level_chain(out)
    original = cache / "images" / chain.child.split(":")[1]
    shutil.copytree(out / CHILD_PKG, original)
    shutil.rmtree(out / CHILD_PKG)
    build(out, CHILD_PKG, parents=(SEED_PKG,), content=b"rebuilt with other inputs")
    root = trace(out, GRANDCHILD_PKG, cache_dir=cache)
    assert root.parents[0].location == f"cache/images/{chain.child.split(':')[1]}"
    assert root.parents[0].digest == chain.child
    with raises_kind(ErrorKind.PROVENANCE, package=GRANDCHILD_PKG):
        trace(out, GRANDCHILD_PKG)  # without the cache the link is broken


def test_damaged_parent_in_out_intact_in_cache(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    chain = three_level_chain(out)
    hexd = chain.child.split(":")[1]
    shutil.copytree(out / CHILD_PKG, cache / "images" / hexd)
    (out / CHILD_PKG / "blobs" / "sha256" / hexd).write_bytes(b"{}")
    root = trace(out, GRANDCHILD_PKG, cache_dir=cache)
    assert root.parents[0].location == f"cache/images/{hexd}"
    with raises_kind(ErrorKind.LAYOUT, BlobError) as e:
        trace(out, GRANDCHILD_PKG, cache_dir=tmp_path / "empty-cache")
    assert (e.value.layout.name, e.value.role) == (CHILD_PKG, "manifest")
    assert e.value.problem in (BlobProblem.SIZE, BlobProblem.DIGEST)


def test_missing_parent(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    shutil.rmtree(tmp_path / CHILD_PKG)
    with raises_kind(ErrorKind.PROVENANCE, package=GRANDCHILD_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_missing_provenance(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    (tmp_path / CHILD_PKG / "provenance.json").unlink()
    with raises_kind(ErrorKind.PROVENANCE, package=CHILD_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_chain_without_seed(tmp_path: Path) -> None:
    three_level_chain(tmp_path, seed_marked=False)
    with raises_kind(ErrorKind.PROVENANCE, package=SEED_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_unbuilt_package(tmp_path: Path) -> None:
    with raises_kind(ErrorKind.PROVENANCE, package="nope"):
        trace(tmp_path, "nope")


def test_provenance_of_another_package(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    digest = layout_digest(tmp_path / CHILD_PKG)
    write_statement(tmp_path / CHILD_PKG,
                    record("core-other", digest, sources=(seed_source(),)))
    with raises_kind(ErrorKind.PROVENANCE, package=CHILD_PKG):
        trace(tmp_path, GRANDCHILD_PKG)


def test_forged_cycle(tmp_path: Path) -> None:
    a = write_layout(tmp_path / "x-a", b"a")
    b = write_layout(tmp_path / "x-b", b"b")
    write_statement(tmp_path / "x-a", record(
        "x-a", a, sources=(plain_source("s"),),
        parents=(ParentImage("x-b", f"{NAMESPACE}/x-b", b),)))
    write_statement(tmp_path / "x-b", record(
        "x-b", b, parents=(ParentImage("x-a", f"{NAMESPACE}/x-a", a),)))
    with raises_kind(ErrorKind.PROVENANCE, package="x-a"):
        trace(tmp_path, "x-a")
