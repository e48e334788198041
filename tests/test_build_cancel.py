"""Stopping a build: at the first failure (the default) a sibling stage's running step
is killed (its sandbox, however long the step would have run) and nothing more starts; Ctrl-C (SIGINT) of ``rootseed build`` stops it too. Either
way nothing half-written is left: no out/ entry, no cache entry, no work directory.

The order of events is set by the test (see tests/sleepers.py), never by timing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import rootseed.engine.engine as engine
from buildtree import BUSYBOX, base_package, write
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.errors import Knock
from rootseed.engine.ops import StepFailed
from rootseed.errors import RootseedError
from rootseed.tree import Tree
from sleepers import WAIT, alive, end, end_all, marker, wait_until

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def make_tree(root: Path, containerfile: str) -> Path:
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base_package(tree)
    d = tree / "core" / "app"
    write(d / "package.toml", '[package]\nname = "app"\nversion = "1"\n')
    write(d / "Containerfile", containerfile)
    return tree


def assert_nothing_half_written(cache: Path, out: Path) -> None:
    """Only whole things: out/ has no app and no temp entry; every cache entry is
    complete and is not a stage of app; no work directory is left."""
    assert not (out / "core-app").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for entry in (cache / "builds").iterdir():
        state = json.loads((entry / "stage.json").read_text())
        assert state["package"] != "core-app", state
    assert not [p for p in (cache / "work").iterdir() if p.is_dir()]


class _Watched(threading.Event):
    """The build's cancel event, telling the test when it is set."""

    seen = threading.Event()

    def set(self) -> None:
        super().set()
        _Watched.seen.set()


def test_a_failing_stage_kills_a_running_sibling_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = {"slow": marker(), "bad": marker()}
    tree = make_tree(tmp_path, f"""\
FROM rs/bootstrap-base AS slow
RUN sleep {markers["slow"]} || true; echo one > /one
RUN echo two > /two

FROM rs/bootstrap-base AS bad
RUN sleep {markers["bad"]} || true; echo about to fail; exit 3

FROM scratch
COPY --from=slow /one /one
COPY --from=bad /one /bad
""")
    real_run = engine._Run
    _Watched.seen = threading.Event()
    monkeypatch.setattr(engine, "_Run", lambda slots, _cancel, keep_going=False:
                        real_run(slots, _Watched(), keep_going))
    cache, out = tmp_path / "cache", tmp_path / "out"
    events: list[dict[str, Any]] = []
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            with Builder(Tree.load(tree), cache_dir=cache, out=out) as b:
                b.build(["core-app"], BuildOptions(jobs=2, progress=False,
                                                   events=events.append))
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        wait_until("both stages run", lambda: len(alive(markers)) == 2, thread.is_alive)
        end(alive(markers)["bad"])  # the bad stage fails now ...
        assert _Watched.seen.wait(WAIT), "the failure never cancelled the build"
        # ... and the slow step, which would sleep until the test ends it, is killed by
        # the build itself: the build ends while the test has not touched it
        thread.join(WAIT)
        assert not thread.is_alive(), "the build waited for the running sibling step"
        assert "slow" not in alive(markers)
    finally:
        end_all(markers)
        thread.join(WAIT)
    [error] = outcome
    assert isinstance(error, RootseedError) and not isinstance(error, Knock), error
    assert isinstance(error, StepFailed) and error.status == 3  # the cause, not its consequence
    ended = {(e["stage"], e["step"]) for e in events if e["event"] == "end"}
    assert ("slow", 1) not in ended, "the killed step was recorded as done"
    ran = [(e["stage"], e["step"]) for e in events if e["event"] == "start"]
    assert ("slow", 1) in ran and ("bad", 1) in ran
    assert ("slow", 2) not in ran, "the sibling went on after the failure"
    logs = cache / "logs" / "core-app"
    assert (logs / "slow-line0002.log").exists() and not (logs / "slow-line0003.log").exists()
    assert_nothing_half_written(cache, out)


def start_cli(tree: Path, tmp: Path, what: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rootseed", "build", what, "--tree", str(tree),
         "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "out"), "--offline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


class Lines:
    """stderr of a running process, read as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(
            stream.readline, "")), daemon=True)
        self.thread.start()

    def text(self) -> str:
        return "".join(self.lines)


SLOW_APP = """\
FROM rs/bootstrap-base AS app
RUN sleep {marker} || true; echo one > /one
RUN echo two > /two
"""


@pytest.mark.parametrize(("who", "what"), [("group", "core-app"), ("process", "core-app"),
                                           ("process", "--all")])
def test_sigint_leaves_nothing_half_written(tmp_path: Path, who: str, what: str) -> None:
    """``group``: Ctrl-C in a terminal (the whole process group, the sandbox's bwrap
    included); ``process``: ``kill -INT`` of rootseed alone, so the running step ends on
    its own (here: when the test ends it) and the next step must not start. ``--all``
    goes on past failures, but not past Ctrl-C."""
    markers = {"app": marker()}
    tree = make_tree(tmp_path, SLOW_APP.format(marker=markers["app"]))
    proc = start_cli(tree, tmp_path, what)
    err = Lines(proc)
    try:
        wait_until("the step runs", lambda: "app" in alive(markers),
                   lambda: proc.poll() is None)
        if who == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
            wait_until("rootseed says it stops", lambda: "stopping" in err.text(),
                       lambda: proc.poll() is None)
            end_all(markers)
        proc.wait(WAIT)
    finally:
        end_all(markers)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.thread.join(WAIT)
    stderr = err.text()
    assert proc.returncode == 130, stderr
    # words: a process stopped by a signal says so in one word (no error object)
    assert "Traceback" not in stderr and "aborted" in stderr.splitlines()[-1], stderr
    logs = tmp_path / "cache" / "logs" / "core-app"
    assert (logs / "app-line0002.log").exists() and not (logs / "app-line0003.log").exists()
    assert_nothing_half_written(tmp_path / "cache", tmp_path / "out")


def test_sigterm_stops_the_build_like_ctrl_c(tmp_path: Path) -> None:
    """SIGTERM (a cancelled CI job) to rootseed alone: the running step is killed by
    rootseed itself (the test never ends it), nothing half-written is left, exit 143."""
    markers = {"app": marker()}
    tree = make_tree(tmp_path, SLOW_APP.format(marker=markers["app"]))
    proc = start_cli(tree, tmp_path, "core-app")
    err = Lines(proc)
    try:
        wait_until("the step runs", lambda: "app" in alive(markers),
                   lambda: proc.poll() is None)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(WAIT)
        assert "app" not in alive(markers), "rootseed left its step running"
    finally:
        end_all(markers)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err.thread.join(WAIT)
    stderr = err.text()
    assert proc.returncode == 143, stderr
    # words: a process stopped by a signal says so in one word (no error object)
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == "terminated", stderr
    logs = tmp_path / "cache" / "logs" / "core-app"
    assert (logs / "app-line0002.log").exists() and not (logs / "app-line0003.log").exists()
    assert_nothing_half_written(tmp_path / "cache", tmp_path / "out")
