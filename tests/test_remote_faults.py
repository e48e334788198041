"""Faults of the remote service, against the real cluster: a worker that lies about its
outputs, a CAS whose disk returns other bytes, the service going away mid-call.

Each is caught by rootseed's own checks (rootseed.remote.client: every blob re-hashed,
every output tree complete and well formed) and answered with one typed RemoteError;
nothing is left half-written. (The worker killed mid-action is in tests/test_remote.py.)
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinds import raises_kind
from remotecluster import BUSYBOX, Cluster, PoolWorker, busybox_action, pool_workers
from rootseed.errors import ErrorKind
from rootseed.remote import RemoteError
from rootseed.remote.client import BadOutput, BlobMismatch, OutputProblem, Remote
from rootseed.remote.merkle import build_tree, digest_of
from tcpproxy import Proxy


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    return root


_command = busybox_action


@pytest.fixture(scope="module")
def liar(remote_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[list[PoolWorker]]:
    with pool_workers(remote_cluster, tmp_path_factory.mktemp("liar"), "tamper",
                      ["liar-1"], tamper=True) as workers:
        yield workers


@pytest.mark.parametrize("mode, problem", [
    ("missing-blob", OutputProblem.MISSING_BLOB),
    ("missing-dir", OutputProblem.MISSING_DIRECTORY),
    ("escape", OutputProblem.BAD_NAME),
    ("duplicate", OutputProblem.DUPLICATE_NAME),
    ("not-a-tree", OutputProblem.NOT_A_TREE),
])
def test_a_lying_worker_is_caught_by_the_client(
        remote_cluster: Cluster, liar: list[PoolWorker], tmp_path: Path, mode: str,
        problem: OutputProblem) -> None:
    action, cmd = _command(
        f"mkdir -p /out/sub; echo {uuid.uuid4()} > /out/a; echo b > /out/sub/b",
        {"OSFamily": "linux", "rootseed-pool": "tamper"}, {"ROOTSEED_TAMPER": mode})
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with Remote(remote_cluster.endpoint) as remote:
        response = remote.execute(action, cmd, build_tree(_root(tmp_path)),
                                  skip_cache=True)
        assert response.result.execution_metadata.worker == "liar-1"
        with raises_kind(ErrorKind.REMOTE, BadOutput, problem=problem) as e:
            remote.download_directory(response.result.output_directories[0], dest)
    assert e.value.hint
    assert {p.name for p in (tmp_path / "work").iterdir()} <= {"out"}  # nothing escaped


def test_a_stdout_digest_the_worker_never_uploaded_is_refused(
        remote_cluster: Cluster, liar: list[PoolWorker], tmp_path: Path) -> None:
    action, cmd = _command(f"mkdir /out; echo {tmp_path.name}",
                           {"OSFamily": "linux", "rootseed-pool": "tamper"},
                           {"ROOTSEED_TAMPER": "stdout"})
    with Remote(remote_cluster.endpoint) as remote:
        response = remote.execute(action, cmd, build_tree(_root(tmp_path)),
                                  skip_cache=True)
        with pytest.raises(RemoteError):
            remote.read(response.result.stdout_digest)


def test_a_cas_blob_changed_on_the_servers_disk_is_refused(remote_cluster: Cluster,
                                                           tmp_path: Path) -> None:
    """BuildGrid refuses an upload that does not match its digest, but serves what its
    disk holds: a blob changed there (bit rot, an intruder) is caught on the way in."""
    if remote_cluster.cas_dir is None:
        pytest.skip("ROOTSEED_REMOTE names a service without its state directory "
                    "(ROOTSEED_REMOTE_DIR): its disk is not reachable")
    data = f"blob {uuid.uuid4()}".encode()
    d = digest_of(data)
    with Remote(remote_cluster.endpoint) as remote:
        remote.upload({d.hash: data})
        [stored] = list(remote_cluster.cas_dir.glob(f"cas/objects/{d.hash[:2]}/{d.hash[2:]}"))
        stored.write_bytes(data.upper())  # same size, other bytes
        with pytest.raises(BlobMismatch):
            remote.read(d)
        with pytest.raises(BlobMismatch):
            remote.read_file(d, tmp_path / "f", 0o644)
    assert not (tmp_path / "f").exists()


def test_the_service_gone_mid_execution_is_one_clear_error_and_a_rerun_works(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    host, _, port = remote_cluster.target.rpartition(":")
    proxy = Proxy((host, int(port))).start()
    action, cmd = _command(f"mkdir /out; sleep 2; echo {uuid.uuid4()} > /out/f",
                           {"OSFamily": "linux", "ISA": "x86-64"})
    tree = build_tree(_root(tmp_path))
    got: dict[str, Any] = {}

    def run() -> None:
        try:
            with Remote(proxy.endpoint) as remote:
                got["response"] = remote.execute(action, cmd, tree)
        except BaseException as e:
            got["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(1.0)  # uploaded, and waiting on the Execute stream
    proxy.cut()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the client hangs on a service that is gone"
    error = got.get("error")
    assert isinstance(error, RemoteError) and error.kind is ErrorKind.REMOTE, got
    # words: names the call and the gRPC status, for people
    assert "Execute" in error.message and "UNAVAILABLE" in error.message and error.hint

    proxy.start()  # the service is back on the same address: the build resumes
    try:
        with Remote(proxy.endpoint) as remote:
            response = remote.execute(action, cmd, tree)
            assert response.result.exit_code == 0
    finally:
        proxy.cut()


def test_a_service_that_is_not_there_fails_each_call_quickly(tmp_path: Path) -> None:
    proxy = Proxy(("127.0.0.1", 1)).start()  # accepts, then has nothing behind it
    action, cmd = _command("true", {"OSFamily": "linux", "ISA": "x86-64"})
    start = time.monotonic()
    try:
        with Remote(proxy.endpoint, timeout=5) as remote, \
                raises_kind(ErrorKind.REMOTE, RemoteError) as e:
            remote.execute(action, cmd, build_tree(_root(tmp_path)))
    finally:
        proxy.cut()
    assert "UNAVAILABLE" in e.value.message and e.value.hint  # words: the gRPC status
    assert time.monotonic() - start < 30
