"""Attack: special files left by a remote step, and a worker that lies about them.

A step that leaves a FIFO (next to a symlink to the host's files, a symlink loop and a
FIFO named like the worker's own listing) must be refused by rootseed's worker without
the worker's check reading through a link or blocking on the FIFO; a worker whose typed
"special file left" detail names a path outside the root is refused by the client, which
never touches that path. The host's canaries stay unchanged.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile import Canaries
from remotecluster import BUSYBOX, Cluster, PoolWorker, busybox_action, pool_workers
from rootseed.remote import RemoteError
from rootseed.remote.client import Remote, SpecialFileLeft
from rootseed.remote.leftover import BadLeftoverDetail
from rootseed.remote.merkle import build_tree
from rootseed.remote.protos import re_pb2


def _run(remote: Remote, tmp: Path, script: str, props: dict[str, str],
         env: dict[str, str] | None = None) -> re_pb2.ExecuteResponse:
    root = tmp / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    action, cmd = busybox_action(script, props, env, output_paths=(".",))
    return remote.execute(action, cmd, build_tree(root), skip_cache=True)


@pytest.fixture(scope="module")
def liar(remote_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[list[PoolWorker]]:
    with pool_workers(remote_cluster, tmp_path_factory.mktemp("liar"), "tamper",
                      ["liar-leftover"], tamper=True) as workers:
        yield workers


def test_a_fifo_among_links_to_the_host_is_refused_and_nothing_is_followed(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    b = "/bin/busybox"
    script = (f"{b} mkdir -p /a/b && {b} ln -s {canaries.dir} /a/host "
              f"&& {b} ln -s /a/loop /a/loop && {b} mkfifo /a/b/special /special "
              f"&& {b} ln -s {canaries.public} /a/b/public; echo {uuid.uuid4()}")
    with Remote(remote_cluster.endpoint) as remote, pytest.raises(SpecialFileLeft) as e:
        _run(remote, tmp_path, script, {"OSFamily": "linux", "ISA": "x86-64"})
    assert e.value.path == "a/b/special"  # the first in path order; /special too
    assert e.value.response.result.exit_code == 0  # the step itself succeeded
    canaries.assert_unchanged()


@pytest.mark.parametrize("path", ["../../escaped", "/etc/passwd", "a/../../b", ""])
def test_a_worker_naming_a_path_outside_the_root_is_refused(
        remote_cluster: Cluster, liar: list[PoolWorker], tmp_path: Path, path: str) -> None:
    canaries = Canaries(tmp_path)
    with Remote(remote_cluster.endpoint) as remote, pytest.raises(RemoteError) as e:
        _run(remote, tmp_path, f"echo {uuid.uuid4()} > /x",
             {"OSFamily": "linux", "rootseed-pool": "tamper"},
             {"ROOTSEED_TAMPER": f"special:{path}"})
    assert isinstance(e.value, BadLeftoverDetail) and not isinstance(e.value, SpecialFileLeft)
    assert e.value.path == path and e.value.hint
    canaries.assert_unchanged()
