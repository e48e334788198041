"""The REAPI cluster the remote tests run against: one per test session.

``ROOTSEED_REMOTE=grpc://HOST:PORT`` (``.ci/run`` starts one cluster for the whole run and
exports it, with ``ROOTSEED_REMOTE_DIR``, its state directory) is used as is; without it
the session starts its own (``scripts/remote-cluster up --workers 2``) and stops it after,
checking that ``down`` stopped exactly what ``up`` started.

Tests that need workers of their own (to kill one, or one that lies) start them next to
the cluster's, in a worker pool (``rootseed-pool``, see ``rootseed.remote.cluster.POOLS``)
that only their actions ask for: :func:`pool_workers`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rootseed.remote.client import parse_endpoint
from rootseed.remote.cluster import _start_time
from rootseed.remote.protos import buildbox_dir, re_pb2

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = Path("/bin/busybox")
BOTS = Path(__file__).resolve().parent / "remotebots.py"


@dataclass(frozen=True)
class Cluster:
    endpoint: str  # grpc://HOST:PORT
    workers: tuple[str, ...]  # the cluster's own workers' names
    state_dir: Path | None  # its scripts/remote-cluster state directory, when known

    @property
    def target(self) -> str:
        return parse_endpoint(self.endpoint)

    @property
    def cas_dir(self) -> Path | None:
        """BuildGrid's disk CAS (a test may break a blob there, as a disk would)."""
        return self.state_dir / "cas" if self.state_dir else None


def _from_env(endpoint: str) -> Cluster:
    state_dir = Path(os.environ["ROOTSEED_REMOTE_DIR"]) if os.environ.get(
        "ROOTSEED_REMOTE_DIR") else None
    workers: tuple[str, ...] = ()
    if state_dir is not None and (state_dir / "cluster.json").is_file():
        state = json.loads((state_dir / "cluster.json").read_text())
        if state["endpoint"] != endpoint:
            state_dir = None  # another cluster's directory: nothing to learn from it
        else:
            workers = tuple(state["workers"])
    return Cluster(endpoint, workers, state_dir)


def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Yield the session's cluster: ROOTSEED_REMOTE's, or one started (and stopped) here."""
    if not BUSYBOX.is_file():
        pytest.skip("Debian's busybox-static is not installed (a shell for input roots)")
    endpoint = os.environ.get("ROOTSEED_REMOTE")
    if endpoint:
        yield _from_env(endpoint)
        return
    state_dir = tmp_path_factory.mktemp("cluster")
    script = ROOT / "scripts" / "remote-cluster"
    r = subprocess.run([str(script), "up", "--workers", "2", "--dir", str(state_dir),
                        "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    state = json.loads(r.stdout)
    assert {p["role"] for p in state["procs"]} == {
        "postgres", "buildgrid", "worker-1-casd", "worker-1-bot", "worker-2-casd",
        "worker-2-bot"}
    pids = [(p["pid"], p["start"]) for p in state["procs"]]
    try:
        yield Cluster(state["endpoint"], tuple(state["workers"]), state_dir)
    finally:
        r = subprocess.run([str(script), "down", "--dir", str(state_dir)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        # down stops exactly what up started
        assert [pid for pid, start in pids if _start_time(pid) == start] == []


@dataclass
class PoolWorker:
    name: str
    casd: subprocess.Popen[bytes]
    bot: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def pool_workers(cluster: Cluster, tmp: Path, pool: str, names: list[str],
                 tamper: bool = False, limits: tuple[str, ...] = ()
                 ) -> Iterator[list[PoolWorker]]:
    """Workers of pool ``pool`` (own casd + a bot from tests/remotebots.py) on the
    cluster's server, stopped (their process groups killed) after."""
    started: list[PoolWorker] = []
    casds: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for name in names:  # every casd first: they start side by side
            w = tmp / name
            (w / "casd").mkdir(parents=True)
            with open(w / "log", "ab") as out:
                casds.append((name, subprocess.Popen(
                    [str(buildbox_dir() / "buildbox-casd"),
                     f"--cas-remote=http://{cluster.target}", f"--bind=unix:{w / 'casd.sock'}",
                     str(w / "casd")], stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True), w))
        for name, casd, w in casds:
            deadline = time.monotonic() + 60
            while not (w / "casd.sock").exists():
                assert casd.poll() is None and time.monotonic() < deadline, \
                    (w / "log").read_text()
                time.sleep(0.05)
            with open(w / "log", "ab") as out:
                bot = subprocess.Popen(
                    [sys.executable, str(BOTS), "--server", cluster.target, "--casd",
                     str(w / "casd.sock"), "--name", name, "--work", str(w / "work"),
                     "--pool", pool, *(["--tamper"] if tamper else []), *limits],
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            started.append(PoolWorker(name, casd, bot, w / "log"))
        yield started
    finally:
        procs = [w.bot for w in started] + [casd for _, casd, _ in casds]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for worker in started:
            shutil.rmtree(tmp / worker.name / "work", ignore_errors=True)


def busybox_action(script: str, platform: dict[str, str], env: dict[str, str] | None = None,
                   output_paths: tuple[str, ...] = ("out",)
                   ) -> tuple[re_pb2.Action, re_pb2.Command]:
    """An Action and its Command running ``busybox sh -c script`` with ``platform`` (in
    both) and ``env``."""
    cmd = re_pb2.Command(arguments=["/bin/busybox", "sh", "-c", script],
                         output_paths=list(output_paths))
    for name in sorted(env or {}):
        cmd.environment_variables.add(name=name, value=(env or {})[name])
    for name in sorted(platform):
        cmd.platform.properties.add(name=name, value=platform[name])
    action = re_pb2.Action()
    action.platform.CopyFrom(cmd.platform)
    return action, cmd
