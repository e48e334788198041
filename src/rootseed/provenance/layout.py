"""Recompute an image's manifest digest from its OCI image layout (never trust a name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rootseed.errors import RootseedError
from rootseed.fsutil import file_sha256


def is_layout(path: Path) -> bool:
    return (path / "index.json").is_file() and (path / "blobs" / "sha256").is_dir()


def _load_json(path: Path, who: str, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise RootseedError(f"{who}: {what} {path} does not exist",
                            hint="the image layout is incomplete; rebuild the package") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RootseedError(f"{who}: {what} {path} is not valid JSON: {e}",
                            hint="the image layout is damaged; rebuild the package") from None


def _digest_hex(digest: Any, who: str, where: str) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise RootseedError(f"{who}: {where} has no sha256 digest (found {digest!r})",
                            hint="rootseed writes sha256 digests only; rebuild the package")
    hexd = digest.removeprefix("sha256:")
    if len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
        raise RootseedError(f"{who}: {where} has a malformed digest {digest!r}",
                            hint="the image layout is damaged; rebuild the package")
    return hexd


def _check_blob(layout: Path, hexd: str, who: str, what: str) -> Path:
    blob = layout / "blobs" / "sha256" / hexd
    if not blob.is_file():
        raise RootseedError(f"{who}: {what} blob {blob} is missing",
                            hint="the image layout is incomplete; rebuild the package")
    actual = file_sha256(blob)
    if actual != hexd:
        raise RootseedError(
            f"{who}: {what} blob {blob} has sha256:{actual}, not the sha256:{hexd} it is "
            "named and referenced by: the blob was changed after the build",
            hint="do not trust this image; rebuild the package from source")
    return blob


def manifest_digest(layout: Path, *, who: str | None = None, deep: bool = True) -> str:
    """``sha256:<hex>`` of the image manifest in ``layout``, recomputed from the bytes.

    Checks that ``index.json`` points at exactly one manifest whose blob hashes to its name;
    with ``deep`` also that the config and every layer blob hash to what the manifest says
    (so the manifest digest really covers the image's content).
    """
    who = who or layout.name
    if not (layout / "index.json").is_file():
        raise RootseedError(f"{who}: {layout} is not an OCI image layout (no index.json)",
                            hint="build the package first: rootseed build " + who)
    index = _load_json(layout / "index.json", who, "index")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests or not isinstance(manifests[0], dict):
        raise RootseedError(f"{who}: {layout / 'index.json'} lists no manifest",
                            hint="the image layout is damaged; rebuild the package")
    hexd = _digest_hex(manifests[0].get("digest"), who, "index.json manifests[0]")
    blob = _check_blob(layout, hexd, who, "manifest")
    if deep:
        manifest = _load_json(blob, who, "manifest")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
            raise RootseedError(f"{who}: manifest {blob} has no config",
                                hint="the image layout is damaged; rebuild the package")
        config_hex = _digest_hex(manifest["config"].get("digest"), who, "manifest config")
        _check_blob(layout, config_hex, who, "config")
        layers = manifest.get("layers", [])
        for i, layer in enumerate(layers if isinstance(layers, list) else []):
            layer_hex = _digest_hex(layer.get("digest") if isinstance(layer, dict) else None,
                                    who, f"manifest layer {i}")
            _check_blob(layout, layer_hex, who, f"layer {i}")
    return f"sha256:{hexd}"
