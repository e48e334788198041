"""Builders of their own on the session's cluster, in-process: a
:class:`~rootseed.remote.executor.RemoteExecutor` on a fresh cache directory whose
gRPC calls are counted, a base snapshot holding busybox, and RUN operations."""

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
from rootseed.remote.client import Remote
from rootseed.remote.executor import RemoteExecutor
from rootseed.sandbox.overlay import OverlayUnavailable, probe


class Counted:
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


def base(where: Path) -> Snapshot:
    """An image's tree as the store holds one: busybox, and two files in /etc."""
    root = where / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("base\n")
    (root / "etc" / "kept").write_text("kept\n")  # /etc is not emptied (that runs locally)
    ref = LayerRef.image("cd" * 32)
    return Snapshot.base(str(ref), (Layer(root, layer_digest(root), ref),))


def run_op(logs: Path, script: str, tag: str) -> ExecOp:
    """A RUN step; ``tag`` (in its environment) keeps its actions apart from other runs'."""
    logs.mkdir(exist_ok=True)
    return ExecOp(argv=("/bin/busybox", "sh", "-c", script),
                  env={"PATH": "/bin", "TAG": tag}, cwd="/", platform="linux/amd64",
                  log=logs / f"{secrets.token_hex(4)}.log", log_root=logs,
                  where="pkg: Containerfile:3: RUN", summary=f"RUN {script}")


def builder(cluster: Cluster, cache: Path) -> tuple[RemoteExecutor, collections.Counter[str]]:
    """A remote executor on its own cache directory, and its gRPC calls by method."""
    if not BUSYBOX.is_file() or shutil.which("bwrap") is None:
        pytest.skip("needs busybox and bubblewrap")
    layout = CacheLayout(cache)
    try:
        ns = probe(layout.work)
    except OverlayUnavailable as e:
        pytest.skip(f"overlay snapshots are not available here: {e.message}")
    calls: collections.Counter[str] = collections.Counter()
    remote = Remote(cluster.endpoint)
    remote.cas = Counted(remote.cas, calls)  # type: ignore[assignment]
    remote.ac = Counted(remote.ac, calls)  # type: ignore[assignment]
    remote.execution = Counted(remote.execution, calls)  # type: ignore[assignment]
    remote.bytestream = Counted(remote.bytestream, calls)  # type: ignore[assignment]
    return RemoteExecutor(ns, LayerStore(layout, Verifier()), remote), calls
