"""The sandbox guarantees of a RUN step on a remote worker, against the real cluster: a
fixed environment, the step timeout, the step limits, the platform (see
rootseed.remote.bot and docs/trust-model.md, "Remote workers")."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remotecluster import BUSYBOX, Cluster, PoolWorker, pool_workers
from rootseed.errors import ErrorKind
from rootseed.remote.bot import Refused, check_platform
from rootseed.remote.client import ActionFailed, Remote, RemoteTimeout
from rootseed.remote.merkle import build_tree
from rootseed.remote.protos import code_pb2, re_pb2
from rootseed.sandbox.spec import DEFAULT_HOSTNAME

X86_64 = (("OSFamily", "linux"), ("ISA", "x86-64"))


def _root(tmp: Path) -> Path:
    root = tmp / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    return root


def _run(remote: Remote, tmp: Path, argv: list[str], *,
         platform: tuple[tuple[str, str], ...] = X86_64, env: dict[str, str] | None = None,
         timeout: int = 0) -> re_pb2.ExecuteResponse:
    cmd = re_pb2.Command(arguments=argv, output_paths=["out"])
    for name in sorted(env or {}):
        cmd.environment_variables.add(name=name, value=(env or {})[name])
    for name, value in platform:
        cmd.platform.properties.add(name=name, value=value)
    action = re_pb2.Action()
    action.timeout.seconds = timeout
    action.platform.CopyFrom(cmd.platform)
    return remote.execute(action, cmd, build_tree(_root(tmp)), skip_cache=True)


def test_the_step_sees_exactly_the_commands_environment(remote_cluster: Cluster,
                                                         tmp_path: Path) -> None:
    env = {"HOME": "/root", "PATH": "/bin", "SOURCE_DATE_EPOCH": "1", "X": tmp_path.name}
    with Remote(remote_cluster.endpoint) as remote:
        response = _run(remote, tmp_path, ["/bin/busybox", "env"], env=env)
        printed = remote.read(response.result.stdout_digest).decode()
    # buildbox-run adds PWD (the working directory; a local step's environment has none
    # until its shell sets it): that one difference is documented (docs/trust-model.md)
    assert sorted(printed.splitlines()) == sorted(
        [f"{k}={v}" for k, v in env.items()] + ["PWD=/"])


def test_the_step_sees_the_local_sandboxs_hostname(remote_cluster: Cluster,
                                                   tmp_path: Path) -> None:
    # buildbox-run names its sandbox "buildbox"; a step that records its hostname would
    # give another image remotely than locally (rootseed.sandbox.spec.DEFAULT_HOSTNAME)
    with Remote(remote_cluster.endpoint) as remote:
        response = _run(remote, tmp_path, ["/bin/busybox", "hostname"])
        printed = remote.read(response.result.stdout_digest).decode()
    assert printed == DEFAULT_HOSTNAME + "\n"


def test_a_step_past_its_timeout_is_killed_and_reported(remote_cluster: Cluster,
                                                        tmp_path: Path) -> None:
    marker = f"sleep 1{abs(hash(tmp_path.name)) % 100000}"  # a sleep no one else runs
    start = time.monotonic()
    with Remote(remote_cluster.endpoint) as remote, pytest.raises(RemoteTimeout) as e:
        _run(remote, tmp_path, ["/bin/busybox", "sh", "-c", marker], timeout=2)
    assert e.value.code == code_pb2.DEADLINE_EXCEEDED
    assert e.value.kind is ErrorKind.STEP_TIMEOUT
    assert time.monotonic() - start < 60  # not the minutes the step asked for
    for proc in Path("/proc").iterdir():  # the step is gone from the worker
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            assert marker.encode() not in cmdline


def test_a_platform_no_worker_runs_is_refused_at_once(remote_cluster: Cluster,
                                                      tmp_path: Path) -> None:
    start = time.monotonic()
    with Remote(remote_cluster.endpoint) as remote, pytest.raises(ActionFailed) as e:
        _run(remote, tmp_path, ["/bin/busybox", "true"],
             platform=(("OSFamily", "linux"), ("ISA", "aarch64")))
    assert e.value.code == code_pb2.FAILED_PRECONDITION
    assert "aarch64" in e.value.message and e.value.hint  # words: names the platform
    assert time.monotonic() - start < 30  # refused, not queued for a worker to come


def test_a_386_step_runs_on_an_x86_64_worker(remote_cluster: Cluster,
                                             tmp_path: Path) -> None:
    with Remote(remote_cluster.endpoint) as remote:
        response = _run(remote, tmp_path, ["/bin/busybox", "uname", "-m"],
                        platform=(("OSFamily", "linux"), ("ISA", "x86-32")))
        assert remote.read(response.result.stdout_digest).strip() in (b"i686", b"i386")


@pytest.mark.parametrize("platform, refused", [
    ((("ISA", "aarch64"),), "ISA 'aarch64'"),
    ((("OSFamily", "windows"),), "OSFamily 'windows'"),
    ((("network", "on"),), "network='on'"),
    ((("unixUID", "1000"),), "unixUID='1000'"),
    ((("chrootRootDigest", "0" * 64 + "/1"),), "chrootRootDigest"),
])
def test_the_bot_refuses_what_it_cannot_or_must_not_run(
        platform: tuple[tuple[str, str], ...], refused: str) -> None:
    p = re_pb2.Platform()
    for name, value in platform:
        p.properties.add(name=name, value=value)
    with pytest.raises(Refused) as e:
        check_platform(p, ["x86-64", "x86-32"], "command")
    # words: the code says it was refused; the message names the property, for people
    assert e.value.code == code_pb2.FAILED_PRECONDITION and refused in e.value.message
    ok = re_pb2.Platform()
    for name, value in X86_64:
        ok.properties.add(name=name, value=value)
    check_platform(ok, ["x86-64", "x86-32"], "action")


LIMITS = ("--max-processes=40", "--max-memory=96M", "--max-disk=1M")


@pytest.fixture(scope="module")
def limited(remote_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[list[PoolWorker]]:
    with pool_workers(remote_cluster, tmp_path_factory.mktemp("limited"), "limits",
                      ["limited-1"], limits=LIMITS) as workers:
        yield workers


POOL = (("OSFamily", "linux"), ("rootseed-pool", "limits"))


@pytest.mark.parametrize("script, limit", [
    ("i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait", "process limit"),
    ("awk 'BEGIN { s = \"x\"; while (1) s = s s }'", "memory limit"),
])
def test_a_step_past_a_worker_limit_is_stopped_and_named(
        remote_cluster: Cluster, limited: object, tmp_path: Path, script: str,
        limit: str) -> None:
    with Remote(remote_cluster.endpoint) as remote, pytest.raises(ActionFailed) as e:
        _run(remote, tmp_path, ["/bin/busybox", "sh", "-c", script], platform=POOL)
    assert e.value.code == code_pb2.RESOURCE_EXHAUSTED
    # words: the code says a limit stopped it; the message names which, and the worker
    assert limit in e.value.message and "limited-1" in e.value.message


def test_a_file_past_the_worker_disk_limit_is_not_written(
        remote_cluster: Cluster, limited: object, tmp_path: Path) -> None:
    with Remote(remote_cluster.endpoint) as remote:
        response = _run(remote, tmp_path, [
            "/bin/busybox", "sh", "-c",
            "mkdir /out; head -c 3000000 /dev/zero > /out/big; echo status $?"],
            platform=POOL)
        said = remote.read(response.result.stdout_digest)
        [out] = response.result.output_directories
        tree = re_pb2.Tree()
        tree.ParseFromString(remote.read(out.tree_digest))
    assert b"status 0" not in said  # the write failed (SIGXFSZ / EFBIG)
    assert all(f.digest.size_bytes <= 1 << 20 for f in tree.root.files)


def test_worker_limits_are_checked_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rootseed.remote.cluster import main

    assert main(["up", "--dir", str(tmp_path / "c"), "--max-memory", "lots"]) == 1
    err = capsys.readouterr().err
    assert "invalid size 'lots'" in err and "Traceback" not in err
    assert not (tmp_path / "c" / "cluster.json").exists()
