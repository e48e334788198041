"""An action no worker takes does not make the build wait forever (``--remote-queue-timeout``).

Against the real cluster (tests/remotecluster.py): the step's action is routed to the
worker pool ``gone``, which no worker ever joins (``rootseed.remote.cluster.POOLS``), as
when every worker has gone away; or a pool worker is killed while it runs the action,
which BuildGrid then puts back in the queue.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import rootseed
from kinds import cli_error
from remotecluster import Cluster, pool_workers
from rootseed.engine.ops import ExecOp
from rootseed.errors import ErrorKind
from rootseed.remote import client
from rootseed.remote import executor as remote_executor
from rootseed.remote.client import QueueTimeout, Remote
from rootseed.remote.merkle import build_tree
from rootseed.remote.protos import operations_pb2, re_pb2

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def _build(tree: Path, tmp: Path, *args: str) -> tuple[int, dict[str, Any],
                                                       list[dict[str, Any]]]:
    r = rootseed("build", "core-app", *args, "--tree", str(tree), "--cache-dir",
                 str(tmp / "cache"), "--out", str(tmp / "out"), "--offline", "--json",
                 timeout=600)
    assert "Traceback" not in r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    return r.returncode, json.loads(r.stdout), events


def test_a_step_no_worker_takes_stops_the_build_and_the_rerun_resumes(
        remote_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base\nRUN echo one > /one\nRUN echo two > /two\n")
    real = remote_executor.command_of

    def to_no_worker(op: ExecOp) -> re_pb2.Command:
        cmd = real(op)
        if op.package == "core-app" and op.line == 3:  # every worker is gone for it
            del cmd.platform.properties[:]  # a pool's label names no ISA
            for name, value in (("OSFamily", "linux"), ("rootseed-pool", "gone")):
                cmd.platform.properties.add(name=name, value=value)
        return cmd

    monkeypatch.setattr(remote_executor, "command_of", to_no_worker)
    started = time.monotonic()
    # (--remote-no-images: the steps, not an image an earlier run on the service recorded)
    code, result, events = _build(tree, tmp_path, "--remote", remote_cluster.endpoint,
                                  "--remote-queue-timeout", "3", "--remote-no-images")
    waited = time.monotonic() - started
    assert code == 1, result
    error = result["error"]
    assert "Containerfile:3" in error["message"], error
    assert "no remote worker took the action within 3 s" in error["message"], error
    assert "--remote-queue-timeout" in error["hint"] and "remote-cluster status" in \
        error["hint"]
    (failed,) = [e for e in events if e["event"] == "failed"]
    assert (failed["package"], failed["line"]) == ("core-app", 3)
    assert waited < 120  # the base's steps, then 3 s in the queue: not forever
    assert not (tmp_path / "out" / "core-app").exists()
    monkeypatch.setattr(remote_executor, "command_of", real)
    code, result, events = _build(tree, tmp_path, "--remote", remote_cluster.endpoint,
                                  "--remote-no-images")
    assert code == 0, result
    app = [e for e in events if e["package"] == "core-app" and e["event"] in ("cached", "end")]
    assert [(e["line"], e["event"]) for e in app] == [(2, "cached"), (3, "end")]


def test_the_queue_timeout_is_an_option_of_remote(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    r = rootseed("build", "core-app", "--tree", str(tree), "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o"), "--remote-queue-timeout", "5", "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=2)
    assert "--remote-queue-timeout" in error["message"]  # words: names the option
    r = rootseed("build", "core-app", "--tree", str(tree), "--remote",
                 "grpc://127.0.0.1:1", "--remote-queue-timeout", "0", "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=2)
    assert "--remote-queue-timeout" in error["message"]  # words: names the option


def test_an_action_whose_worker_was_killed_and_none_is_left_stops_waiting(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """The action ran (EXECUTING), its only worker is killed; BuildGrid queues it again,
    no worker is left: QueueTimeout, counted from when it was queued again."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    cmd = re_pb2.Command(arguments=["/bin/busybox", "sh", "-c",
                                    f"echo {tmp_path.name}; sleep 120"],
                         output_paths=["out"])
    for name, value in (("OSFamily", "linux"), ("rootseed-pool", "queue")):
        cmd.platform.properties.add(name=name, value=value)
    action = re_pb2.Action()
    action.platform.CopyFrom(cmd.platform)
    got: dict[str, Any] = {}

    def run() -> None:
        with Remote(remote_cluster.endpoint, queue_timeout=5) as remote:
            try:
                remote.execute(action, cmd, build_tree(root), skip_cache=True,
                               run_timeout=600)
            except QueueTimeout as e:
                got["error"] = e
                got["at"] = time.monotonic()

    with pool_workers(remote_cluster, tmp_path / "pool", "queue", ["queue-1"]) as workers:
        deadline = time.monotonic() + 120
        while "bot queue-1: session" not in workers[0].log.read_text():  # up, then queue
            assert time.monotonic() < deadline, workers[0].log.read_text()
            time.sleep(0.2)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while not list((tmp_path / "pool" / "queue-1" / "work").glob("lease-*")):
            assert time.monotonic() < deadline and "error" not in got, \
                workers[0].log.read_text()
            time.sleep(0.2)
        time.sleep(6)  # running longer than the queue timeout: EXECUTING is not QUEUED
        assert thread.is_alive() and "error" not in got
        killed = time.monotonic()
        for proc in (workers[0].bot, workers[0].casd):
            os.killpg(proc.pid, signal.SIGKILL)
        thread.join(180)
    assert not thread.is_alive()
    assert isinstance(got["error"], QueueTimeout) and got["error"].seconds == 5
    assert got["at"] - killed >= 5


def test_an_action_executing_past_its_timeout_and_grace_stops_the_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The EXECUTING bound (a worker gone without the service noticing), on its own."""
    monkeypatch.setattr(client, "EXECUTING_GRACE", 0.0)
    stage = client._Stage(0.2, 0.6)
    op = operations_pb2.Operation()
    op.metadata.Pack(re_pb2.ExecuteOperationMetadata(stage=re_pb2.ExecutionStage.EXECUTING))
    stage.update(op)
    time.sleep(0.3)
    assert not stage.expired()  # past the queue timeout, but executing
    time.sleep(0.4)
    assert stage.expired() and stage.why == "executing"
    assert isinstance(stage.error("127.0.0.1:1"), client.RemoteTimeout)
    queued = client._Stage(0.2, None)
    assert not queued.expired()
    time.sleep(0.3)
    assert queued.expired() and isinstance(queued.error("127.0.0.1:1"), QueueTimeout)


def test_workers_busy_with_the_builds_other_actions_are_no_reason_to_stop() -> None:
    """An action queued behind this client's running ones waits; once none runs, the
    queue timeout counts from when the last one ended."""
    activity = client._Activity()
    running, queued = client._Stage(0.2, 600, activity), client._Stage(0.2, 600, activity)
    op = operations_pb2.Operation()
    op.metadata.Pack(re_pb2.ExecuteOperationMetadata(stage=re_pb2.ExecutionStage.EXECUTING))
    running.update(op)
    time.sleep(0.3)
    assert not queued.expired()  # queued past its timeout, but a worker runs our action
    running.close()
    time.sleep(0.1)
    assert not queued.expired()  # the last action ended only 0.1 s ago
    time.sleep(0.2)
    assert queued.expired() and queued.why == "queued"
