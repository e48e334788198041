"""A fully cached remote chain costs action-cache lookups and the outputs it needs: a
second builder (a fresh cache) on the same service makes, per RUN step, one
GetActionResult and batched reads of the result's blobs; no upload (FindMissingBlobs,
BatchUpdateBlobs, ByteStream), no Execute, and each step's input root is composed from
its parent's tree by applying one layer, never by walking the merged tree. Counted, not
timed (benchmarks/bench_remote.py times it)."""

from __future__ import annotations

import collections
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remotecluster import BUSYBOX, Cluster
from rootseed.engine.layers import layer_digest
from rootseed.engine.ops import ExecOp
from rootseed.engine.refs import CacheLayout, LayerRef
from rootseed.engine.snapshots import Layer, LayerStore, Snapshot, Verifier
from rootseed.remote import executor as remote_executor
from rootseed.remote import merkle
from rootseed.remote.client import Remote
from rootseed.remote.executor import RemoteExecutor
from rootseed.sandbox.overlay import OverlayUnavailable, probe

pytestmark = pytest.mark.skipif(not BUSYBOX.is_file() or shutil.which("bwrap") is None,
                                reason="needs busybox and bubblewrap")

STEPS = ("mkdir -p /srv/a && echo one > /srv/a/one",
         "echo two > /srv/a/two && rm /etc/motd",
         "cat /srv/a/one /srv/a/two > /srv/both && chmod 4755 /srv/both")


class _Counted:
    """A gRPC stub whose calls are counted by method name."""

    def __init__(self, stub: object, calls: collections.Counter[str]) -> None:
        self._stub = stub
        self._calls = calls

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            return method(*args, **kwargs)
        return call


def _base(where: Path) -> Snapshot:
    root = where / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("base\n")
    (root / "etc" / "kept").write_text("kept\n")  # /etc is not emptied (that runs locally)
    ref = LayerRef.image("cd" * 32)
    return Snapshot.base(str(ref), (Layer(root, layer_digest(root), ref),))


def _op(tmp_path: Path, script: str, tag: str) -> ExecOp:
    return ExecOp(argv=("/bin/busybox", "sh", "-c", script),
                  env={"PATH": "/bin", "TAG": tag}, cwd="/", platform="linux/amd64",
                  log=tmp_path / "logs" / f"{secrets.token_hex(4)}.log", log_root=tmp_path,
                  where="pkg: Containerfile:3: RUN", summary=f"RUN {script}")


def _chain(cluster: Cluster, tmp_path: Path, cache: str, tag: str
           ) -> tuple[list[dict[str, Any]], collections.Counter[str], RemoteExecutor,
                      list[str]]:
    """Run STEPS one on another on a builder of its own (cache directory ``cache``)."""
    layout = CacheLayout(tmp_path / cache)
    try:
        ns = probe(layout.work)
    except OverlayUnavailable as e:
        pytest.skip(f"overlay snapshots are not available here: {e.message}")
    calls: collections.Counter[str] = collections.Counter()
    remote = Remote(cluster.endpoint)
    remote.cas = _Counted(remote.cas, calls)  # type: ignore[assignment]
    remote.ac = _Counted(remote.ac, calls)  # type: ignore[assignment]
    remote.execution = _Counted(remote.execution, calls)  # type: ignore[assignment]
    remote.bytestream = _Counted(remote.bytestream, calls)  # type: ignore[assignment]
    executor = RemoteExecutor(ns, LayerStore(layout, Verifier()), remote)
    (tmp_path / "logs").mkdir(exist_ok=True)
    work = tmp_path / f"work-{cache}"
    work.mkdir()
    snapshot = _base(tmp_path / f"image-{cache}")
    origins, digests = [], []
    for i, script in enumerate(STEPS):
        result = executor.execute(snapshot, _op(tmp_path, script, tag), f"{tag}{i:04x}",
                                  work=work)
        origins.append(dict(result.origin or {}))
        snapshot = result.snapshot
        digests.append(snapshot.digest)
    return origins, calls, executor, digests


def test_a_second_builder_makes_only_lookups_and_reads(
        remote_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[Path] = []
    real = merkle.build_tree

    def counted(root: Path, **kwargs: Any) -> merkle.Tree:
        walks.append(root)
        return real(root, **kwargs)
    monkeypatch.setattr(merkle, "build_tree", counted)
    monkeypatch.setattr(remote_executor, "build_tree", counted, raising=False)
    tag = secrets.token_hex(8)  # actions of this run only
    first, _, executor, made = _chain(remote_cluster, tmp_path, "a", tag)
    executor.close()
    assert [o.get("remote_cached") for o in first] == [False, False, False], first
    second, calls, executor, again = _chain(remote_cluster, tmp_path, "b", tag)
    try:
        assert [o["remote_cached"] for o in second] == [True, True, True]
        assert again == made  # the same layers, so the same snapshots
        assert calls["GetActionResult"] == len(STEPS)
        assert not {"Execute", "FindMissingBlobs", "BatchUpdateBlobs", "Write"} & set(calls)
        # one read of each result's logs and output tree, one of its new files
        assert calls["BatchReadBlobs"] <= 2 * len(STEPS)
        assert calls["Read"] == 0
        # the base layer and each step's layer applied once, on their parents' trees
        assert executor._roots.layers_applied == len(STEPS)
        assert walks == []
    finally:
        executor.close()
