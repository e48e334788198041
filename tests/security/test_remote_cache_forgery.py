"""A forged entry in the service's action cache (anyone who may call
``UpdateActionResult``, or a changed CAS disk) reaches a second builder through the
client's lookup before upload (``GetActionResult``): it is a claim like any result. Its
output tree is checked (names) and every blob it names is verified by digest on the
batched reads, so the step fails with one error, nothing is written into the step's
cache entry, and the host is unchanged."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from hostile import Canaries
from remotechain import base, builder, run_op
from remotecluster import Cluster
from rootseed.engine.ops import ExecOp
from rootseed.engine.snapshots import Snapshot
from rootseed.remote import RemoteError
from rootseed.remote.client import BadOutput, BlobMismatch, OutputProblem, Remote
from rootseed.remote.executor import RemoteExecutor, action_of, command_of
from rootseed.remote.merkle import digest_of
from rootseed.remote.protos import re_pb2


def _action_digest(executor: RemoteExecutor, snapshot: Snapshot, op: ExecOp) -> re_pb2.Digest:
    """The digest of the Action the executor will send for ``op`` (as the attacker, who
    knows the step and its input, computes it)."""
    cmd = command_of(op)
    action = action_of(cmd, op.timeout)
    action.command_digest.CopyFrom(digest_of(cmd.SerializeToString(deterministic=True)))
    action.input_root_digest.CopyFrom(executor._input(snapshot).root)
    return digest_of(action.SerializeToString(deterministic=True))


def _forge(cluster: Cluster, action: re_pb2.Digest, root: re_pb2.Directory,
           blobs: dict[str, bytes]) -> re_pb2.Digest:
    """Store a result of ``action`` whose output is ``root`` (blobs uploaded as they
    are: the CAS accepts them, they match their digests)."""
    tree = re_pb2.Tree(root=root)
    data = tree.SerializeToString(deterministic=True)
    tree_digest = digest_of(data)
    result = re_pb2.ActionResult(exit_code=0)
    result.output_directories.add(path=".", tree_digest=tree_digest)
    result.execution_metadata.worker = "forger"
    with Remote(cluster.endpoint) as remote:
        remote.upload({tree_digest.hash: data, **blobs})
        remote.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(
            action_digest=action, action_result=result), timeout=30)
    return tree_digest


def _file(d: re_pb2.Directory, name: str, data: bytes) -> None:
    node = d.files.add(name=name, digest=digest_of(data))
    node.node_properties.unix_mode.value = 0o644


def _victim(cluster: Cluster, tmp_path: Path, forge: str) -> None:
    canaries = Canaries(tmp_path)
    executor, calls = builder(cluster, tmp_path / "cache")
    try:
        snapshot = base(tmp_path / "image")
        op = run_op(tmp_path / "logs", "echo real > /real", secrets.token_hex(8))
        key = secrets.token_hex(32)
        action = _action_digest(executor, snapshot, op)
        root = re_pb2.Directory()
        if forge == "escape":
            _file(root, "..", f"pwned {canaries.dir}\n".encode())
            blobs = {digest_of(f"pwned {canaries.dir}\n".encode()).hash:
                     f"pwned {canaries.dir}\n".encode()}
            expected: type[RemoteError] = BadOutput
        else:  # a blob changed on the CAS disk after the forger stored it
            if cluster.cas_dir is None:
                pytest.skip("ROOTSEED_REMOTE names a service without its state directory")
            data = f"forged {secrets.token_hex(8)}\n".encode()
            _file(root, "real", data)
            blobs = {digest_of(data).hash: data}
            expected = BlobMismatch
        _forge(cluster, action, root, blobs)
        if forge == "changed":
            [stored] = cluster.cas_dir.glob(  # type: ignore[union-attr]
                f"cas/objects/{digest_of(data).hash[:2]}/{digest_of(data).hash[2:]}")
            stored.write_bytes(data.upper())
        with pytest.raises(expected) as caught:
            executor.execute(snapshot, op, key, work=tmp_path)
        if isinstance(caught.value, BadOutput):
            assert caught.value.problem is OutputProblem.BAD_NAME
        assert calls["GetActionResult"] == 1 and calls["Execute"] == 0  # served cached
        assert executor.actions.lookup(key) is None  # nothing written for the step
    finally:
        executor.close()
    canaries.assert_unchanged()


@pytest.mark.parametrize("forge", ["escape", "changed"])
def test_a_forged_cached_result_is_refused(remote_cluster: Cluster, tmp_path: Path,
                                           forge: str) -> None:
    _victim(remote_cluster, tmp_path, forge)
