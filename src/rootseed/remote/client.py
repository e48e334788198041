"""A REAPI v2 client: upload only missing blobs, Execute, read results — all verified.

The service and its workers are not trusted for content: every blob read back is
re-hashed against the digest that names it before anything uses it, and a result is only
accepted when its output tree is complete. What the service *is* trusted for (running the
command it was given, in the sandbox it was asked for) is stated in docs/trust-model.md.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError

from rootseed.errors import ErrorKind
from rootseed.remote import RemoteError, leftover
from rootseed.remote.merkle import Tree, digest_of
from rootseed.remote.protos import (
    bs_grpc,
    bs_pb2,
    code_pb2,
    grpc,
    operations_pb2,
    re_grpc,
    re_pb2,
)

#: The hint of an error in what the service returned.
_HOSTILE = "the remote CAS or a worker is broken or hostile"

#: Blobs up to this size go in batch requests (gRPC's default message limit is 4 MiB).
BATCH_LIMIT = 2 << 20
#: ByteStream chunk size.
CHUNK = 1 << 20
#: The most bytes of an output's small blobs read ahead and held in memory at a time.
PREFETCH_BYTES = 32 << 20
#: gRPC keepalive ping interval on a busy connection (the servers' default minimum).
KEEPALIVE_MS = 300_000
#: Seconds an action may wait for a worker (stage QUEUED) before the build stops
#: (``--remote-queue-timeout``).
DEFAULT_QUEUE_TIMEOUT = 600.0
#: Seconds an action may be EXECUTING past its own timeout (staging the input root,
#: uploading the output) before the client stops waiting: the worker enforces the
#: timeout itself, so this only ends waits for a worker that vanished unnoticed.
EXECUTING_GRACE = 300.0


class OutputProblem(enum.Enum):
    """What is wrong with something the service returned (:class:`BadOutput`)."""

    MISSING_BLOB = "missing-blob"  # the CAS does not have a blob the result names
    MISSING_DIRECTORY = "missing-directory"  # an output Tree lacks a directory it names
    BAD_NAME = "bad-name"  # an entry named "", ".", "..", or with "/" or NUL
    DUPLICATE_NAME = "duplicate-name"  # one name twice in a directory
    NOT_A_TREE = "not-a-tree"  # an output tree's bytes are no REAPI Tree
    NOT_AN_IMAGE = "not-an-image"  # a shared image's record names other files than a layout's


class BadOutput(RemoteError):
    """The service's result cannot be taken (``problem`` says why): the remote CAS or a
    worker is broken or hostile, or the cache was cleaned."""

    def __init__(self, message: str, *, problem: OutputProblem, hint: str | None = None
                 ) -> None:
        super().__init__(message, hint=hint)
        self.problem = problem

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "problem": self.problem.value}


class BlobMismatch(RemoteError):
    """A blob read from the CAS does not hash to the digest it was asked for."""


class ActionFailed(RemoteError):
    """The service or its worker did not run the action: ``code`` (google.rpc.Code) says
    why (FAILED_PRECONDITION: no worker runs its platform or grants what it asks for;
    DEADLINE_EXCEEDED: the step timeout; RESOURCE_EXHAUSTED: a step limit)."""

    def __init__(self, message: str, code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "code": self.code}


class RemoteTimeout(ActionFailed):
    """The action ran longer than its timeout and was stopped by the service."""

    kind = ErrorKind.STEP_TIMEOUT


class SpecialFileLeft(ActionFailed):
    """The step left a FIFO, socket or device node in its root, which no remote result
    can carry (the worker said so in a typed detail: :mod:`rootseed.remote.leftover`)."""

    def __init__(self, message: str, code: int, path: str, mode: int,
                 response: re_pb2.ExecuteResponse) -> None:
        super().__init__(message, code)
        self.path = path
        self.mode = mode  # its file type (stat.S_IFIFO, ...)
        self.response = response  # the step's result (its log), not cached


class QueueTimeout(RemoteError):
    """No worker took the action within the queue timeout: it stayed QUEUED."""

    def __init__(self, message: str, *, hint: str | None = None, seconds: float) -> None:
        super().__init__(message, hint=hint)
        self.seconds = seconds


class RemoteCancelled(RemoteError):
    """The caller stopped waiting for the action (another step failed, or Ctrl-C)."""

    kind = ErrorKind.CANCELLED


def parse_endpoint(url: str) -> str:
    """``grpc://host:port`` (or ``http://``) → ``host:port``; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("grpc", "http") or not parts.hostname or parts.port is None \
            or parts.path not in ("", "/"):
        raise RemoteError(f"not a remote endpoint: {url!r}",
                          hint="give it as grpc://HOST:PORT (TLS is not supported yet)")
    return f"{parts.hostname}:{parts.port}"


def _rpc_error(what: str, e: Exception) -> RemoteError:
    code = e.code().name if isinstance(e, grpc.RpcError) else type(e).__name__
    details = e.details() if isinstance(e, grpc.RpcError) else str(e)
    return RemoteError(f"{what}: the remote service answered {code}: {details}",
                       hint="check that the service is up (scripts/remote-cluster up) "
                            "and reachable; the build resumes where it stopped")


class Remote:
    """One REAPI endpoint and instance."""

    def __init__(self, endpoint: str, instance: str = "", *, timeout: float = 60.0,
                 queue_timeout: float = DEFAULT_QUEUE_TIMEOUT) -> None:
        self.target = parse_endpoint(endpoint)
        self.instance = instance
        self.timeout = timeout
        #: how long an action may wait for a worker (see :meth:`execute`)
        self.queue_timeout = queue_timeout
        self._activity = _Activity()
        self.channel = grpc.insecure_channel(self.target, options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            # a service that vanishes without closing the connection (a machine off, a
            # partition) ends a waiting Execute within KEEPALIVE + 20 s instead of never;
            # not more often: servers refuse pings under 5 min by default (GOAWAY)
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", 20_000)])
        self.cas = re_grpc.ContentAddressableStorageStub(self.channel)
        self.ac = re_grpc.ActionCacheStub(self.channel)
        self.execution = re_grpc.ExecutionStub(self.channel)
        self.capabilities = re_grpc.CapabilitiesStub(self.channel)
        self.bytestream = bs_grpc.ByteStreamStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float) -> None:
        # one call that waits for the connection (wait_for_ready), not
        # grpc.channel_ready_future: its connectivity subscription makes the channel's
        # close() take 200 ms, at the end of every build (measured here, grpcio 1.85)
        try:
            self.capabilities.GetCapabilities(
                re_pb2.GetCapabilitiesRequest(instance_name=self.instance), timeout=timeout,
                wait_for_ready=True)
        except (grpc.FutureTimeoutError, grpc.RpcError) as e:
            raise _rpc_error(f"no answer from {self.target}", e) from None

    # -- CAS ------------------------------------------------------------------------------

    def missing(self, digests: Iterable[re_pb2.Digest]) -> list[re_pb2.Digest]:
        unique = {d.hash: d for d in digests}
        out: list[re_pb2.Digest] = []
        items = list(unique.values())
        for i in range(0, len(items), 1000):
            try:
                r = self.cas.FindMissingBlobs(re_pb2.FindMissingBlobsRequest(
                    instance_name=self.instance, blob_digests=items[i:i + 1000]),
                    timeout=self.timeout)
            except grpc.RpcError as e:
                raise _rpc_error("FindMissingBlobs", e) from None
            out.extend(r.missing_blob_digests)
        return out

    def upload(self, blobs: Mapping[str, bytes | Path]) -> int:
        """Upload the blobs (by sha256 hex) the CAS does not have; returns how many."""
        def digest(key: str, blob: bytes | Path) -> re_pb2.Digest:
            size = len(blob) if isinstance(blob, bytes) else blob.stat().st_size
            return re_pb2.Digest(hash=key, size_bytes=size)

        needed = self.missing(digest(k, b) for k, b in blobs.items())
        batch: list[re_pb2.BatchUpdateBlobsRequest.Request] = []
        batch_size = 0
        for d in needed:
            blob = blobs[d.hash]
            if d.size_bytes > BATCH_LIMIT:
                self._write_stream(d, blob)
                continue
            data = blob if isinstance(blob, bytes) else blob.read_bytes()
            if batch_size + len(data) > BATCH_LIMIT:
                self._batch_update(batch)
                batch, batch_size = [], 0
            batch.append(re_pb2.BatchUpdateBlobsRequest.Request(digest=d, data=data))
            batch_size += len(data)
        if batch:
            self._batch_update(batch)
        return len(needed)

    def _batch_update(self, batch: list[re_pb2.BatchUpdateBlobsRequest.Request]) -> None:
        try:
            r = self.cas.BatchUpdateBlobs(re_pb2.BatchUpdateBlobsRequest(
                instance_name=self.instance, requests=batch), timeout=self.timeout)
        except grpc.RpcError as e:
            raise _rpc_error("BatchUpdateBlobs", e) from None
        for resp in r.responses:
            if resp.status.code != code_pb2.OK:
                raise RemoteError(f"the CAS refused blob {resp.digest.hash}: "
                                  f"{resp.status.message}")

    def _write_stream(self, d: re_pb2.Digest, blob: bytes | Path) -> None:
        name = f"uploads/{uuid.uuid4()}/blobs/{d.hash}/{d.size_bytes}"
        if self.instance:
            name = f"{self.instance}/{name}"

        def requests() -> Iterator[bs_pb2.WriteRequest]:
            offset = 0
            if isinstance(blob, bytes):
                chunks: Iterable[bytes] = (blob[i:i + CHUNK]
                                           for i in range(0, len(blob), CHUNK))
            else:
                chunks = _read_chunks(blob)
            for chunk in chunks:
                last = offset + len(chunk) >= d.size_bytes
                yield bs_pb2.WriteRequest(resource_name=name, write_offset=offset,
                                          data=chunk, finish_write=last)
                offset += len(chunk)
            if d.size_bytes == 0:
                yield bs_pb2.WriteRequest(resource_name=name, finish_write=True)

        try:
            self.bytestream.Write(requests(), timeout=self.timeout * 10)
        except grpc.RpcError as e:
            raise _rpc_error(f"ByteStream.Write of {d.hash}", e) from None

    def read(self, d: re_pb2.Digest) -> bytes:
        """A blob's bytes, verified against ``d`` (size and sha256)."""
        if d.size_bytes <= BATCH_LIMIT:
            try:
                r = self.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(
                    instance_name=self.instance, digests=[d]), timeout=self.timeout)
            except grpc.RpcError as e:
                raise _rpc_error("BatchReadBlobs", e) from None
            if len(r.responses) != 1 or r.responses[0].status.code != code_pb2.OK:
                raise BadOutput(f"the CAS does not have blob {d.hash}/{d.size_bytes}",
                                problem=OutputProblem.MISSING_BLOB,
                                hint="the remote cache was cleaned; build again")
            data = bytes(r.responses[0].data)
        else:
            data = b"".join(self._read_stream(d))
        _check(d, data)
        return data

    def _read_stream(self, d: re_pb2.Digest) -> Iterator[bytes]:
        name = f"blobs/{d.hash}/{d.size_bytes}"
        if self.instance:
            name = f"{self.instance}/{name}"
        try:
            for r in self.bytestream.Read(bs_pb2.ReadRequest(resource_name=name),
                                          timeout=self.timeout * 10):
                yield bytes(r.data)
        except grpc.RpcError as e:
            raise _rpc_error(f"ByteStream.Read of {d.hash}", e) from None

    def read_many(self, digests: Iterable[re_pb2.Digest]) -> dict[str, bytes]:
        """Blobs of at most :data:`BATCH_LIMIT` bytes each, by hash, read in as few
        requests as the limit allows, each verified against its digest (size and
        sha256); one the CAS lacks is :class:`BadOutput`."""
        unique = {d.hash: d for d in digests}
        out: dict[str, bytes] = {}
        batch: list[re_pb2.Digest] = []
        size = 0
        for d in sorted(unique.values(), key=lambda d: d.size_bytes):
            if d.size_bytes == 0:  # the empty blob: nothing to ask for (still checked)
                _check(d, b"")
                out[d.hash] = b""
                continue
            if d.size_bytes > BATCH_LIMIT:
                raise RemoteError(f"internal: blob {d.hash} is too large for a batch")
            if batch and size + d.size_bytes > BATCH_LIMIT:
                out.update(self._batch_read(batch))
                batch, size = [], 0
            batch.append(d)
            size += d.size_bytes
        if batch:
            out.update(self._batch_read(batch))
        return out

    def _batch_read(self, digests: list[re_pb2.Digest]) -> dict[str, bytes]:
        try:
            r = self.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(
                instance_name=self.instance, digests=digests), timeout=self.timeout)
        except grpc.RpcError as e:
            raise _rpc_error("BatchReadBlobs", e) from None
        got = {resp.digest.hash: resp for resp in r.responses}
        out: dict[str, bytes] = {}
        for d in digests:
            resp = got.get(d.hash)
            if resp is None or resp.status.code != code_pb2.OK:
                raise BadOutput(f"the CAS does not have blob {d.hash}/{d.size_bytes}",
                                problem=OutputProblem.MISSING_BLOB,
                                hint="the remote cache was cleaned; build again")
            data = bytes(resp.data)
            _check(d, data)
            out[d.hash] = data
        return out

    def read_file(self, d: re_pb2.Digest, dest: Path, mode: int, *,
                  data: bytes | None = None) -> None:
        """Write a verified blob to ``dest`` (created new, never through a link);
        ``data``: its bytes when already read (hashed again here all the same)."""
        h = hashlib.sha256()
        size = 0
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                chunks: Iterable[bytes] = (
                    [data] if data is not None else [self.read(d)]
                    if d.size_bytes <= BATCH_LIMIT else self._read_stream(d))
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    if size > d.size_bytes:  # a service that sends more: never all of it
                        break
                    f.write(chunk)
                f.flush()  # a write after the chmod would clear setuid/setgid again
                os.fchmod(f.fileno(), mode)
            if h.hexdigest() != d.hash or size != d.size_bytes:
                raise BlobMismatch(f"blob {d.hash}/{d.size_bytes} read from the CAS hashes "
                                   f"to {h.hexdigest()}/{size}",
                                   hint="the remote CAS or a worker is broken or hostile")
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def upload_tree(self, tree: Tree) -> int:
        blobs: dict[str, bytes | Path] = dict(tree.directories)
        blobs.update(tree.files)
        return self.upload(blobs)

    # -- execution ----------------------------------------------------------------------

    def cached_result(self, action_digest: re_pb2.Digest) -> re_pb2.ActionResult | None:
        """The service's cached result of the action, when it has one that succeeded (a
        failed one is left to Execute, as before). Like every result it is a claim: its
        blobs are verified as they are read."""
        try:
            result = self.ac.GetActionResult(re_pb2.GetActionResultRequest(
                instance_name=self.instance, action_digest=action_digest,
                inline_stdout=True, inline_stderr=True), timeout=self.timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise _rpc_error("GetActionResult", e) from None
        return result if result.exit_code == 0 else None

    def update_result(self, action_digest: re_pb2.Digest, result: re_pb2.ActionResult
                      ) -> None:
        """Record ``result`` as the action's in the service's action cache (its blobs
        uploaded first)."""
        try:
            self.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(
                instance_name=self.instance, action_digest=action_digest,
                action_result=result), timeout=self.timeout)
        except grpc.RpcError as e:
            raise _rpc_error("UpdateActionResult", e) from None

    def execute(self, action: re_pb2.Action, command: re_pb2.Command, tree: Tree, *,
                skip_cache: bool = False, stop: threading.Event | None = None,
                run_timeout: float | None = None) -> re_pb2.ExecuteResponse:
        """The service's cached result of the action, else: upload what is missing,
        run the action, wait for it; the service's answer. Once ``stop`` is set the
        wait ends (:class:`RemoteCancelled`). The wait is
        bounded: an action no worker takes (QUEUED, or back in the queue after its
        worker went away) for :attr:`queue_timeout` seconds, while no other action of
        this client was running or finished either (workers busy with this build's
        other steps are no reason to stop), is :class:`QueueTimeout`;
        one EXECUTING longer than ``run_timeout`` (the step's timeout, which the worker
        enforces) plus :data:`EXECUTING_GRACE` is :class:`RemoteTimeout`. The action is
        left to the service (a worker that comes back may still run it, into the
        service's cache)."""
        cmd = command.SerializeToString(deterministic=True)
        action.command_digest.CopyFrom(digest_of(cmd))
        action.input_root_digest.CopyFrom(tree.root)
        act = action.SerializeToString(deterministic=True)
        if not skip_cache:  # a cached result needs no upload (Execute would serve it too)
            cached = self.cached_result(digest_of(act))
            if cached is not None:
                return re_pb2.ExecuteResponse(result=cached, cached_result=True)
        blobs: dict[str, bytes | Path] = {action.command_digest.hash: cmd,
                                          digest_of(act).hash: act}
        blobs.update(tree.directories)
        blobs.update(tree.files)
        self.upload(blobs)
        request = re_pb2.ExecuteRequest(instance_name=self.instance,
                                        action_digest=digest_of(act),
                                        skip_cache_lookup=skip_cache)
        stream = self.execution.Execute(request)
        ended = threading.Event()
        stage = _Stage(self.queue_timeout, run_timeout, self._activity)

        def watch() -> None:
            while not ended.is_set():
                if (stop is not None and stop.wait(0.2)) or stage.expired():
                    stream.cancel()
                    return
                if stop is None:
                    ended.wait(0.2)

        threading.Thread(target=watch, daemon=True, name="rootseed-remote-watch").start()
        try:
            for op in stream:
                if not op.done:
                    stage.update(op)
                    continue
                if op.HasField("error"):
                    raise ActionFailed(f"the remote service failed the action: "
                                       f"{op.error.message} ({_code(op.error.code)})",
                                       op.error.code)
                response = re_pb2.ExecuteResponse()
                op.response.Unpack(response)
                if response.status.code == code_pb2.DEADLINE_EXCEEDED:
                    raise RemoteTimeout(f"the remote action ran past its timeout: "
                                        f"{response.status.message}", response.status.code)
                left = leftover.special_left(response.status)
                if left is not None:
                    raise SpecialFileLeft(response.status.message, response.status.code,
                                          *left, response)
                if response.status.code != code_pb2.OK:
                    raise ActionFailed(f"the remote action failed: "
                                       f"{response.status.message} "
                                       f"({_code(response.status.code)})",
                                       response.status.code)
                return response
        except grpc.RpcError as e:
            if stop is not None and stop.is_set():
                raise RemoteCancelled("stopped waiting for the remote action") from None
            if stage.why is not None:
                raise stage.error(self.target) from None
            if e.code() in (grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.INVALID_ARGUMENT):
                raise ActionFailed(f"the remote service refused the action: {e.details()}",
                                   e.code().value[0],
                                   hint="no worker of this service runs what the step asks "
                                        "for (its platform); build it locally") from None
            raise _rpc_error("Execute", e) from None
        finally:
            ended.set()
            stage.close()
        raise RemoteError("the remote service ended the Execute stream without a result",
                          hint="the server restarted; run the build again to resume")

    def download_directory(self, out: re_pb2.OutputDirectory, dest: Path) -> None:
        """Materialise an output directory (its ``Tree``) below ``dest``, verified."""
        tree = parse_tree(self.read(out.tree_digest), out.tree_digest)
        children = {digest_of(c.SerializeToString(deterministic=True)).hash: c
                    for c in tree.children}
        stack: list[tuple[re_pb2.Directory, Path]] = [(tree.root, dest)]
        while stack:
            directory, path = stack.pop()
            unique_names(directory)
            path.mkdir(mode=0o700, exist_ok=path == dest)
            for f in directory.files:
                mode = (f.node_properties.unix_mode.value
                        if f.node_properties.HasField("unix_mode")
                        else (0o755 if f.is_executable else 0o644))
                self.read_file(f.digest, path / _name(f.name), stat.S_IMODE(mode))
            for s in directory.symlinks:
                os.symlink(s.target, path / _name(s.name))
            for sub in directory.directories:
                child = children.get(sub.digest.hash)
                if child is None:
                    raise BadOutput(f"output tree {out.tree_digest.hash} lacks directory "
                                    f"{sub.digest.hash}",
                                    problem=OutputProblem.MISSING_DIRECTORY, hint=_HOSTILE)
                stack.append((child, path / _name(sub.name)))
            if directory.node_properties.HasField("unix_mode"):
                os.chmod(path, stat.S_IMODE(directory.node_properties.unix_mode.value))


class Prefetched:
    """:meth:`Remote.read_file` with the small blobs of one output (a step's, a shared
    image's) read in batches ahead of their files (each still verified by its digest, as
    every blob is): at most :data:`PREFETCH_BYTES` of them held at a time, however many
    files the output claims (files are written in the order of ``digests``)."""

    def __init__(self, remote: Remote, digests: list[re_pb2.Digest]) -> None:
        self.remote = remote
        self.pending = digests
        self.at = 0  # the first digest not read yet
        self.blobs: dict[str, bytes] = {}

    def _window(self, d: re_pb2.Digest) -> None:
        """Read the next blobs, from ``d``'s place in the list on, up to the bound."""
        start = next((i for i in range(self.at, len(self.pending))
                      if self.pending[i].hash == d.hash), None)
        if start is None:
            return  # not announced: read_file reads it by itself
        end, size = start, 0
        while end < len(self.pending) and (end == start or size + max(
                self.pending[end].size_bytes, 0) <= PREFETCH_BYTES):
            size += max(self.pending[end].size_bytes, 0)
            end += 1
        self.blobs = {}  # the previous window's blobs are written by now
        self.blobs = self.remote.read_many(self.pending[start:end])
        self.at = end

    def read_file(self, d: re_pb2.Digest, dest: Path, mode: int) -> None:
        if d.hash not in self.blobs:
            self._window(d)
        self.remote.read_file(d, dest, mode, data=self.blobs.get(d.hash))


class _Activity:
    """A client's actions on workers: how many are EXECUTING now, and when one last
    started or ended (a sign that workers are taking this client's work)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executing = 0
        self.last = time.monotonic()

    def change(self, executing: int) -> None:
        with self._lock:
            self.executing += executing
            self.last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since an action of this client last ran (0 while one runs)."""
        with self._lock:
            return 0.0 if self.executing else time.monotonic() - self.last


class _Stage:
    """Where an action is (the stream's ExecuteOperationMetadata) and since when; which
    bound it has passed (``why``), once it has."""

    def __init__(self, queue_timeout: float, run_timeout: float | None,
                 activity: _Activity | None = None) -> None:
        self.queue_timeout = queue_timeout
        self.run_timeout = run_timeout
        self.activity = activity or _Activity()
        self.stage: int = re_pb2.ExecutionStage.QUEUED  # until the service says more
        self.since = time.monotonic()
        self.why: str | None = None  # "queued" or "executing"
        self._lock = threading.Lock()

    def update(self, op: operations_pb2.Operation) -> None:
        meta = re_pb2.ExecuteOperationMetadata()
        if not op.metadata.Unpack(meta):
            return
        with self._lock:
            if meta.stage != self.stage:
                self._move(meta.stage)

    def _move(self, stage: int) -> None:
        executing = re_pb2.ExecutionStage.EXECUTING
        if self.stage == executing or stage == executing:
            self.activity.change(1 if stage == executing else -1)
        self.stage, self.since = stage, time.monotonic()

    def close(self) -> None:
        """The action is over (answered, failed or given up)."""
        with self._lock:
            self._move(re_pb2.ExecutionStage.COMPLETED)

    def expired(self) -> bool:
        with self._lock:
            waited = time.monotonic() - self.since
            if self.stage == re_pb2.ExecutionStage.EXECUTING:
                if self.run_timeout is not None \
                        and waited > self.run_timeout + EXECUTING_GRACE:
                    self.why = "executing"
            elif self.stage != re_pb2.ExecutionStage.COMPLETED \
                    and min(waited, self.activity.idle_for()) > self.queue_timeout:
                self.why = "queued"
            return self.why is not None

    def error(self, target: str) -> RemoteError:
        if self.why == "executing":
            assert self.run_timeout is not None
            return RemoteTimeout(
                f"the remote action was still running {self.run_timeout + EXECUTING_GRACE:.0f}"
                f" s after it started (its timeout is {self.run_timeout:.0f} s) and its "
                f"worker never reported", code_pb2.DEADLINE_EXCEEDED,
                hint=f"check the workers of {target} (scripts/remote-cluster status); the "
                     "build resumes where it stopped")
        return QueueTimeout(
            f"no remote worker took the action within {self.queue_timeout:g} s (it stayed "
            f"queued on {target})", seconds=self.queue_timeout,
            hint=f"check that {target} has workers up and connected for this platform "
                 "(scripts/remote-cluster status), or wait longer with "
                 "--remote-queue-timeout SECONDS; the build resumes where it stopped")


def parse_tree(data: bytes, d: re_pb2.Digest) -> re_pb2.Tree:
    """An output ``Tree`` from its (verified) bytes; bytes that are no Tree are refused."""
    tree = re_pb2.Tree()
    try:
        tree.ParseFromString(data)
    except DecodeError:
        raise BadOutput(f"output tree {d.hash} is not a REAPI Tree",
                        problem=OutputProblem.NOT_A_TREE, hint=_HOSTILE) from None
    return tree


def unique_names(directory: re_pb2.Directory) -> None:
    """Refuse a Directory naming one entry twice (REAPI requires unique, sorted names)."""
    names = [n.name for n in (*directory.files, *directory.directories,
                              *directory.symlinks)]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise BadOutput(f"the remote output names {twice[0]!r} twice in one directory",
                        problem=OutputProblem.DUPLICATE_NAME, hint=_HOSTILE)


def _code(code: int) -> str:
    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return f"code {code}"


def _name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise BadOutput(f"the remote output names a file {name!r}",
                        problem=OutputProblem.BAD_NAME, hint=_HOSTILE)
    return name


def _check(d: re_pb2.Digest, data: bytes) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != d.hash or len(data) != d.size_bytes:
        raise BlobMismatch(f"blob {d.hash}/{d.size_bytes} read from the CAS hashes to "
                           f"{got}/{len(data)}",
                           hint="the remote CAS or a worker is broken or hostile")


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
