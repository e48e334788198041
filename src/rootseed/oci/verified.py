"""The one OCI image-layout reader: nothing in a layout is used before it is verified.

``open_image(layout)`` walks ``index.json`` → manifest → config → layers and re-hashes
**every** blob (and checks its size against the descriptor that names it) before returning.
Everything in rootseed that reads a layout (the builder's cache and "same output" check,
unpack, ``sign``, ``verify``, ``challenge``, ``trace``) goes through it, so a flipped,
swapped, truncated or replaced blob is refused with a :class:`BlobError` naming the blob,
whatever command meets it first.

Written here rather than taken from a library because it *is* the trust boundary: blobs are
opened without following symlinks and must be regular files (a FIFO named like a blob must
not hang a reader, a symlink must not make it read a host file), JSON documents are size
capped, and the errors are typed so callers never look at message text.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import safefs
from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.config import ImageConfig

ALGORITHM = "sha256"
INDEX = "index.json"
#: The OCI distribution spec's recommended limit for manifests; also used for configs and
#: index.json, which rootseed writes far smaller.
MAX_JSON = 4 << 20
_CHUNK = 1 << 20
MANIFEST_MEDIA_TYPES = frozenset({"application/vnd.oci.image.manifest.v1+json"})
#: ``index.json`` may name an image index (BuildKit's OCI export does) instead of the
#: manifest: its first manifest is the image (one level; an index of indexes is refused).
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPES = frozenset({"application/vnd.oci.image.config.v1+json"})
LAYER_MEDIA_TYPES = frozenset({"application/vnd.oci.image.layer.v1.tar",
                               "application/vnd.oci.image.layer.v1.tar+gzip"})
REF_NAME = "org.opencontainers.image.ref.name"
_HINT = "do not trust this image; rebuild the package from source (or re-fetch the image)"


class BlobProblem(enum.Enum):
    MISSING = "missing"
    NOT_A_FILE = "not a regular file"
    SIZE = "wrong size"
    DIGEST = "digest mismatch"
    MALFORMED = "malformed"


_PHRASE = {
    BlobProblem.MISSING: "is missing",
    BlobProblem.NOT_A_FILE: "is not a regular file",
    BlobProblem.SIZE: "does not match its digest (it was changed after it was written)",
    BlobProblem.DIGEST: "does not match its digest (it was changed after it was written)",
    BlobProblem.MALFORMED: "is malformed",
}


class LayoutError(RootseedError):
    """The layout itself (``index.json``, a descriptor) is missing or malformed."""

    kind = ErrorKind.LAYOUT

    def __init__(self, layout: Path, what: str, *, hint: str | None = None):
        super().__init__(f"{layout}: {what}", hint=hint or _HINT)
        self.layout = layout
        self.what = what  # the message without the layout's path


class BlobError(LayoutError):
    """One blob failed verification: ``role`` (``manifest``, ``config``, ``layer 0``…),
    ``digest`` (what its descriptor says) and ``problem`` say which and why."""

    def __init__(self, layout: Path, role: str, digest: str, problem: BlobProblem,
                 detail: str):
        super().__init__(layout, f"{role} blob {digest} {_PHRASE[problem]}: {detail}")
        self.role = role
        self.digest = digest
        self.problem = problem

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "role": self.role, "digest": self.digest,
                "problem": self.problem.name}


@dataclass(frozen=True)
class VerifiedBlob:
    """A blob whose bytes hashed to ``digest`` and whose size matched its descriptor."""

    role: str
    digest: str  # "sha256:<hex>"
    size: int
    media_type: str
    path: Path


@dataclass(frozen=True)
class VerifiedImage:
    """An image read from a layout after every blob was re-hashed and size-checked."""

    layout: Path
    manifest_digest: str
    manifest: dict[str, Any]
    config_json: dict[str, Any]
    config: ImageConfig
    config_blob: VerifiedBlob
    layers: tuple[VerifiedBlob, ...]
    ref_name: str | None = None
    index_entry: dict[str, Any] = field(default_factory=dict, hash=False)
    #: the image index between index.json and the manifest (BuildKit's layout), if any
    image_index: VerifiedBlob | None = None

    @property
    def diff_ids(self) -> tuple[str, ...]:
        rootfs = self.config_json.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        return tuple(str(d) for d in ids) if isinstance(ids, list) else ()


def check_digest(text: object) -> str:
    """``text`` if it is ``sha256:<64 lowercase hex>``, else ValueError (a blob name must
    never be able to name anything but a file in ``blobs/sha256/``)."""
    if not isinstance(text, str):
        raise ValueError(f"not a digest: {text!r}")
    algo, _, hexpart = text.partition(":")
    if algo != ALGORITHM or len(hexpart) != 64 or any(c not in "0123456789abcdef"
                                                       for c in hexpart):
        raise ValueError(f"not a sha256 digest: {text!r}")
    return text


def _open_regular(layout: Path, path: Path) -> tuple[int, os.stat_result] | None:
    """An fd of ``path`` (below ``layout``) if it is a regular file reached without
    following any link (:mod:`rootseed.safefs`), None if it does not exist;
    OSError/:class:`safefs.UnsafePath` otherwise."""
    try:
        return safefs.open_regular(layout, path)
    except FileNotFoundError:
        return None


def _verify_blob(layout: Path, role: str, descriptor: object, *, keep: bool,
                 media_types: frozenset[str] | None) -> tuple[VerifiedBlob, bytes | None]:
    """Hash the blob a descriptor names; its bytes too when ``keep`` (JSON documents)."""
    if not isinstance(descriptor, dict):
        raise LayoutError(layout, f"the {role} descriptor is not an object")
    try:
        digest = check_digest(descriptor.get("digest"))
    except ValueError as e:
        raise LayoutError(layout, f"the {role} descriptor has {e}") from None
    size = descriptor.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BlobError(layout, role, digest, BlobProblem.MALFORMED,
                        f"its descriptor has no valid size ({size!r})")
    media_type = descriptor.get("mediaType", "")
    if media_types is not None and media_type not in media_types:
        raise BlobError(layout, role, digest, BlobProblem.MALFORMED,
                        f"unsupported media type {media_type!r}")
    if keep and size > MAX_JSON:
        raise BlobError(layout, role, digest, BlobProblem.SIZE,
                        f"{size} bytes is more than the {MAX_JSON} a JSON document may have")
    path = layout / "blobs" / ALGORITHM / digest.partition(":")[2]
    try:
        opened = _open_regular(layout, path)
    except safefs.UnsafePath as e:
        raise BlobError(layout, role, digest, BlobProblem.NOT_A_FILE, e.message) from None
    except OSError as e:
        raise BlobError(layout, role, digest, BlobProblem.MISSING,
                        f"cannot open {path}: {e.strerror}") from None
    if opened is None:
        raise BlobError(layout, role, digest, BlobProblem.MISSING, f"{path} does not exist")
    fd, st = opened
    if st.st_size != size:
        os.close(fd)
        raise BlobError(layout, role, digest, BlobProblem.SIZE,
                        f"{path} has {st.st_size} bytes, its descriptor says {size}")
    h = hashlib.sha256()
    kept = bytearray() if keep else None
    total = 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            total += len(chunk)
            if total > size:
                break  # grew while being read: the size check below refuses it
            h.update(chunk)
            if kept is not None:
                kept += chunk
    if total != size:
        raise BlobError(layout, role, digest, BlobProblem.SIZE,
                        f"{path} changed size while being read")
    actual = f"{ALGORITHM}:{h.hexdigest()}"
    if actual != digest:
        raise BlobError(layout, role, digest, BlobProblem.DIGEST,
                        f"{path} hashes to {actual}")
    blob = VerifiedBlob(role=role, digest=digest, size=size, media_type=str(media_type),
                        path=path)
    return blob, None if kept is None else bytes(kept)


def _json_doc(layout: Path, role: str, digest: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # Recursion: too deep
        raise BlobError(layout, role, digest, BlobProblem.MALFORMED,
                        f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BlobError(layout, role, digest, BlobProblem.MALFORMED, "not a JSON object")
    return doc


def _index_entry(layout: Path) -> dict[str, Any]:
    path = layout / INDEX
    try:
        opened = _open_regular(layout, path)
    except safefs.UnsafePath as e:
        raise LayoutError(layout, f"{INDEX} cannot be read ({e.problem.value})") from None
    except OSError as e:
        raise LayoutError(layout, f"{INDEX} cannot be read ({e})") from None
    if opened is None:
        raise LayoutError(layout, f"not an OCI image layout ({INDEX} is missing)",
                          hint="build the package first (rootseed build), or check the path")
    with os.fdopen(opened[0], "rb") as f:
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise LayoutError(layout, f"{INDEX} is larger than {MAX_JSON} bytes")
    try:
        index = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # Recursion: too deep
        raise LayoutError(layout, f"{INDEX} is not valid JSON: {e}") from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise LayoutError(layout, f"{INDEX} lists no manifest")
    entry = manifests[0]
    if not isinstance(entry, dict):
        raise LayoutError(layout, f"{INDEX}: manifests[0] is not a descriptor")
    return entry


def indexed_digest(layout: Path) -> str:
    """The manifest digest ``index.json`` names (through an image index, if it names
    one), unverified but for its form: cheap, for telling which image a layout claims to
    hold before verifying it (:func:`open_image`)."""
    layout = Path(layout)
    entry = _index_entry(layout)
    try:
        digest = check_digest(entry.get("digest"))
    except ValueError as e:
        raise LayoutError(layout, f"{INDEX}: manifests[0] has {e}") from None
    if entry.get("mediaType") != INDEX_MEDIA_TYPE:
        return digest
    try:
        opened = _open_regular(layout, layout / "blobs" / ALGORITHM / digest.partition(":")[2])
    except (safefs.UnsafePath, OSError):
        opened = None
    if opened is None:
        raise LayoutError(layout, f"the image index {digest} cannot be read")
    with os.fdopen(opened[0], "rb") as f:
        data = f.read(MAX_JSON + 1)
    try:
        inner = json.loads(data)
        return check_digest(inner["manifests"][0]["digest"])
    except (ValueError, UnicodeDecodeError, RecursionError, KeyError, IndexError,
            TypeError) as e:
        raise LayoutError(layout, f"the image index {digest} names no manifest ({e})"
                          ) from None


def _inner_entry(layout: Path, entry: dict[str, Any]
                 ) -> tuple[dict[str, Any], VerifiedBlob | None]:
    """The manifest descriptor: ``entry`` itself, or the first manifest of the image
    index it names (verified first)."""
    if entry.get("mediaType") != INDEX_MEDIA_TYPE:
        return entry, None
    blob, data = _verify_blob(layout, "image index", entry, keep=True, media_types=None)
    assert data is not None
    index = _json_doc(layout, "image index", blob.digest, data)
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests or not isinstance(manifests[0], dict):
        raise BlobError(layout, "image index", blob.digest, BlobProblem.MALFORMED,
                        "it lists no manifest")
    inner = manifests[0]
    if inner.get("mediaType") not in MANIFEST_MEDIA_TYPES:
        raise BlobError(layout, "image index", blob.digest, BlobProblem.MALFORMED,
                        f"its first entry is not an image manifest ({inner.get('mediaType')!r})")
    return inner, blob


def open_image(layout: Path) -> VerifiedImage:
    """Read and verify the first image of the OCI image layout ``layout``.

    Every blob (manifest, config, each layer) is checked for existence as a regular file,
    size and sha256 before anything of it is returned. Raises :class:`LayoutError` (or its
    subclass :class:`BlobError`, naming the blob) otherwise.
    """
    layout = Path(layout)
    outer = _index_entry(layout)
    entry, index_blob = _inner_entry(layout, outer)
    man_blob, man_bytes = _verify_blob(layout, "manifest", entry, keep=True,
                                       media_types=None)
    assert man_bytes is not None
    manifest = _json_doc(layout, "manifest", man_blob.digest, man_bytes)
    media_type = manifest.get("mediaType", entry.get("mediaType"))
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise BlobError(layout, "manifest", man_blob.digest, BlobProblem.MALFORMED,
                        f"not an OCI image manifest (media type {media_type!r})")
    cfg_blob, cfg_bytes = _verify_blob(layout, "config", manifest.get("config"), keep=True,
                                       media_types=CONFIG_MEDIA_TYPES)
    assert cfg_bytes is not None
    config_json = _json_doc(layout, "config", cfg_blob.digest, cfg_bytes)
    descriptors = manifest.get("layers")
    if not isinstance(descriptors, list):
        raise BlobError(layout, "manifest", man_blob.digest, BlobProblem.MALFORMED,
                        "its layers are not a list")
    layers = tuple(_verify_blob(layout, f"layer {i}", d, keep=False,
                                media_types=LAYER_MEDIA_TYPES)[0]
                   for i, d in enumerate(descriptors))
    try:
        config = ImageConfig.from_oci(config_json)
    except (AttributeError, TypeError, ValueError) as e:
        raise BlobError(layout, "config", cfg_blob.digest, BlobProblem.MALFORMED,
                        f"not an image configuration: {e}") from None
    image = VerifiedImage(layout=layout, manifest_digest=man_blob.digest, manifest=manifest,
                          config_json=config_json, config=config,
                          config_blob=cfg_blob, layers=layers,
                          ref_name=_ref_name(outer), index_entry=outer,
                          image_index=index_blob)
    if image.diff_ids and len(image.diff_ids) != len(layers):
        raise BlobError(layout, "config", cfg_blob.digest, BlobProblem.MALFORMED,
                        f"{len(image.diff_ids)} diff_ids for {len(layers)} layers")
    return image


def _ref_name(entry: dict[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    ref = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return ref if isinstance(ref, str) else None
