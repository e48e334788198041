from __future__ import annotations

import dataclasses
from pathlib import Path

from rootseed.crosscheck.memo import recall, remember
from rootseed.engine.record import BuildRecord

RECORD = BuildRecord(package="bootstrap-stage0", version="1", namespace="rootseed",
                     containerfile_sha256="a" * 64, target=None, build_args={"X": "1"},
                     sources=(), parents=(), manifest_digest="sha256:" + "b" * 64,
                     rootseed_version="0.1.0")
PASS = [{"identical": True, "summary": "seed ok"}, {"identical": True, "summary": "3 same"}]


def test_passing_result_is_recalled_and_labelled(tmp_path: Path) -> None:
    assert recall(tmp_path, RECORD) is None
    remember(tmp_path, RECORD, PASS)
    lines = recall(tmp_path, RECORD)
    assert lines is not None and [x["identical"] for x in lines] == [True, True]
    assert all(x["recalled"] and "recalled" in x["summary"] for x in lines)


def test_failures_are_never_remembered(tmp_path: Path) -> None:
    remember(tmp_path, RECORD, [*PASS, {"identical": False, "summary": "M1 differs"}])
    assert recall(tmp_path, RECORD) is None


def test_another_build_is_a_miss(tmp_path: Path) -> None:
    remember(tmp_path, RECORD, PASS)
    other = dataclasses.replace(RECORD, containerfile_sha256="c" * 64)
    assert recall(tmp_path, other) is None


def test_tampered_memo_with_a_failure_is_ignored(tmp_path: Path) -> None:
    remember(tmp_path, RECORD, PASS)
    (path,) = (tmp_path / "crosscheck").iterdir()
    path.write_text('[{"identical": false, "summary": "x"}]')
    assert recall(tmp_path, RECORD) is None


def test_the_crosscheck_report_is_kept_per_build(tmp_path: Path) -> None:
    from rootseed.crosscheck.memo import recall_report, remember_report

    assert recall_report(tmp_path, RECORD, ["gcc"]) is None
    remember_report(tmp_path, RECORD, b'{"package":"bootstrap-stage0"}\n', ["gcc"])
    assert recall_report(tmp_path, RECORD, ["gcc"]) == b'{"package":"bootstrap-stage0"}\n'
    assert recall_report(tmp_path, RECORD, ["clang"]) is None
    other = dataclasses.replace(RECORD, containerfile_sha256="c" * 64)
    assert recall_report(tmp_path, other, ["gcc"]) is None
