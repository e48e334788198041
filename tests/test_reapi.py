"""A snapshot's REAPI Directory digest, checked against the protobuf library's encoding of
the same messages (build.bazel.remote.execution.v2, declared here field for field)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from rootseed.engine.reapi import Digest, directory_digest
from rootseed.errors import RootseedError

descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
descriptor_pool = pytest.importorskip("google.protobuf.descriptor_pool")
message_factory = pytest.importorskip("google.protobuf.message_factory")


def _messages() -> dict[str, Any]:
    """The five REAPI v2 messages a Directory needs, with the field numbers and types of
    remote_execution.proto."""
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="rootseed_test_reapi.proto",
                                             package="build.bazel.remote.execution.v2",
                                             syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, str, bool]]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            field = m.field.add(name=fname, number=number, type=ftype,
                                label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".build.bazel.remote.execution.v2.{type_name}"

    message("Digest", [("hash", 1, f.TYPE_STRING, "", False),
                       ("size_bytes", 2, f.TYPE_INT64, "", False)])
    message("FileNode", [("name", 1, f.TYPE_STRING, "", False),
                         ("digest", 2, f.TYPE_MESSAGE, "Digest", False),
                         ("is_executable", 4, f.TYPE_BOOL, "", False)])
    message("DirectoryNode", [("name", 1, f.TYPE_STRING, "", False),
                              ("digest", 2, f.TYPE_MESSAGE, "Digest", False)])
    message("SymlinkNode", [("name", 1, f.TYPE_STRING, "", False),
                            ("target", 2, f.TYPE_STRING, "", False)])
    message("Directory", [("files", 1, f.TYPE_MESSAGE, "FileNode", True),
                          ("directories", 2, f.TYPE_MESSAGE, "DirectoryNode", True),
                          ("symlinks", 3, f.TYPE_MESSAGE, "SymlinkNode", True)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"build.bazel.remote.execution.v2.{name}"))
        for name in ("Digest", "Directory")}


def _reference(root: Path, messages: dict[str, Any]) -> Digest:
    """The digest as the protobuf library encodes it (deterministic serialization)."""
    directory = messages["Directory"]()
    for name in sorted(os.listdir(root), key=os.fsencode):
        path = root / name
        if path.is_symlink():
            directory.symlinks.add(name=name, target=os.readlink(path))
        elif path.is_dir():
            sub = _reference(path, messages)
            directory.directories.add(name=name).digest.CopyFrom(
                messages["Digest"](hash=sub.hash, size_bytes=sub.size_bytes))
        else:
            data = path.read_bytes()
            node = directory.files.add(name=name, is_executable=os.access(path, os.X_OK))
            node.digest.CopyFrom(messages["Digest"](hash=hashlib.sha256(data).hexdigest(),
                                                    size_bytes=len(data)))
    # files, directories and symlinks are each added in name order, as the API requires
    data = directory.SerializeToString(deterministic=True)
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(root / "bin" / "tool", 0o755)
    (root / "empty").write_bytes(b"")  # size 0: the size field is left out
    (root / "etc").mkdir()
    (root / "etc" / "big").write_bytes(b"x" * 300)  # a size needing a two-byte varint
    (root / "etc" / "B-upper").write_text("sorted before lower case\n")
    (root / "usr" / "lib").mkdir(parents=True)  # an empty directory
    os.symlink("bin/tool", root / "link")
    os.symlink("/nowhere", root / "etc" / "dangling")
    return root


def test_directory_digest_matches_protobuf(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    assert directory_digest(root) == _reference(root, _messages())


def test_empty_directory_is_the_empty_message(tmp_path: Path) -> None:
    # the REAPI's well-known digest of an empty Directory: sha256 of no bytes, size 0
    (tmp_path / "e").mkdir()
    assert directory_digest(tmp_path / "e") == Digest(hashlib.sha256(b"").hexdigest(), 0)


def test_digest_follows_content_mode_and_names(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    before = directory_digest(root)
    os.chmod(root / "etc" / "big", 0o755)  # executable now
    after_mode = directory_digest(root)
    (root / "etc" / "big").write_bytes(b"y" * 300)
    after_content = directory_digest(root)
    assert len({before, after_mode, after_content}) == 3


def test_fifo_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    os.mkfifo(root / "etc" / "pipe")
    with pytest.raises(RootseedError):
        directory_digest(root)
