"""Whole images shared through a REAPI service's action cache (``--remote``).

A remote build's second builder is served every RUN step from the action cache, but it
still has to make every step's layer itself: a step's action key names its input root,
and the next step's input root is the layer just made. For a fully cached package that
is all of the work (stage0 from the seed: ~130 layers, 4-6 s, against 0.4 s for a warm
local build). So, as BuildKit exports and imports a build cache holding the image's own
layers, a builder that has built a package records its image in the service's action
cache, and the next builder takes it whole:

* **the record** is an ``ActionResult`` under the digest of an ``Action`` that no worker
  can run: its ``Command`` is ``rootseed-shared-image <format> <stage key> <layout>
  <package>`` (the target stage's cache key, a pure function of the plan and its inputs,
  engine/planner.py; which exporter wrote the layout; the package) and its platform asks
  for ``rootseed-record=image``. Its output files are the layout's files
  (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``), uploaded to the CAS first;
  ``execution_metadata.worker`` names the builder that recorded it.
* **taking it**: one ``GetActionResult``; the names are checked (only a layout's files,
  each blob named by its own digest, none twice); the blobs are read (in batches, at most
  :data:`~rootseed.remote.client.PREFETCH_BYTES` held at a time) and each is verified by
  its digest; the engine then checks the layout as a whole (engine/shared.py).

The record is a claim, as an action result is: ``UpdateActionResult`` is open to the
service's clients. It is attributed (the service and the recording builder go with the
image into every event and result) and kept apart from the builder's own cache. A service
that does not allow clients to update its action cache just never has a record: storing
one fails with a warning, and every build takes the per-step path.
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

from rootseed.engine.interface import ImageIdent
from rootseed.remote.client import (
    BATCH_LIMIT,
    BadOutput,
    OutputProblem,
    Prefetched,
    Remote,
)
from rootseed.remote.merkle import digest_of, file_digest
from rootseed.remote.protos import re_pb2

#: the record's format: part of its action, so a changed format never reads an old one
FORMAT = "1"
#: the platform property that no worker offers: the action is a record, never run
PLATFORM = ("rootseed-record", "image")
#: the most files a record may name (an image's layers, config, manifests)
MAX_FILES = 10_000
_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HOSTILE = "the remote service, or the builder that recorded the image, is broken or hostile"


def record_action(ident: ImageIdent) -> tuple[re_pb2.Action, re_pb2.Command]:
    """The action a shared image is recorded under (see the module docstring)."""
    cmd = re_pb2.Command(arguments=["rootseed-shared-image", FORMAT, ident.key, ident.layout,
                                    ident.package])
    cmd.platform.properties.add(name=PLATFORM[0], value=PLATFORM[1])
    action = re_pb2.Action(
        command_digest=digest_of(cmd.SerializeToString(deterministic=True)),
        input_root_digest=digest_of(re_pb2.Directory().SerializeToString(deterministic=True)))
    action.platform.CopyFrom(cmd.platform)
    return action, cmd


def fingerprint(files: list[tuple[str, re_pb2.Digest]]) -> str:
    """A record's files (names, digests, sizes) as one digest: the same image."""
    text = "".join(f"{rel}\0{d.hash}\0{d.size_bytes}\n" for rel, d in sorted(
        files, key=lambda f: f[0]))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _shown(text: str) -> str:
    """A name from the service, safe to print: printable ASCII, at most 80 characters."""
    kept = "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:80])
    return kept or "?"


class RemoteImages:
    """:class:`~rootseed.engine.interface.SharedImages` on a REAPI service."""

    def __init__(self, remote: Remote, endpoint: str, instance: str = "") -> None:
        self.remote = remote
        self.where = endpoint + (f" (instance {instance})" if instance else "")

    def _result(self, ident: ImageIdent) -> re_pb2.ActionResult | None:
        action, _ = record_action(ident)
        return self.remote.cached_result(
            digest_of(action.SerializeToString(deterministic=True)))

    def record(self, ident: ImageIdent) -> str | None:
        result = self._result(ident)
        return None if result is None else fingerprint(self._files(result))

    def fetch(self, ident: ImageIdent, dest: Path) -> dict[str, object] | None:
        result = self._result(ident)
        if result is None:
            return None
        files = self._files(result)
        (dest / "blobs" / "sha256").mkdir(parents=True)
        reader = Prefetched(self.remote, [d for _, d in files if d.size_bytes <= BATCH_LIMIT])
        for rel, d in files:
            reader.read_file(d, dest / rel, 0o644)  # verified again
        return {"executor": "remote", "remote_cached": True, "image": True,
                "service": self.where, "record": fingerprint(files),
                "worker": _shown(result.execution_metadata.worker)}

    @staticmethod
    def _files(result: re_pb2.ActionResult) -> list[tuple[str, re_pb2.Digest]]:
        """The record's files, each named as a layout names it (see the module
        docstring): anything else refuses the record."""
        if result.output_directories or result.output_symlinks \
                or result.output_file_symlinks or result.output_directory_symlinks:
            raise BadOutput("the remote image record holds more than files",
                            problem=OutputProblem.NOT_AN_IMAGE, hint=_HOSTILE)
        if len(result.output_files) > MAX_FILES:
            raise BadOutput(f"the remote image record names {len(result.output_files)} "
                            f"files (at most {MAX_FILES})",
                            problem=OutputProblem.NOT_AN_IMAGE, hint=_HOSTILE)
        seen: set[str] = set()
        files: list[tuple[str, re_pb2.Digest]] = []
        for f in result.output_files:
            blob = _BLOB.fullmatch(f.path)
            if (f.path not in ("oci-layout", "index.json") and blob is None) \
                    or (blob is not None and blob.group(1) != f.digest.hash) \
                    or f.digest.size_bytes < 0:
                raise BadOutput(f"the remote image record names a file {f.path[:100]!r} "
                                "that is no layout's",
                                problem=OutputProblem.NOT_AN_IMAGE, hint=_HOSTILE)
            if not _SHA256.fullmatch(f.digest.hash):  # it goes into messages, the CAS's too
                raise BadOutput(f"the remote image record names {f.path!r} by a digest that "
                                "is no SHA-256", problem=OutputProblem.NOT_AN_IMAGE,
                                hint=_HOSTILE)
            if f.path in seen:
                raise BadOutput(f"the remote image record names {f.path!r} twice",
                                problem=OutputProblem.DUPLICATE_NAME, hint=_HOSTILE)
            seen.add(f.path)
            files.append((f.path, f.digest))
        return files

    def store(self, ident: ImageIdent, layout: Path, files: list[str]) -> None:
        action, cmd = record_action(ident)
        action_bytes = action.SerializeToString(deterministic=True)
        cmd_bytes = cmd.SerializeToString(deterministic=True)
        result = re_pb2.ActionResult(exit_code=0)
        result.execution_metadata.worker = f"builder {socket.gethostname()}"
        blobs: dict[str, bytes | Path] = {
            digest_of(action_bytes).hash: action_bytes, digest_of(cmd_bytes).hash: cmd_bytes}
        for rel in files:
            path = layout / rel
            blob = _BLOB.fullmatch(rel)
            # a blob's name is its sha256 (the layout was verified when written)
            d = (re_pb2.Digest(hash=blob.group(1), size_bytes=path.stat().st_size)
                 if blob is not None else file_digest(path))
            result.output_files.add(path=rel, digest=d)
            blobs[d.hash] = path
        self.remote.upload(blobs)
        self.remote.update_result(digest_of(action_bytes), result)
