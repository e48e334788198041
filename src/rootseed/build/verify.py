"""Re-hash an OCI image layout before it is reused or trusted as "already there".

The cache and ``out/`` are untrusted (issue #12): a blob can be edited after it was
written. :func:`layout_problem` follows index → manifest → config + layers and checks
every blob's sha256 and size; it answers what is wrong, or None.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rootseed.build import seal


def _blob(layout: Path, desc: Any) -> tuple[bytes | None, str | None]:
    """(content if small, problem) of the blob a descriptor names, checked."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        return None, "a descriptor without a digest"
    algo, _, hexd = desc["digest"].partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        return None, f"unsupported digest {desc['digest']!r}"
    path = layout / "blobs" / "sha256" / hexd
    h = hashlib.sha256()
    size = 0
    keep = bytearray()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                if size <= 4 << 20:
                    keep += chunk
    except OSError as e:
        return None, f"blob {desc['digest']} unreadable ({e.strerror})"
    if h.hexdigest() != hexd:
        return None, f"blob {desc['digest']} does not match its digest"
    if desc.get("size") != size:
        return None, (f"blob {desc['digest']} has {size} bytes, the descriptor says "
                      f"{desc.get('size')}")
    return (bytes(keep) if size <= 4 << 20 else None), None


def layout_problem(layout: Path, seals: Path | None = None) -> str | None:
    """What is wrong with ``layout`` (None: every blob matches). A layout found whole
    before is vouched for by its seal (see :mod:`rootseed.build.seal`) until any of its
    files changes."""
    key = seal.load_key()
    token = _token(layout)
    if token is None:
        return "index.json unreadable"
    # the seal covers blobs/ (fingerprint) and index.json (its digest is the token);
    # provenance.json beside them is rewritten by every build and checked by trace
    if seals is not None and seal.sealed(layout / "blobs", token, key, seals):
        return None
    problem = _check(layout)
    if problem is None and seals is not None:
        seal.seal(layout / "blobs", token, key, seals)
    return problem


def _token(layout: Path) -> str | None:
    try:
        return "sha256:" + hashlib.sha256((layout / "index.json").read_bytes()).hexdigest()
    except OSError:
        return None


def seal_layout(layout: Path, seals: Path) -> None:
    """Seal a layout rootseed has just written (its blobs are what it wrote)."""
    token = _token(layout)
    if token is not None:
        seal.seal(layout / "blobs", token, seal.load_key(), seals)


def _check(layout: Path) -> str | None:
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"index.json unreadable ({e})"
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        return "index.json lists no manifest"
    for desc in manifests:
        data, problem = _blob(layout, desc)
        if problem is not None:
            return problem
        try:
            manifest = json.loads(data or b"")
        except ValueError:
            return f"manifest {desc['digest']} is not JSON"
        if not isinstance(manifest, dict):
            return f"manifest {desc['digest']} is not an object"
        for child in [manifest.get("config"), *(manifest.get("layers") or [])]:
            _, problem = _blob(layout, child)
            if problem is not None:
                return problem
    return None
