"""Recompute an image's manifest digest from its OCI image layout (never trust a name)."""

from __future__ import annotations

from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.oci.verified import open_image


def is_layout(path: Path) -> bool:
    return (path / "index.json").is_file() and (path / "blobs" / "sha256").is_dir()


def manifest_digest(layout: Path, *, who: str | None = None) -> str:
    """``sha256:<hex>`` of the image manifest in ``layout``, recomputed from the bytes.

    Uses the one verifying reader (:func:`rootseed.oci.verified.open_image`): ``index.json``
    → manifest → config → every layer, each blob re-hashed and size-checked.
    """
    who = who or layout.name
    if not (layout / "index.json").is_file():
        raise RootseedError(f"{who}: {layout} is not an OCI image layout (no index.json)",
                            hint="build the package first: rootseed build " + who)
    return open_image(layout).manifest_digest
