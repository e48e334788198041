"""OCI image layouts: write one atomically and deterministically, read one back.

An image is written as ``oci-layout``, ``index.json`` and ``blobs/sha256/*`` with **one
squashed layer**: a package image is the result of one build, nothing reuses its lower
layers, and one layer keeps unpacking and digests simple (readers handle several layers).
The layout is built in a temporary directory beside ``layout_dir`` and moved into place
with ``os.replace``; all JSON is :func:`rootseed.console.canonical_json`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed.console import canonical_json
from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci import config as config_mod
from rootseed.oci import layer as layer_mod
from rootseed.oci import verified
from rootseed.oci.config import ImageConfig
from rootseed.oci.digest import hex_of, sha256_bytes

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_REF = "latest"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
# The ref.name grammar of the OCI image-layout spec.
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


@dataclass(frozen=True)
class Image:
    """An image read from a layout (every blob verified: see :mod:`rootseed.oci.verified`)."""

    manifest_digest: str
    manifest: dict[str, Any]
    config: ImageConfig
    layer_blob_paths: tuple[Path, ...]
    config_json: dict[str, Any] = field(default_factory=dict, hash=False)
    ref_name: str | None = None


def _descriptor(media_type: str, data_digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": data_digest, "size": size}


def _put_json(blobs: Path, doc: Mapping[str, Any]) -> tuple[str, int]:
    data = canonical_json(doc).encode("utf-8")
    d = sha256_bytes(data)
    (blobs / hex_of(d)).write_bytes(data)
    return d, len(data)


def _write_layout(tmp: Path, rootfs: Path, config: ImageConfig,
                  annotations: Mapping[str, str], epoch: int) -> str:
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    partial = blobs / ".layer.partial"
    with open(partial, "wb") as f:
        layer = layer_mod.write_layer(rootfs, f, epoch=epoch)
    os.replace(partial, blobs / hex_of(layer.digest))
    cfg_digest, cfg_size = _put_json(blobs, config.to_oci([layer.diff_id], epoch=epoch))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": _descriptor(config_mod.MEDIA_TYPE, cfg_digest, cfg_size),
        "layers": [_descriptor(layer_mod.MEDIA_TYPE, layer.digest, layer.size)],
    }
    manifest_annotations = {k: v for k, v in annotations.items() if k != REF_NAME}
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    man_digest, man_size = _put_json(blobs, manifest)
    ref = annotations.get(REF_NAME, DEFAULT_REF)
    if not _REF_RE.match(ref):
        raise RootseedError(f"invalid image reference name {ref!r} ({REF_NAME})",
                            hint="use letters, digits and . _ - : @ + / (e.g. a version)",
                            kind=ErrorKind.USAGE)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            **_descriptor(MANIFEST_MEDIA_TYPE, man_digest, man_size),
            "annotations": {REF_NAME: ref},
            "platform": {"architecture": config.architecture, "os": config.os},
        }],
    }
    (tmp / "index.json").write_text(canonical_json(index), encoding="utf-8")
    (tmp / "oci-layout").write_text(canonical_json(LAYOUT_VERSION), encoding="utf-8")
    return man_digest


def replace_layout(layout_dir: Path, write: Callable[[Path], str]) -> str:
    """``write(tmp)`` a whole layout into a fresh directory beside ``layout_dir``, then put
    it in ``layout_dir``'s place atomically (an existing one is replaced as a whole); a
    failure leaves ``layout_dir`` untouched and no temporary files behind. Returns what
    ``write`` returned (the manifest digest)."""
    layout_dir = Path(layout_dir)
    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{layout_dir.name}.", suffix=".partial",
                                dir=layout_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        digest = write(tmp)
        if layout_dir.exists() or layout_dir.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{layout_dir.name}.", suffix=".old",
                                        dir=layout_dir.parent))
            os.replace(layout_dir, old / "image")
            os.replace(tmp, layout_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, layout_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


def write_image(layout_dir: Path, rootfs: Path, config: ImageConfig,
                annotations: Mapping[str, str], epoch: int = 1) -> str:
    """Write ``rootfs`` as a one-layer OCI image layout at ``layout_dir``.

    Returns ``sha256:<hex>`` of the manifest. An existing ``layout_dir`` is replaced as a
    whole; a failure leaves it untouched and no temporary files behind.
    """
    return replace_layout(layout_dir, lambda tmp: _write_layout(
        tmp, Path(rootfs), config, annotations, epoch))


def manifest_digest(layout_dir: Path) -> str:
    """``sha256:<hex>`` of the layout's manifest, after verifying every blob of the image
    (see :func:`rootseed.oci.verified.open_image`)."""
    return verified.open_image(Path(layout_dir)).manifest_digest


def read_image(layout_dir: Path) -> Image:
    """Read the first image of a layout; every blob is re-hashed and size-checked first."""
    image = verified.open_image(Path(layout_dir))
    return Image(manifest_digest=image.manifest_digest, manifest=image.manifest,
                 config=image.config, layer_blob_paths=tuple(b.path for b in image.layers),
                 config_json=image.config_json, ref_name=image.ref_name)
