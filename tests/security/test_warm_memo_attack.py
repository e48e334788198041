"""Red-team: the two memos that keep a warm rebuild fast, and ``out/``'s provenance.

* ``<cache>/statements/<name>.json`` says a provenance statement's exact bytes passed the
  in-toto/SLSA validation (engine/statements.py): a memo planted or copied by someone
  without the seal key must not let an invalid statement through;
* ``<cache>/overlay-probe.json`` says overlay worked on this boot (engine/lazyoverlay.py):
  a forged one is not believed (the probe runs at once, as without a memo);
* a warm rebuild into an ``out/`` whose ``provenance.json`` was edited (still valid JSON,
  another subject) writes the exact statement again and never keeps the edited one.

Each attack ends with the host unchanged (canaries) where the build ran.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree
from kinds import raises_kind
from rootseed.engine import lazyoverlay
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.maintenance import prune
from rootseed.engine.records import Kind, Records
from rootseed.engine.statements import Statements
from rootseed.errors import ErrorKind, RootseedError
from rootseed.provenance.record import BuildRecord, ParentImage
from rootseed.provenance.statement import read_statement, statement_bytes
from rootseed.sandbox.overlay import OverlayNamespace
from rootseed.tree import Tree

IMAGE = "test-plain"


def invalid_record() -> BuildRecord:
    """A record whose statement fails validation (a parent that is no image name)."""
    return BuildRecord(
        package="test-plain", version="1.0", namespace="evil", containerfile_sha256="0" * 64,
        target=None, build_args={}, sources=(),
        parents=(ParentImage(package="../../etc", reference="x",
                             manifest_digest="sha256:" + "1" * 64),),
        manifest_digest="sha256:" + "2" * 64, rootseed_version="0.1.0", context_files={})


def memo_path(statements: Statements, record: BuildRecord) -> Path:
    return statements.dir / f"{statements._name(statement_bytes(record))}.json"


def test_a_planted_statement_memo_does_not_skip_validation(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    statements = Statements(tmp_path, Records(key))
    record = invalid_record()
    path = memo_path(statements, record)
    path.parent.mkdir()
    name = path.stem
    forged = [
        {"valid": True},  # no MAC at all
        {"valid": True, "mac": "0" * 64},  # a made-up one
        Records(secrets.token_bytes(32)).sign(Kind.STATEMENT, name, {"valid": True}),  # key
        Records(key).sign(Kind.STAGE, name, {"valid": True}),  # another kind of record
        Records(key).sign(Kind.STATEMENT, "0" * 64, {"valid": True}),  # another statement's
    ]
    for memo in forged:
        path.write_text(json.dumps(memo))
        with raises_kind(ErrorKind.PROVENANCE):
            statements.validated(record)
    # the memo only ever stands for what passed: a genuine one for these bytes is believed
    path.write_bytes(Records(key).encode(Kind.STATEMENT, name, {"valid": True}))
    assert statements.validated(record) == statement_bytes(record)


def test_a_statement_that_fails_is_never_remembered(tmp_path: Path) -> None:
    statements = Statements(tmp_path, Records(secrets.token_bytes(32)))
    for _ in range(2):
        with pytest.raises(RootseedError):
            statements.validated(invalid_record())
    assert not memo_path(statements, invalid_record()).exists()


def plain(tmp_path: Path) -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    return tree


def builder(tree: HostileTree) -> Builder:
    return Builder(Tree.load(tree.root), cache_dir=tree.cache, out=tree.out,
                   mirrors=[tree.mirror], offline=True)


def test_an_edited_provenance_in_out_is_written_again_on_a_warm_rebuild(
        tmp_path: Path) -> None:
    tree = plain(tmp_path)
    with builder(tree) as b:
        digest = b.build([IMAGE], BuildOptions(progress=False))[-1].manifest_digest
    path = tree.out / IMAGE / "provenance.json"
    good = path.read_bytes()
    host = Canaries(tmp_path)
    edited = json.loads(good)
    edited["subject"][0]["digest"]["sha256"] = "3" * 64  # valid, but names another image
    for planted in (json.dumps(edited).encode(), good[:-1], good + b" ", b"{}"):
        path.write_bytes(planted)
        with builder(tree) as b:  # warm: every stage and the image are cache hits
            result = b.build([IMAGE], BuildOptions(progress=False))[-1]
        assert result.cached and result.manifest_digest == digest
        assert path.read_bytes() == good
        assert read_statement(path, package=IMAGE).subject_digest == digest
    host.assert_unchanged()


def test_a_forged_overlay_probe_memo_is_not_believed(tmp_path: Path) -> None:
    tree = plain(tmp_path)
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    memo = tree.cache / "overlay-probe.json"
    genuine = json.loads(memo.read_bytes())
    key = secrets.token_bytes(32)
    forged = [
        {**genuine, "mac": "0" * 64},
        Records(key).sign(Kind.PROBE, "overlay-probe", genuine),  # under another key
        {**genuine, "boot": "another boot"},  # the MAC no longer matches
    ]
    for data in forged:
        memo.write_text(json.dumps(data))
        with builder(tree) as b:
            b.build([IMAGE], BuildOptions(progress=False))
            ns = getattr(b.executor, "ns", None)
            # the probe ran at once, as with no memo: a namespace of its own, not a lazy one
            assert isinstance(ns, OverlayNamespace)
            assert not isinstance(ns, lazyoverlay.LazyNamespace)
        # ... and a genuine memo was written again
        assert Records().read(tree.cache, memo, Kind.PROBE, "overlay-probe").record is not None


def test_a_probe_memo_of_another_boot_is_not_believed(tmp_path: Path) -> None:
    tree = plain(tmp_path)
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    records = Records()
    scratch = tree.cache / "work"
    assert lazyoverlay.passed_before(tree.cache, scratch, records)
    where = {**lazyoverlay._where(scratch), "boot": "0" * 36}  # signed, but another boot
    records.write(tree.cache, tree.cache / "overlay-probe.json", Kind.PROBE, "overlay-probe",
                  where)
    assert not lazyoverlay.passed_before(tree.cache, scratch, records)


def test_memo_places_planted_as_links_are_never_written_through(tmp_path: Path) -> None:
    """``statements/`` and ``overlay-probe.json`` planted as links to the host: the build
    works, no memo is read or written through either link, and the host is unchanged."""
    tree = plain(tmp_path)
    host = Canaries(tmp_path)
    tree.cache.mkdir(mode=0o700)
    (tree.cache / "statements").symlink_to(host.dir)
    (tree.cache / "overlay-probe.json").symlink_to(host.public)
    for _ in range(2):  # cold, then warm
        with builder(tree) as b:
            result = b.build([IMAGE], BuildOptions(progress=False))[-1]
        assert read_statement(result.image / "provenance.json",
                              package=IMAGE).subject_digest == result.manifest_digest
    assert (tree.cache / "statements").is_symlink()  # refused: no memo, validated again
    # the link itself is replaced by the memo (a new file renamed onto its name)
    assert not (tree.cache / "overlay-probe.json").is_symlink()
    host.assert_unchanged()


def test_prune_removes_a_memo_planted_as_a_link_never_its_target(tmp_path: Path) -> None:
    """A link in place of the probe memo or of a statement memo is removed by ``cache
    prune`` as the memo would be; what it points to on the host stays as it was."""
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    (cache / "statements").mkdir(parents=True)
    (cache / "overlay-probe.json").symlink_to(host.public)
    (cache / "statements" / f"{'a' * 64}.json").symlink_to(host.subdir)
    assert prune(cache, keep_days=0).removed == {"statements": 1, "memos": 1}
    assert not os.path.lexists(cache / "overlay-probe.json")
    assert not os.listdir(cache / "statements")
    host.assert_unchanged()
