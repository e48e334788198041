"""StageX's stage1 head through the engine: resumes after an injected failure, with the
same binaries as live-bootstrap publishes (needs the stage0 and stage1-head mirrors; see
tests/test_stage1_head.py for the variables). Reads the run's one stage0 build
(``stage0_built`` in conftest.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from kinds import raises_kind
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.errors import ErrorKind
from rootseed.oci import unpack_image
from rootseed.tree import Tree
from test_stage1_head import HEAD_TREE, make_tree, mirrors, published_checksums

INJECT_AFTER = "RUN pass1.kaem\n"  # after checksum-transcriber-1.0, before simple-patch
INJECTED = 'RUN ["/usr/bin/injected-failure"]\n'
# The cache is the run's shared one, where test_stage1_head may have built this very stage:
# an ENV of this test's own gives every step of the build stage keys of its own (the
# binaries do not read it: the checksums below still hold), so the first build runs them.
OWN_KEYS = ("ENV ARCH=x86\n", "ENV ARCH=x86\nENV ROOTSEED_RESUME_TEST=1\n")

pytestmark = pytest.mark.mirror


def _build(packages: Path, tmp: Path, cache: Path, stage0: Path, stage1: Path,
           events: list[dict[str, Any]]) -> Any:
    builder = Builder(Tree.load(packages), cache_dir=cache, out=tmp / "out",
                      mirrors=(stage0, stage1), offline=True)
    with builder:
        return builder.build(["bootstrap-stage1-head"],
                             BuildOptions(progress=False, snapshots="overlay",
                                          events=events.append))


def test_stage1_head_resumes_after_an_injected_failure(tmp_path: Path, stage0_built: Path
                                                      ) -> None:
    stage0, stage1 = mirrors()
    cache = stage0_built
    packages = make_tree(tmp_path, HEAD_TREE / "bootstrap" / "stage1-head")
    containerfile = packages / "bootstrap" / "stage1-head" / "Containerfile"
    good = containerfile.read_text(encoding="utf-8")
    assert good.count(OWN_KEYS[0]) == 1
    good = good.replace(*OWN_KEYS)
    assert good.count(INJECT_AFTER) == 2
    at = good.index(INJECT_AFTER) + len(INJECT_AFTER)
    containerfile.write_text(good[:at] + INJECTED + good[at:], encoding="utf-8")
    events: list[dict[str, Any]] = []
    line = good[:at].count("\n") + 1  # the injected step: its command is not in the image
    with raises_kind(ErrorKind.STEP, package="bootstrap-stage1-head", line=line, step="RUN"):
        _build(packages, tmp_path, cache, stage0, stage1, events)
    kaem = [e["step"] for e in events if e["event"] == "end" and e["stage"] == "build"
            and e["package"] == "bootstrap-stage1-head" and e["instruction"] == "RUN pass1.kaem"]
    assert len(kaem) == 1  # checksum-transcriber's pass1.kaem ran, then the injected step failed
    first = kaem[0]
    containerfile.write_text(good, encoding="utf-8")  # the failure removed
    events = []
    results = _build(packages, tmp_path, cache, stage0, stage1, events)
    mine = [e for e in events if e["package"] == "bootstrap-stage1-head"]
    cached = {(e["stage"], e["step"]) for e in mine if e["event"] == "cached"}
    executed = [(e["stage"], e["step"]) for e in mine if e["event"] == "end"]
    assert ("build", first) in cached  # the step before the failure: a hit
    # only what follows the failure runs: the rest of build, then the export stage
    assert [x for x in executed if x[0] == "build"] and all(
        step > first for stage, step in executed if stage == "build"), executed
    assert {stage for stage, _ in executed} <= {"build", "package"}, executed
    assert not any(e["package"] == "bootstrap-stage0" for e in events if e["event"] == "end")
    (result,) = [r for r in results if r.package == "bootstrap-stage1-head"]
    rootfs = tmp_path / "rootfs"
    unpack_image(result.image, rootfs)
    for path, sha in published_checksums(next(stage1.glob("live-bootstrap-*.tar.gz"))).items():
        assert hashlib.sha256((rootfs / path.lstrip("/")).read_bytes()).hexdigest() == sha
