"""One REAPI cluster per test run, shared by every remote test (and every xdist worker).

``ROOTSEED_REMOTE=grpc://HOST:PORT`` (``.ci/run`` starts a cluster and sets it): that
service is used as it is. Without it, the first test that needs one starts
``scripts/remote-cluster up --workers 2`` in the run's basetemp (15-50 s), under a lock
the other xdist workers wait on; the end of the run stops it (``down``: exactly what
``up`` started).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "remote-cluster"
ROLES = {"postgres", "buildgrid", "worker-1-casd", "worker-1-bot", "worker-2-casd",
         "worker-2-bot"}


@dataclass(frozen=True)
class Cluster:
    endpoint: str
    #: the workers' names (None: a service given by ROOTSEED_REMOTE, names unknown)
    workers: list[str] | None
    #: the pids ``up`` started, with their start times (empty for ROOTSEED_REMOTE)
    procs: list[tuple[int, str]]


def start(base: Path) -> Cluster:
    """The run's cluster (started once per run, in ``base``)."""
    given = os.environ.get("ROOTSEED_REMOTE")
    if given:
        from rootseed.remote.cluster import _load, default_dir

        found = _load(default_dir())  # its workers' names, when it is ours
        return Cluster(given, found.workers if found and found.endpoint == given else None, [])
    with FileLock(str(base / "remote-cluster.lock")):
        record = base / "remote-cluster.json"
        if not record.exists():
            r = subprocess.run([str(SCRIPT), "up", "--workers", "2", "--dir",
                                str(base / "remote-cluster"), "--json"],
                               capture_output=True, text=True, timeout=600,
                               start_new_session=True)
            if r.returncode != 0:
                pytest.fail(f"scripts/remote-cluster up failed:\n{r.stderr}", pytrace=False)
            state = json.loads(r.stdout)
            assert {p["role"] for p in state["procs"]} == ROLES
            record.write_text(r.stdout)
        state = json.loads(record.read_text())
    return Cluster(state["endpoint"], state["workers"],
                   [(p["pid"], p["start"]) for p in state["procs"]])


def stop(base: Path) -> list[int]:
    """Stop the run's cluster if this run started one (the end of the run); the pids
    ``up`` started that are still running after ``down`` (none, unless it is broken)."""
    record = base / "remote-cluster.json"
    if not record.exists():
        return []
    from rootseed.remote.cluster import _start_time

    procs = [(p["pid"], p["start"]) for p in json.loads(record.read_text())["procs"]]
    subprocess.run([str(SCRIPT), "down", "--dir", str(base / "remote-cluster")],
                   capture_output=True, timeout=120, check=False)
    record.unlink()
    return [pid for pid, started in procs if _start_time(pid) == started]
