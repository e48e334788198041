"""A fully cached remote chain costs action-cache lookups and the outputs it needs: a
second builder (a fresh cache) on the same service makes, per RUN step, one
GetActionResult and batched reads of the result's blobs; no upload (FindMissingBlobs,
BatchUpdateBlobs, ByteStream), no Execute, and each step's input root is composed from
its parent's tree by applying one layer, never by walking the merged tree. Counted, not
timed (benchmarks/bench_remote.py times it)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from remotechain import base, builder, run_op
from remotecluster import Cluster
from rootseed.remote import executor as remote_executor
from rootseed.remote import merkle

STEPS = ("mkdir -p /srv/a && echo one > /srv/a/one",
         "echo two > /srv/a/two && rm /etc/motd",
         "cat /srv/a/one /srv/a/two > /srv/both && chmod 4755 /srv/both")


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
    runs: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
    for cache in ("a", "b"):
        executor, calls = builder(remote_cluster, tmp_path / cache)
        try:
            snapshot = base(tmp_path / f"image-{cache}")
            origins, digests = [], []
            for i, script in enumerate(STEPS):
                result = executor.execute(snapshot, run_op(tmp_path / "logs", script, tag),
                                          f"{tag}{i:04x}", work=tmp_path)
                origins.append(dict(result.origin or {}))
                snapshot = result.snapshot
                digests.append(snapshot.digest)
            runs[cache] = origins, digests
            applied = executor._roots.layers_applied
        finally:
            executor.close()
    assert [o.get("remote_cached") for o in runs["a"][0]] == [False] * len(STEPS), runs
    assert [o.get("remote_cached") for o in runs["b"][0]] == [True] * len(STEPS), runs
    assert runs["b"][1] == runs["a"][1]  # the same layers, so the same snapshots
    # the second builder's calls
    assert calls["GetActionResult"] == len(STEPS)
    assert not {"Execute", "FindMissingBlobs", "BatchUpdateBlobs", "Write"} & set(calls)
    # one read of each result's logs and output tree, one of its new files
    assert calls["BatchReadBlobs"] <= 2 * len(STEPS)
    assert calls["Read"] == 0
    # the base layer and each step's layer applied once, on their parents' trees
    assert applied == len(STEPS)
    assert walks == []
