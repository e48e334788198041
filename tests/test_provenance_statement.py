"""In-toto v1 / SLSA v1 statements: field requirements, determinism, atomic writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kinds import raises_kind
from provenance_fixtures import SEED_SHA, plain_source, record, seed_source, sha
from rootseed.console import canonical_json
from rootseed.engine.record import ParentImage
from rootseed.errors import ErrorKind
from rootseed.provenance.statement import (
    make_statement,
    read_statement,
    statement_bytes,
    write_statement,
)
from rootseed.provenance.validate import statement_problems, validate_statement

DIGEST = "sha256:" + sha(b"manifest")
PARENT = "sha256:" + sha(b"parent manifest")


def sample() -> Any:
    return record("bootstrap-stage0", DIGEST, target="build",
                  sources=(plain_source("stage0-posix"), seed_source()),
                  parents=(ParentImage("bootstrap-seed", "rootseed/bootstrap-seed", PARENT),))


def test_statement_fields() -> None:
    st = make_statement(sample())
    assert statement_problems(st) == []
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [{"name": "rootseed/bootstrap-stage0",
                              "digest": {"sha256": DIGEST.removeprefix("sha256:")},
                              "annotations": {"package": "bootstrap-stage0", "version": "1.0"}}]
    bd = st["predicate"]["buildDefinition"]
    assert bd["externalParameters"] == {
        "package": "bootstrap-stage0", "target": "build",
        "buildArgs": {"VERSION": "1.0", "SOURCE_DATE_EPOCH": "1"}}
    deps = bd["resolvedDependencies"]
    seeds = [d for d in deps if d["annotations"].get("seed") is True]
    assert seeds == [{"uri": "file:seed/hex0-seed", "name": "hex0-seed",
                      "digest": {"sha256": SEED_SHA},
                      "annotations": {"kind": "source", "id": "hex0", "seed": True}}]
    images = [d for d in deps if d["annotations"]["kind"] == "image"]
    assert images == [{"uri": "oci:rootseed/bootstrap-seed", "name": "rootseed/bootstrap-seed",
                       "digest": {"sha256": PARENT.removeprefix("sha256:")},
                       "annotations": {"kind": "image", "package": "bootstrap-seed"}}]
    kinds = sorted(d["annotations"]["kind"] for d in deps)
    assert kinds == ["containerfile", "context", "image", "source", "source"]
    run = st["predicate"]["runDetails"]
    assert run["builder"]["version"] == {"rootseed": "0.1.0"}
    assert "metadata" not in run  # no timestamps, no invocation ids


def test_target_omitted_when_none() -> None:
    st = make_statement(record("a-b", DIGEST, sources=(seed_source(),)))
    assert "target" not in st["predicate"]["buildDefinition"]["externalParameters"]
    assert statement_problems(st) == []


def test_deterministic_bytes(tmp_path: Path) -> None:
    rec = sample()
    shuffled = record("bootstrap-stage0", DIGEST, target="build",
                      sources=(seed_source(), plain_source("stage0-posix")),
                      parents=rec.parents * 2)  # order and duplicates do not matter
    assert statement_bytes(rec) == statement_bytes(sample()) == statement_bytes(shuffled)
    assert statement_bytes(rec) == (canonical_json(make_statement(rec)) + "\n").encode()
    first = write_statement(tmp_path, rec).read_bytes()
    second = write_statement(tmp_path, rec).read_bytes()
    assert first == second == statement_bytes(rec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["provenance.json"]  # no temp files
    assert str(tmp_path) not in first.decode()


def test_round_trip(tmp_path: Path) -> None:
    prov = read_statement(write_statement(tmp_path, sample()))
    assert prov.subject_digest == DIGEST
    assert prov.package == "bootstrap-stage0"
    assert [s.file for s in prov.seeds] == ["hex0-seed"]
    assert [(p.package, p.digest) for p in prov.parents] == [("bootstrap-seed", PARENT)]


def _set(st: dict[str, Any], path: str, value: Any) -> None:
    *keys, last = path.split(".")
    obj: Any = st
    for k in keys:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    if value is _DELETE:
        del obj[last]
    elif isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "expect"), [
    ("_type", "https://in-toto.io/Statement/v0.1", "_type"),
    ("subject", [], "subject"),
    ("subject.0.digest", _DELETE, "digest"),
    ("subject.0.digest.sha256", "ABCDEF", "hex"),
    ("predicateType", "", "Predicate type"),
    ("predicate.buildDefinition.buildType", _DELETE, "buildType"),
    ("predicate.buildDefinition.externalParameters", _DELETE, "externalParameters"),
    ("predicate.buildDefinition.bogusField", 1, "bogusField"),
    ("predicate.buildDefinition.resolvedDependencies.0", {"name": "x"}, "uri, digest"),
    ("predicate.buildDefinition.resolvedDependencies.0.annotations",
     {"kind": "image"}, "annotations.package"),
    ("predicate.runDetails.builder.id", _DELETE, "builder.id"),
    ("predicate.runDetails", _DELETE, "builder.id"),
])
def test_invalid_statements_rejected(path: str, value: Any, expect: str) -> None:
    st = copy.deepcopy(make_statement(sample()))
    _set(st, path, value)
    problems = statement_problems(st)
    assert problems, f"mutation of {path} was not detected"
    assert any(expect in p for p in problems), problems
    with raises_kind(ErrorKind.PROVENANCE):
        validate_statement(st, where="test")


def test_read_statement_errors(tmp_path: Path) -> None:
    with raises_kind(ErrorKind.PROVENANCE, package="pkg"):
        read_statement(tmp_path / "provenance.json", package="pkg")
    (tmp_path / "provenance.json").write_text("{not json")
    with raises_kind(ErrorKind.PROVENANCE, package="pkg"):
        read_statement(tmp_path / "provenance.json", package="pkg")
    st = make_statement(sample())
    del st["predicate"]["runDetails"]["builder"]["id"]
    (tmp_path / "provenance.json").write_text(json.dumps(st))
    with raises_kind(ErrorKind.PROVENANCE):
        read_statement(tmp_path / "provenance.json", package="pkg")
