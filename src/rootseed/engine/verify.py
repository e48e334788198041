"""Re-hash an OCI image layout before it is reused or trusted as "already there".

The cache and ``out/`` are untrusted (issue #12): a blob can be edited after it was
written. :func:`layout_problem` asks the one verifying reader
(:func:`rootseed.oci.verified.open_image`: index → manifest → config + layers, every
blob's size and sha256) unless a seal vouches for the layout; it answers what is wrong,
or None.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rootseed import safefs
from rootseed.engine import seal
from rootseed.oci.verified import MAX_JSON, LayoutError, open_image


def layout_problem(layout: Path, seals: Path | None = None) -> str | None:
    """What is wrong with ``layout`` (None: every blob matches). A layout found whole
    before is vouched for by its seal (see :mod:`rootseed.engine.seal`) until any of its
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
    try:  # no link, FIFO or endless file followed: out/ and the cache are untrusted
        data = safefs.read_bytes(layout, layout / "index.json", MAX_JSON)
    except (OSError, safefs.UnsafePath):
        return None
    return "sha256:" + hashlib.sha256(data).hexdigest()


def seal_layout(layout: Path, seals: Path) -> None:
    """Seal a layout rootseed has just written (its blobs are what it wrote)."""
    token = _token(layout)
    if token is not None:
        seal.seal(layout / "blobs", token, seal.load_key(), seals)


def _check(layout: Path) -> str | None:
    """The verifying reader's verdict (every blob re-hashed; no link or FIFO opened)."""
    try:
        open_image(layout)
    except LayoutError as e:
        return e.what
    return None
