"""What one remote action costs beyond its command (run by hand, not a test).

``python benchmarks/bench_remote_overhead.py [--remote grpc://HOST:PORT] [-n N]``

Executes N trivial actions (``true`` on a root holding a static busybox, each with its
own environment so none is served from the action cache) one after the other, on the
given service or on a 1-worker cluster started here (``scripts/remote-cluster up``), and
prints where each action's wall time went, median over the N, from the client and from
the result's ``execution_metadata``:

* **queued**: from BuildGrid queueing the action to a worker starting it (the
  scheduler's assignment round and the bot's session update);
* **start**: from the worker taking it to staging its input root (the bot reading the
  Command, starting ``buildbox-run``);
* **fetch**: the worker staging the input root (``buildbox-casd``);
* **exec**: the command in its sandbox (``buildbox-run``, bubblewrap);
* **upload**: capturing and uploading the outputs;
* **worker**: the whole of it on the worker (start to end, as BuildGrid records it);
* **report**: from the worker's end to the client holding the result (the bot's next
  session update, BuildGrid completing the job, the Execute stream);
* **client**: the whole of ``Remote.execute`` (upload of the input root included).

Then the same N actions again, now all action-cache hits, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rootseed.remote.client import Remote
from rootseed.remote.merkle import build_tree
from rootseed.remote.protos import re_pb2

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "remote-cluster"
BUSYBOX = Path("/bin/busybox")


def _seconds(ts: object) -> float:
    return ts.seconds + ts.nanos / 1e9  # type: ignore[attr-defined, no-any-return]


def _command(tag: str) -> re_pb2.Command:
    cmd = re_pb2.Command(arguments=["/bin/busybox", "true"], output_paths=["out"])
    cmd.environment_variables.add(name="TAG", value=tag)
    for name, value in (("ISA", "x86-64"), ("OSFamily", "linux")):
        cmd.platform.properties.add(name=name, value=value)
    return cmd


def _run(remote: Remote, root: Path, tags: list[str]) -> dict[str, list[float]]:
    tree = build_tree(root)
    phases: dict[str, list[float]] = {k: [] for k in
                                      ("queued", "start", "fetch", "exec", "upload",
                                       "worker", "report", "client")}
    for tag in tags:
        cmd = _command(tag)
        action = re_pb2.Action()
        action.platform.CopyFrom(cmd.platform)
        start = time.time()
        response = remote.execute(action, cmd, tree)
        end = time.time()
        m = response.result.execution_metadata
        phases["client"].append(end - start)
        if response.cached_result:
            continue
        phases["queued"].append(_seconds(m.worker_start_timestamp)
                                - _seconds(m.queued_timestamp))
        phases["start"].append(_seconds(m.input_fetch_start_timestamp)
                               - _seconds(m.worker_start_timestamp))
        phases["worker"].append(_seconds(m.worker_completed_timestamp)
                                - _seconds(m.worker_start_timestamp))
        phases["fetch"].append(_seconds(m.input_fetch_completed_timestamp)
                               - _seconds(m.input_fetch_start_timestamp))
        phases["exec"].append(_seconds(m.execution_completed_timestamp)
                              - _seconds(m.execution_start_timestamp))
        phases["upload"].append(_seconds(m.output_upload_completed_timestamp)
                                - _seconds(m.output_upload_start_timestamp))
        phases["report"].append(end - _seconds(m.worker_completed_timestamp))
    return phases


def _show(label: str, phases: dict[str, list[float]]) -> None:
    shown = "  ".join(f"{k} {statistics.median(v):.3f}" for k, v in phases.items() if v)
    print(f"  {label:22} median s: {shown}  (load {_load()})", flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--remote", help="grpc://HOST:PORT (default: start a 1-worker "
                                         "cluster here)")
    parser.add_argument("-n", type=int, default=10, help="actions (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rootseed-bench-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        endpoint = args.remote
        state = tmp / "cluster"
        if endpoint is None:
            r = subprocess.run([str(CLUSTER), "up", "--workers", "1", "--dir", str(state),
                                "--json"], capture_output=True, text=True, check=False)
            if r.returncode != 0:
                sys.exit(f"remote-cluster up failed:\n{r.stderr}")
            endpoint = json.loads(r.stdout)["endpoint"]
        try:
            root = tmp / "root"
            (root / "bin").mkdir(parents=True)
            shutil.copy2(BUSYBOX, root / "bin" / "busybox")
            tags = [uuid.uuid4().hex for _ in range(args.n)]
            print(f"{args.n} trivial actions on {endpoint} (load {_load()}, "
                  f"{os.cpu_count()} CPUs)", flush=True)
            with Remote(endpoint) as remote:
                remote.wait_ready(10.0)
                _show("executed", _run(remote, root, tags))
                _show("action-cache hits", _run(remote, root, tags))
        finally:
            if args.remote is None:
                subprocess.run([str(CLUSTER), "down", "--dir", str(state)],
                               capture_output=True, check=False)


if __name__ == "__main__":
    main()
