"""Per-instruction actions on copy-on-write snapshots: resume, --no-cache(-from), events,
and the cache as untrusted input (issue #12 item 4)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import Result
from clirun import rootseed as run_cli
from kinds import raises_kind
from rootseed.engine.engine import Builder, BuildOptions, NoCacheFrom
from rootseed.engine.ops import StepFailed
from rootseed.errors import ErrorKind
from rootseed.oci import read_image, unpack_image
from rootseed.tree import Tree

needs_overlay = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None or shutil.which("unshare") is None,
    reason="needs a static busybox, bubblewrap and util-linux")


def twenty_steps(fail_at: int | None) -> str:
    lines = ["FROM rs/bootstrap-base"]
    for n in range(1, 21):
        if n == fail_at:
            lines.append(f"RUN echo {n} >> /steps && false")
        else:
            lines.append(f"RUN echo {n} >> /steps")
    return "\n".join(lines) + "\n"


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def steps(self, kind: str, package: str = "core-app") -> list[int]:
        return [e["step"] for e in self.events
                if e["event"] == kind and e["package"] == package]


def _builder(tree: Path, tmp: Path) -> Builder:
    return Builder(Tree.load(tree), cache_dir=tmp / "cache", out=tmp / "out")


def _opts(rec: Recorder, **kw: Any) -> BuildOptions:
    return BuildOptions(progress=False, events=rec, snapshots="overlay", **kw)


@needs_overlay
def test_a_failed_build_resumes_at_the_failing_step(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    d = app_package(tree, twenty_steps(fail_at=15))
    b = _builder(tree, tmp_path)
    rec = Recorder()
    with pytest.raises(StepFailed) as failed:
        b.build(["core-app"], _opts(rec))
    assert (failed.value.status, failed.value.line) == (1, 16) and failed.value.log.is_file()
    assert rec.steps("end") == list(range(1, 15))
    assert rec.steps("failed") == [15]
    (d / "Containerfile").write_text(twenty_steps(fail_at=None))  # fixed
    rec = Recorder()
    result = b.build(["core-app"], _opts(rec))[-1]
    assert rec.steps("cached") == list(range(1, 15))
    assert rec.steps("end") == list(range(15, 21))  # only steps 15-20 executed
    unpack_image(result.image, tmp_path / "img")
    assert (tmp_path / "img" / "steps").read_text() == "".join(f"{n}\n" for n in range(1, 21))
    # the same image as a build from nothing
    fresh = Builder(Tree.load(tree), cache_dir=tmp_path / "fresh", out=tmp_path / "o2")
    assert fresh.build(["core-app"], _opts(Recorder()))[-1].manifest_digest \
        == result.manifest_digest
    b.close()
    fresh.close()


@needs_overlay
def test_no_cache_and_no_cache_from(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, twenty_steps(fail_at=None))
    b = _builder(tree, tmp_path)
    first = b.build(["core-app"], _opts(Recorder()))[-1]
    rec = Recorder()
    again = b.build(["core-app"], _opts(rec))[-1]
    assert again.cached and rec.events == []  # the stage entry is a hit: no step at all
    rec = Recorder()
    b.build(["core-app"], _opts(rec, no_cache_from=NoCacheFrom(10)))
    assert rec.steps("cached") == list(range(1, 10))
    assert rec.steps("end") == list(range(10, 21))
    assert rec.steps("end", "bootstrap-base") == []  # only the named package's steps
    rec = Recorder()
    last = b.build(["core-app"], _opts(rec, no_cache=True))[-1]
    assert rec.steps("end") == list(range(1, 21)) and rec.steps("cached") == []
    assert last.manifest_digest == first.manifest_digest
    with raises_kind(ErrorKind.USAGE, package="core-app"):
        b.build(["core-app"], _opts(rec, no_cache_from=NoCacheFrom(99)))
    with raises_kind(ErrorKind.USAGE):
        NoCacheFrom.parse("x:y")
    assert NoCacheFrom.parse("build:3") == NoCacheFrom(3, "build")
    b.close()


@needs_overlay
def test_step_layers_hold_only_what_changed(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base\nRUN echo x > /one-file\n"
                      "RUN rm /greeting && rm -r /archives\n")
    b = _builder(tree, tmp_path)
    rec = Recorder()
    b.build(["core-app"], _opts(rec))
    keys = [e["key"] for e in rec.events
            if e["event"] == "end" and e["package"] == "core-app"]
    first, second = (tmp_path / "cache" / "actions" / k / "layer" for k in keys)
    assert sorted(p.name for p in first.iterdir()) == ["one-file"]  # no /dev, /proc, /tmp
    assert sorted(p.name for p in second.iterdir()) == ["archives", "greeting"]
    assert all(p.is_char_device() for p in second.iterdir())  # whiteouts
    b.close()


@needs_overlay
def test_a_poisoned_cache_entry_is_reported_and_rebuilt(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, twenty_steps(fail_at=None))
    b = _builder(tree, tmp_path)
    rec = Recorder()
    first = b.build(["core-app"], _opts(rec))[-1]
    b.close()
    key = next(e["key"] for e in rec.events
               if e["event"] == "end" and e["step"] == 5 and e["package"] == "core-app")
    poisoned = tmp_path / "cache" / "actions" / key / "layer" / "steps"
    poisoned.write_text("evil\n")
    # also an unpacked parent image and a blob in out/
    unpacked = next((tmp_path / "cache" / "images").glob("*/rootfs"))
    (unpacked / "greeting").write_text("evil\n")
    layer_blob = read_image(first.image).layer_blob_paths[0]
    layer_blob.write_bytes(layer_blob.read_bytes() + b"x")
    b = _builder(tree, tmp_path)
    rec = Recorder()
    again = b.build(["core-app"], _opts(rec))[-1]
    joined = "\n".join(b.warnings)
    assert "does not match the digest recorded" in joined
    assert f"action {key[:16]}" in joined and "unpacked image" in joined
    assert "writing it again" in joined  # out/ repaired
    assert again.manifest_digest == first.manifest_digest
    assert 5 in rec.steps("end")  # the poisoned step ran again
    assert poisoned.read_text() != "evil\n"
    unpack_image(again.image, tmp_path / "img")
    assert b"evil" not in (tmp_path / "img" / "steps").read_bytes()
    assert (tmp_path / "img" / "greeting").read_text() != "evil\n"
    b.close()


@needs_overlay
def test_sealed_entries_skip_rehashing_until_anything_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOTSEED_SEAL_KEY", str(tmp_path / "key" / "seal.key"))
    tree = make_tree(tmp_path)
    app_package(tree, twenty_steps(fail_at=None))
    with _builder(tree, tmp_path) as b:
        rec = Recorder()
        first = b.build(["core-app"], _opts(rec))[-1]
    assert oct((tmp_path / "key" / "seal.key").stat().st_mode & 0o777) == "0o600"
    with _builder(tree, tmp_path) as b:  # a new process would do the same
        assert b.build(["core-app"], _opts(Recorder()))[-1].cached
        assert b.verifier.sealed_checks > 0 and b.verifier.full_checks == 0
    key = next(e["key"] for e in rec.events
               if e["event"] == "end" and e["step"] == 7 and e["package"] == "core-app")
    steps = tmp_path / "cache" / "actions" / key / "layer" / "steps"
    st = steps.stat()
    steps.write_text("evil!!\n"[: st.st_size].ljust(st.st_size, "\n"))  # same size,
    os.utime(steps, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime moved
    with _builder(tree, tmp_path) as b:
        again = b.build(["core-app"], _opts(Recorder()))[-1]
        assert any(f"action {key[:16]}" in w for w in b.warnings)
        assert b.verifier.full_checks > 0
    assert again.manifest_digest == first.manifest_digest
    # a seal made with another key is worth nothing, and so are the records (#20): the
    # entries are not believed at all (rebuilt), whatever their content hashes to
    monkeypatch.setenv("ROOTSEED_SEAL_KEY", str(tmp_path / "other.key"))
    with _builder(tree, tmp_path) as b:
        rec = Recorder()
        again = b.build(["core-app"], _opts(rec))[-1]
        assert b.verifier.sealed_checks == 0 and not again.cached
        assert any("not written by rootseed under this user's key" in w for w in b.warnings)
    assert again.manifest_digest == first.manifest_digest


def _cli(*args: str) -> Result:
    return run_cli(*args)


@needs_overlay
def test_cli_events_live_lines_and_resume(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    d = app_package(tree, twenty_steps(fail_at=3))
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out",
              str(tmp_path / "o")]
    r = _cli("build", "core-app", "--snapshots", "overlay", *common)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    # words: the live progress lines are for people (not an error)
    assert "stage 0 (1 of 1): step 2 of 20: RUN echo 2 >> /steps (log: " in r.stderr
    # words: the message names the step's log, for people
    log = next(line for line in r.stderr.splitlines() if "full log:" in line).split()[-1]
    # words: as above
    assert Path(log).is_file() and str(tmp_path / "c") in log
    (d / "Containerfile").write_text(twenty_steps(fail_at=None))
    r = _cli("build", "core-app", "--json", "--no-cache-from", "18", *common)
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    mine = [e for e in events if e["package"] == "core-app"]
    assert {e["event"] for e in mine} == {"cached", "start", "end"}
    assert [e["step"] for e in mine if e["event"] == "cached"] == [1, 2]  # before the fix
    assert [e["step"] for e in mine if e["event"] == "end"] == list(range(3, 21))
    assert all(isinstance(e["seconds"], float) for e in mine if e["event"] != "start")
    assert json.loads(r.stdout)["results"][-1]["package"] == "core-app"


@needs_overlay
def test_a_long_step_shows_its_last_output_line_and_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The live line of a running step: where the build stands (stage N of M, step i of
    n), the step's last output line (escaped, one line, bounded) and its log's path."""
    import rootseed.engine.executor as executor

    monkeypatch.setattr(executor, "TICK_SECONDS", 0.5)
    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base AS first\nRUN echo one > /one\n"
                      "FROM first\nRUN printf 'compiling x.c\\n\\033[31mred %s\\n' "
                      "\"$(seq -s ' ' 1 100)\"; sleep 3\n")
    with _builder(tree, tmp_path) as b:
        b.build(["core-app"], BuildOptions(progress=True, snapshots="overlay"))
    err = capsys.readouterr().err
    live = [line for line in err.splitlines()
            if line.startswith("core-app: stage 1 (2 of 2): step 1 of 1: RUN printf")]
    assert "(log: " in live[0] and live[0].rstrip(")").endswith(".log")
    log = Path(live[0].rsplit("(log: ", 1)[1].rstrip(")"))
    assert log.is_file() and b"compiling x.c" in log.read_bytes()
    ticks = [line for line in live[1:] if "s): " in line]
    assert ticks, err
    shown = ticks[-1].split("s): ", 1)[1]
    assert shown.startswith("\\x1b[31mred 1 2 3") and shown.endswith("…")
    assert len(shown) == 120 and "\x1b" not in ticks[-1]
