"""Remote execution groundwork: the local REAPI cluster (PostgreSQL, BuildGrid, buildbox
workers driven by rootseed's bot), the verified client and the input root's Merkle tree.

The cluster is real: ``scripts/remote-cluster up`` starts it from packages, actions run in
buildbox-run's bubblewrap sandbox on a worker, and ``down`` must leave no process behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kinds import raises_kind
from remotecluster import BUSYBOX, Cluster, pool_workers
from rootseed.errors import ErrorKind
from rootseed.remote import RemoteError
from rootseed.remote.client import BlobMismatch, Remote, parse_endpoint
from rootseed.remote.cluster import down, up
from rootseed.remote.merkle import UnsupportedFile, build_tree, digest_of
from rootseed.remote.protos import re_pb2

ROOT = Path(__file__).resolve().parent.parent


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cluster(remote_cluster: Cluster) -> tuple[str, list[str]]:
    """The session's cluster (tests/remotecluster.py): endpoint and its workers' names."""
    return remote_cluster.endpoint, list(remote_cluster.workers)


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    return root


def _command(script: str) -> re_pb2.Command:
    cmd = re_pb2.Command(arguments=["/bin/busybox", "sh", "-c", script],
                         output_paths=["out"])
    cmd.output_node_properties.append("unix_mode")
    cmd.platform.properties.add(name="ISA", value="x86-64")
    cmd.platform.properties.add(name="OSFamily", value="linux")
    return cmd


def _pool_execution(endpoint: str, tmp_path: Path, script: str
                    ) -> tuple[threading.Thread, dict[str, Any]]:
    """A thread (not started) that executes ``script`` on the workers of the test's own
    pool (``rootseed-pool=test``); its response lands in the dict under "response"."""
    cmd = re_pb2.Command(arguments=["/bin/busybox", "sh", "-c", script],
                         output_paths=["out"])
    for name, value in (("OSFamily", "linux"), ("rootseed-pool", "test")):
        cmd.platform.properties.add(name=name, value=value)
    tree = build_tree(_root(tmp_path))
    got: dict[str, Any] = {}

    def run() -> None:
        with Remote(endpoint) as remote:
            got["response"] = remote.execute(_action(cmd), cmd, tree, skip_cache=True)

    return threading.Thread(target=run, daemon=True), got


def _action(cmd: re_pb2.Command) -> re_pb2.Action:
    action = re_pb2.Action()
    action.platform.CopyFrom(cmd.platform)
    return action


def test_an_action_runs_on_a_worker_and_its_outputs_come_back_verified(
        cluster: tuple[str, list[str]], tmp_path: Path) -> None:
    endpoint, workers = cluster
    script = (f"mkdir -p /out/d; echo {tmp_path.name} > /out/x; chmod 4750 /out/x; "
              "ln -s x /out/y; id -u")
    cmd = _command(script)
    tree = build_tree(_root(tmp_path))
    with Remote(endpoint) as remote:
        response = remote.execute(_action(cmd), cmd, tree, skip_cache=True)
        result = response.result
        assert result.exit_code == 0
        assert result.execution_metadata.worker in workers
        assert remote.read(result.stdout_digest) == b"0\n"
        [out] = result.output_directories
        dest = tmp_path / "got"
        remote.download_directory(out, dest)
    assert (dest / "x").read_text() == f"{tmp_path.name}\n"
    assert (dest / "x").stat().st_mode & 0o7777 == 0o4750  # modes survive (unix_mode)
    assert os.readlink(dest / "y") == "x"
    assert (dest / "d").is_dir()


def test_a_repeated_action_is_served_from_the_action_cache(
        cluster: tuple[str, list[str]], tmp_path: Path) -> None:
    endpoint, _ = cluster
    cmd = _command(f"mkdir /out; echo cached-{tmp_path.name} > /out/f")
    tree = build_tree(_root(tmp_path))
    with Remote(endpoint) as remote:
        first = remote.execute(_action(cmd), cmd, tree)
        second = remote.execute(_action(cmd), cmd, tree)
    assert not first.cached_result
    assert second.cached_result
    assert second.result.output_directories[0].tree_digest == \
        first.result.output_directories[0].tree_digest


def test_a_failing_step_reports_its_exit_code(cluster: tuple[str, list[str]],
                                              tmp_path: Path) -> None:
    endpoint, _ = cluster
    cmd = _command("echo broken >&2; exit 3")
    with Remote(endpoint) as remote:
        response = remote.execute(_action(cmd), cmd, build_tree(_root(tmp_path)),
                                  skip_cache=True)
        assert response.result.exit_code == 3
        assert remote.read(response.result.stderr_digest) == b"broken\n"


def test_the_step_has_no_network(cluster: tuple[str, list[str]], tmp_path: Path) -> None:
    endpoint, _ = cluster
    cmd = _command("ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | "
                   "cut -d: -f1 | tr -d ' '")
    with Remote(endpoint) as remote:
        response = remote.execute(_action(cmd), cmd, build_tree(_root(tmp_path)),
                                  skip_cache=True)
        interfaces = remote.read(response.result.stdout_digest).decode().split()
    assert set(interfaces) <= {"lo"}


def test_an_unreachable_service_is_one_clear_error() -> None:
    with Remote("grpc://127.0.0.1:1", timeout=2) as remote, \
            raises_kind(ErrorKind.REMOTE, RemoteError) as e:
        remote.wait_ready(2)
    assert "127.0.0.1:1" in e.value.message and e.value.hint  # words: names the endpoint


@pytest.mark.parametrize("url", ["127.0.0.1:5", "https://h:5", "grpc://h", "grpc://h:5/x"])
def test_endpoints_must_be_grpc_host_port(url: str) -> None:
    with pytest.raises(RemoteError):
        parse_endpoint(url)
    assert parse_endpoint("grpc://127.0.0.1:50051") == "127.0.0.1:50051"


class _LyingCas:
    """A CAS that answers every read with other bytes than the digest names."""

    def BatchReadBlobs(self, request: Any, timeout: float) -> Any:
        r = re_pb2.BatchReadBlobsResponse()
        for d in request.digests:
            r.responses.add(digest=d, data=b"not what you asked for")
        return r


def test_a_blob_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    remote = Remote("grpc://127.0.0.1:1")
    remote.cas = _LyingCas()
    d = digest_of(b"the real content")
    with pytest.raises(BlobMismatch):
        remote.read(d)
    with pytest.raises(BlobMismatch):
        remote.read_file(d, tmp_path / "f", 0o644)
    assert not (tmp_path / "f").exists()  # nothing unverified is left behind
    remote.close()


def test_merkle_tree_is_reapis_directory_encoding(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    (root / "b").write_bytes(b"bee")
    (root / "a").write_bytes(b"ay")
    (root / "a").chmod(0o755)
    (root / "b").chmod(0o644)
    (root / "sub" / "c").write_bytes(b"")
    (root / "sub" / "c").chmod(0o600)
    (root / "sub").chmod(0o750)
    root.chmod(0o755)
    os.symlink("a", root / "l")
    tree = build_tree(root)

    sub = re_pb2.Directory()
    f = sub.files.add(name="c", digest=re_pb2.Digest(hash=_sha(b""), size_bytes=0))
    f.node_properties.unix_mode.value = 0o600
    sub.node_properties.unix_mode.value = 0o750
    sub_bytes = sub.SerializeToString(deterministic=True)
    top = re_pb2.Directory()
    fa = top.files.add(name="a", digest=re_pb2.Digest(hash=_sha(b"ay"), size_bytes=2),
                       is_executable=True)
    fa.node_properties.unix_mode.value = 0o755
    fb = top.files.add(name="b", digest=re_pb2.Digest(hash=_sha(b"bee"), size_bytes=3))
    fb.node_properties.unix_mode.value = 0o644
    top.directories.add(name="sub", digest=re_pb2.Digest(hash=_sha(sub_bytes),
                                                         size_bytes=len(sub_bytes)))
    top.symlinks.add(name="l", target="a")
    top.node_properties.unix_mode.value = 0o755
    top_bytes = top.SerializeToString(deterministic=True)
    assert tree.root.hash == _sha(top_bytes)
    assert tree.root.size_bytes == len(top_bytes)
    assert set(tree.directories) == {_sha(top_bytes), _sha(sub_bytes)}
    assert set(tree.files) == {_sha(b""), _sha(b"ay"), _sha(b"bee")}


def test_a_fifo_cannot_go_into_an_input_root(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with raises_kind(ErrorKind.REMOTE, UnsupportedFile) as e:
        build_tree(root)
    assert "pipe" in e.value.message  # words: names the file, for people


def test_a_deep_tree_needs_no_recursion(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    fd = os.open(path, os.O_RDONLY)
    for _ in range(sys.getrecursionlimit() + 50):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    try:
        assert build_tree(path).root.size_bytes > 0
    finally:  # pytest's own clean-up (shutil.rmtree) would recurse: remove bottom-up
        depth = sys.getrecursionlimit() + 50
        for level in range(depth, 0, -1):
            os.rmdir(path.joinpath(*["d"] * level))


def test_down_never_signals_a_pid_that_is_no_longer_ours(tmp_path: Path) -> None:
    import json

    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "cluster.json").write_text(json.dumps({
            "endpoint": "grpc://127.0.0.1:1", "instance": "", "workers": [],
            "procs": [{"role": "buildgrid", "pid": sleeper.pid, "start": "1"}]}))
        assert down(tmp_path) == []  # recorded start time differs: someone else's pid
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_up_refuses_cleanly_without_its_programs(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rootseed.remote.cluster._pg_bin",
                        lambda: (_ for _ in ()).throw(RemoteError("no PostgreSQL")))
    with pytest.raises(RemoteError):
        up(tmp_path / "c")
    assert not (tmp_path / "c" / "cluster.json").exists()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _running(pid: int, marker: str) -> bool:
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            if marker.encode() in Path(f"/proc/{p}/cmdline").read_bytes():
                return True
    return False


def test_a_worker_killed_mid_action_has_its_action_run_elsewhere(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """Two workers of the test's own pool (the cluster's are left alone): the one running
    the step is killed with its sandbox; BuildGrid requeues the action onto the other
    once the dead one's session expires (rootseed.remote.cluster.KEEPALIVE)."""
    marker = f"slow-{tmp_path.name}"
    thread, result = _pool_execution(remote_cluster.endpoint, tmp_path,
                                     f"mkdir /out; sleep 2; echo {marker} > /out/f")
    with pool_workers(remote_cluster, tmp_path, "test", ["kill-a", "kill-b"]) as workers:
        thread.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            victim = next((w for w in workers if _running(w.bot.pid, marker)), None)
            time.sleep(0.05)
        assert victim is not None, "the action never started on a worker"
        for pid in [victim.bot.pid, *_descendants(victim.bot.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
    response = result["response"]
    assert response.result.exit_code == 0
    survivor = next(w for w in workers if w is not victim)
    assert response.result.execution_metadata.worker == survivor.name


def test_a_worker_whose_casd_died_hands_its_action_to_another(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """A bot that cannot reach its casd reports the lease UNAVAILABLE (BuildGrid retries
    it elsewhere) and leaves, instead of failing every action it is given."""
    thread, got = _pool_execution(remote_cluster.endpoint, tmp_path,
                                  f"mkdir /out; echo {tmp_path.name} > /out/f")
    with pool_workers(remote_cluster, tmp_path, "test", ["nocasd"]) as [broken]:
        os.killpg(broken.casd.pid, signal.SIGKILL)
        broken.casd.wait()
        thread.start()  # only the broken worker is there to take it
        deadline = time.monotonic() + 60
        while broken.bot.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert broken.bot.poll() is not None, "the broken worker kept its session"
        assert "does not answer: stopping" in broken.log.read_text()
    with pool_workers(remote_cluster, tmp_path, "test", ["healthy"]):
        thread.join(timeout=120)
        assert not thread.is_alive()
    response = got["response"]
    assert response.result.exit_code == 0
    assert response.result.execution_metadata.worker == "healthy"
