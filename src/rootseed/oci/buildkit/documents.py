"""The JSON documents of a BuildKit OCI export, byte for byte (BuildKit v0.26.3).

* image config: compact, top-level keys sorted (``exporter/containerimage/writer.go``
  ``patchImageConfig`` re-marshals a ``map[string]json.RawMessage``), ``config`` and
  ``history`` entries in Go struct order (``dockerspec.DockerOCIImage``);
* manifest and inner image index: ``json.MarshalIndent`` with two spaces, no newline;
* outer ``index.json``: compact (``exporter/oci/export.go``);
* Go's ``encoding/json`` escapes ``<``, ``>``, ``&``, U+2028 and U+2029 and writes other
  non-ASCII text as UTF-8; :func:`go_json` does the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rootseed.plan import Platform

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REWRITTEN = "buildkit/rewritten-timestamp"
COMMENT = "buildkit.dockerfile.v0"
DEFAULT_WORKDIR = "/"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def go_json(value: Any, *, indent: bool = False) -> bytes:
    """``value`` as Go's ``json.Marshal`` (or ``MarshalIndent(v, "", "  ")``) writes it
    (dict order is kept: callers give Go's order)."""
    text = json.dumps(value, ensure_ascii=False, indent=2 if indent else None,
                      separators=(",", ": ") if indent else (",", ":"))
    return _GO_ESCAPES.sub(_go_escape, text).encode("utf-8", "surrogateescape")


#: An escape pair Python wrote (kept, but for \b and \f) or a character Go escapes.
_GO_ESCAPES = re.compile(r"\\(.)|[<>&\u2028\u2029]", re.DOTALL)


def _go_escape(match: re.Match[str]) -> str:
    pair = match.group(1)
    if pair is None:
        return f"\\u{ord(match.group(0)):04x}"
    return {"b": "\\u0008", "f": "\\u000c"}.get(pair, match.group(0))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                                "size": self.size}
        if self.annotations:
            data["annotations"] = dict(sorted(self.annotations.items()))
        return data


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    empty_layer: bool
    created: str | None = None
    comment: str = COMMENT

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.created is not None:
            data["created"] = self.created
        if self.created_by:
            data["created_by"] = self.created_by
        if self.comment:
            data["comment"] = self.comment
        if self.empty_layer:
            data["empty_layer"] = True
        return data


@dataclass(frozen=True)
class RunConfig:
    """The ``config`` object of an image (Go struct order when written)."""

    env: tuple[str, ...]
    working_dir: str = DEFAULT_WORKDIR
    user: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    args_escaped: bool = False
    shell: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.user:
            data["User"] = self.user
        if self.env:
            data["Env"] = list(self.env)
        if self.entrypoint:
            data["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            data["Cmd"] = list(self.cmd)
        if self.working_dir:
            data["WorkingDir"] = self.working_dir
        if self.labels:
            data["Labels"] = dict(sorted(self.labels.items()))
        if self.args_escaped:
            data["ArgsEscaped"] = True
        if self.shell:
            data["Shell"] = list(self.shell)
        return data


def platform_json(platform: Platform) -> dict[str, Any]:
    data: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        data["variant"] = platform.variant
    return data


def config_json(platform: Platform, config: RunConfig, history: Sequence[HistoryEntry],
                diff_ids: Sequence[str], created: str) -> bytes:
    doc: dict[str, Any] = {
        "architecture": platform.architecture,
        "config": config.to_json(),
        "created": created,
        "history": [h.to_json() for h in history] if history else None,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids) if diff_ids else None},
    }
    if platform.variant:
        doc["variant"] = platform.variant
    return go_json(doc)


def manifest_json(config: Descriptor, layers: Sequence[Descriptor],
                  annotations: Mapping[str, str]) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST,
                           "config": config.to_json(),
                           "layers": [x.to_json() for x in layers]}
    if annotations:
        doc["annotations"] = dict(sorted(annotations.items()))
    return go_json(doc, indent=True)


def image_index_json(manifest: Descriptor, platform: Platform) -> bytes:
    entry = {**manifest.to_json(), "platform": platform_json(platform)}
    return go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]},
                   indent=True)


def outer_index_json(index: Descriptor, image_name: str, created: str) -> bytes:
    """``index.json`` naming the image index ``index`` as ``image_name`` (a full
    reference, e.g. ``docker.io/stagex/bootstrap-stage0:latest``)."""
    tag = image_name.rpartition(":")[2] if ":" in image_name.rpartition("/")[2] else "latest"
    annotations = {"io.containerd.image.name": image_name,
                   "org.opencontainers.image.created": created,
                   "org.opencontainers.image.ref.name": tag}
    entry = Descriptor(INDEX, index.digest, index.size, annotations).to_json()
    return go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]})


def normalize_name(name: str) -> str:
    """A Docker reference in its full form, as containerd names images:
    ``test-x`` → ``docker.io/library/test-x:latest``, ``stagex/a:1`` →
    ``docker.io/stagex/a:1``."""
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if "@" not in name and ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return name
