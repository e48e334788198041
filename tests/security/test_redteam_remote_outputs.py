"""A hostile REAPI service or worker answers with an output tree made to write outside the
step's root: names like ``..``, a name given twice (a link and a directory), a link in the
input replaced by a directory whose files would land at the link's target. The remote
executor applies outputs onto the step's own tree only (remote/executor.py, ``_Diff``),
never through a link, and every blob is verified; the host is unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hostile import Canaries
from rootseed.remote import RemoteError
from rootseed.remote.client import BlobMismatch
from rootseed.remote.executor import STAGED_MTIME, _Diff, _Output
from rootseed.remote.merkle import build_tree, digest_of
from rootseed.remote.protos import re_pb2


class _Blobs:
    """The CAS of the fake service: ``read_file`` as the real client does, verified."""

    def __init__(self, blobs: dict[str, bytes], lie: bool = False) -> None:
        self.blobs = blobs
        self.lie = lie

    def read_file(self, d: re_pb2.Digest, dest: Path, mode: int) -> None:
        data = b"not it" if self.lie else self.blobs[d.hash]
        if hashlib.sha256(data).hexdigest() != d.hash:
            raise BlobMismatch("mismatch")
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _file(d: re_pb2.Directory, name: str, data: bytes) -> None:
    node = d.files.add(name=name, digest=digest_of(data))
    node.node_properties.unix_mode.value = 0o644
    node.node_properties.mtime.seconds = STAGED_MTIME + 1


def _apply(view: Path, root: re_pb2.Directory, children: list[re_pb2.Directory],
           blobs: _Blobs) -> None:
    tree = build_tree(view, mtime=STAGED_MTIME)
    root_in = re_pb2.Directory()
    root_in.ParseFromString(tree.directories[tree.root.hash])
    out = _Output(root, {digest_of(c.SerializeToString(deterministic=True)).hash: c
                         for c in children})
    diff = _Diff(out, tree).run(root_in)
    diff.apply(blobs, view)  # type: ignore[arg-type]


@pytest.fixture
def view(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.mark.parametrize("name", ["..", ".", "a/b", ""])
def test_an_output_name_that_is_a_path_is_refused(tmp_path: Path, view: Path,
                                                  name: str) -> None:
    canaries = Canaries(tmp_path)
    root = re_pb2.Directory()
    _file(root, name, b"pwned\n")
    with pytest.raises(RemoteError):
        _apply(view, root, [], _Blobs({digest_of(b"pwned\n").hash: b"pwned\n"}))
    canaries.assert_unchanged()
    assert os.listdir(view) == []


def test_a_name_given_twice_is_refused(tmp_path: Path, view: Path) -> None:
    canaries = Canaries(tmp_path)
    sub = re_pb2.Directory()
    _file(sub, "f", b"pwned\n")
    root = re_pb2.Directory()
    root.symlinks.add(name="x", target=str(canaries.dir))
    root.directories.add(name="x", digest=digest_of(sub.SerializeToString(deterministic=True)))
    with pytest.raises(RemoteError):
        _apply(view, root, [sub], _Blobs({digest_of(b"pwned\n").hash: b"pwned\n"}))
    canaries.assert_unchanged()


def test_a_link_replaced_by_a_directory_is_never_written_through(tmp_path: Path,
                                                                 view: Path) -> None:
    canaries = Canaries(tmp_path)
    os.symlink(canaries.dir, view / "x")  # the step's input root links out
    sub = re_pb2.Directory()
    _file(sub, "f", b"pwned\n")
    for victim in os.listdir(canaries.dir):
        _file(sub, victim, b"pwned\n")
    root = re_pb2.Directory()
    root.directories.add(name="x", digest=digest_of(sub.SerializeToString(deterministic=True)))
    _apply(view, root, [sub], _Blobs({digest_of(b"pwned\n").hash: b"pwned\n"}))
    canaries.assert_unchanged()
    assert (view / "x").is_dir() and not (view / "x").is_symlink()
    assert (view / "x" / "f").read_bytes() == b"pwned\n"


def test_a_blob_that_is_not_its_digest_is_not_written(tmp_path: Path, view: Path) -> None:
    root = re_pb2.Directory()
    _file(root, "f", b"real\n")
    with pytest.raises(BlobMismatch):
        _apply(view, root, [], _Blobs({}, lie=True))
    assert os.listdir(view) == []


def test_a_directory_missing_from_the_output_tree_is_refused(view: Path) -> None:
    root = re_pb2.Directory()
    root.directories.add(name="d", digest=digest_of(b"no such directory"))
    with pytest.raises(RemoteError):
        _apply(view, root, [], _Blobs({}))
