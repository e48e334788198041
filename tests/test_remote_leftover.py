"""A RUN step that leaves what no image may hold fails remotely as it fails locally.

Locally the step's layer refuses a FIFO, socket or device node (and a ``.wh.*`` name)
with :class:`~rootseed.oci.entries.UnsupportedEntry`. REAPI has no node for a FIFO, so a
worker would drop it and the step would succeed with another image; rootseed's worker
reports it in a typed detail instead (:mod:`rootseed.remote.leftover`). Against the real
cluster (tests/remotecluster.py).
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import rootseed
from remotecluster import Cluster
from rootseed.remote import RemoteError, leftover
from rootseed.remote.protos import code_pb2, error_details_pb2, status_pb2

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def _build(tree: Path, cache: Path, out: Path, *args: str) -> tuple[int, dict[str, Any],
                                                                   list[dict[str, Any]]]:
    r = rootseed("build", "core-app", *args, "--tree", str(tree), "--cache-dir", str(cache),
                 "--out", str(out), "--offline", "--json", timeout=600)
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    return r.returncode, json.loads(r.stdout), events


def _failed(events: list[dict[str, Any]]) -> dict[str, Any]:
    (failed,) = [e for e in events if e["event"] == "failed"]
    return {k: failed[k] for k in ("package", "line", "step", "stage", "instruction", "error")}


@pytest.mark.parametrize(("script", "path", "what"), [
    ("mkdir /data && echo keep > /data/keep && mkfifo /data/pipe", "/data/pipe", "is a FIFO"),
    ("mkdir /data && mkfifo /data/b /data/a", "/data/a", "is a FIFO"),
    ("mkdir /data && touch /data/keep /data/.wh.keep", "/data/.wh.keep",
     "named like an OCI whiteout"),
])
def test_a_step_leaving_a_special_file_fails_remotely_as_locally(
        remote_cluster: Cluster, tmp_path: Path, script: str, path: str, what: str) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, f"FROM rs/bootstrap-base\nRUN echo before > /before\nRUN {script}\n")
    code, local, events = _build(tree, tmp_path / "local", tmp_path / "out-local")
    assert code == 1 and local["error"]["kind"] == "refused", local
    assert path in local["error"]["message"] and what in local["error"]["message"]
    expected = _failed(events)
    for attempt in ("first", "again"):  # a refused action is not in the service's cache
        code, remote, events = _build(tree, tmp_path / "remote", tmp_path / "out-remote",
                                      "--remote", remote_cluster.endpoint)
        assert code == 1, (attempt, remote)
        assert remote["error"] == local["error"], attempt
        assert _failed(events) == expected, attempt
        assert not (tmp_path / "out-remote" / "core-app").exists()
        ran = [e for e in events if e["event"] == "end" and e["package"] == "core-app"]
        assert [e["executor"] for e in ran] == (["remote"] if attempt == "first" else [])
    # nothing of the failed step in the cache: only the step before it is there
    remote_keys = {p.name for p in (tmp_path / "remote" / "actions").iterdir()}
    local_keys = {p.name for p in (tmp_path / "local" / "actions").iterdir()}
    assert remote_keys == local_keys


def test_special_files_the_step_cannot_keep_leave_the_digest_alone(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """A FIFO in /tmp (a tmpfs of the step's own, locally and on the worker) is fine,
    and a passing step gives the local digest."""
    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base\nRUN mkfifo /tmp/pipe && echo ok > /ok\n")
    code, local, _ = _build(tree, tmp_path / "local", tmp_path / "out-local")
    assert code == 0, local
    code, remote, events = _build(tree, tmp_path / "remote", tmp_path / "out-remote",
                                  "--remote", remote_cluster.endpoint, "--remote-no-images")
    assert code == 0, remote
    assert remote["results"] == [{**r, "image": s["image"]} for r, s in
                                 zip(local["results"], remote["results"], strict=True)]
    assert [e["executor"] for e in events
            if e["event"] == "end" and e["package"] == "core-app"] == ["remote"]


def test_the_worker_listing_names_the_first_special_file() -> None:
    listing = b"p data/b\0s data/a sock\0c dev2/null\0"
    assert leftover.first_special(listing) == ("data/a sock", "socket")
    assert leftover.first_special(b"") is None
    for bad in (b"f data/file\0", b"p \0", b"p tmp/pipe\0"):
        with pytest.raises(ValueError):
            leftover.first_special(bad)


def test_the_typed_detail_round_trips_and_a_bad_one_is_refused() -> None:
    status = leftover.status_for("data/pipe", "fifo", "w1")
    assert status.code == code_pb2.FAILED_PRECONDITION
    assert leftover.special_left(status) == ("data/pipe", stat.S_IFIFO)
    # the message is not what is read: another message, the same answer
    status.message = "something else entirely"
    assert leftover.special_left(status) == ("data/pipe", stat.S_IFIFO)
    plain = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION,
                              message="the step left /data/pipe, a fifo")
    assert leftover.special_left(plain) is None
    for path, kind in (("../etc/passwd", "fifo"), ("/abs", "fifo"), ("a//b", "fifo"),
                       ("data/pipe", "regular")):
        bad = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION)
        bad.details.add().Pack(error_details_pb2.ErrorInfo(
            reason=leftover.REASON, domain=leftover.DOMAIN,
            metadata={"path": path, "type": kind}))
        with pytest.raises(RemoteError):
            leftover.special_left(bad)
    other = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION)
    other.details.add().Pack(error_details_pb2.ErrorInfo(
        reason=leftover.REASON, domain="example.com", metadata={"path": "x", "type": "fifo"}))
    assert leftover.special_left(other) is None
