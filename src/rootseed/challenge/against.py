"""``rootseed challenge PKG --against IMAGE``: a local build against someone else's image.

IMAGE is an OCI layout directory or an ``oci-archive`` tar (e.g. ``skopeo copy
docker://… oci-archive:x.tar``, or BuildKit's ``type=oci,tar=true``). Both images are read
through the verifying reader (every blob re-hashed). The comparison goes from coarse to
fine and names the first difference: the manifest digest (equal: identical, nothing else
to say), then the config (which fields), then layer by layer (count, compressed digest,
uncompressed ``diff_id``) and, in the first layer whose content differs, entry by entry
in tar order (path, type, mode, owner, mtime, size, content, link target).

The archive is hostile input: only ``index.json``, ``oci-layout`` and ``blobs/sha256/<hex>``
regular files are taken from it (anything else is ignored, never extracted), each size
bounded by the archive itself.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.verified import LayoutError, VerifiedImage, open_image

IDENTICAL, COULD_NOT_DECIDE, DIFFERS = 0, 1, 2
_BLOB = re.compile(r"blobs/sha256/[0-9a-f]{64}")


class AgainstError(RootseedError):
    """The other image cannot be read (``file``: the layout or archive given)."""

    kind = ErrorKind.LAYOUT


@dataclass(frozen=True)
class TarEntry:
    """What a layer tar says about one path."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    sha256: str | None
    link: str

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "type": self.kind, "mode": oct(self.mode), "uid": self.uid,
                "gid": self.gid, "mtime": self.mtime, "size": self.size,
                "sha256": self.sha256, "link": self.link}


@dataclass
class Comparison:
    ours: str
    theirs: str
    ours_digest: str
    theirs_digest: str
    verdict: str = "identical"
    #: the first difference: where (manifest, config, layer N, a path) and what
    first: dict[str, Any] | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return IDENTICAL if self.verdict == "identical" else DIFFERS

    def as_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict, "ours": self.ours, "theirs": self.theirs,
                "ours_digest": self.ours_digest, "theirs_digest": self.theirs_digest,
                "first_difference": self.first, "differences": self.differences}

    def add(self, difference: dict[str, Any]) -> None:
        self.verdict = "differs"
        if self.first is None:
            self.first = difference
        self.differences.append(difference)


@contextmanager
def opened(path: Path) -> Iterator[VerifiedImage]:
    """The image of a layout directory or an oci-archive tar, verified."""
    if path.is_dir():
        try:
            yield open_image(path)
        except LayoutError as e:
            raise AgainstError(f"{path}: {e.message}", hint=e.hint, file=str(path)) from e
        return
    tmp = Path(tempfile.mkdtemp(prefix="rootseed-against-"))
    try:
        _extract(path, tmp)
        try:
            yield open_image(tmp)
        except LayoutError as e:
            raise AgainstError(f"{path}: {e.message}", hint=e.hint, file=str(path)) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(archive: Path, dest: Path) -> None:
    (dest / "blobs" / "sha256").mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isreg() or not (name in ("index.json", "oci-layout")
                                              or _BLOB.fullmatch(name)):
                    continue
                source = tar.extractfile(member)
                assert source is not None
                with source, open(dest / name, "xb") as f:
                    shutil.copyfileobj(source, f, 1 << 20)
    except (OSError, tarfile.TarError) as e:
        raise AgainstError(f"{archive}: not an OCI layout directory nor a readable "
                           f"oci-archive tar ({e})",
                           hint="pass an OCI image layout or an oci-archive tar "
                                "(skopeo copy ... oci-archive:FILE)", file=str(archive)) from None


def _entries(blob: Path) -> Iterator[TarEntry]:
    kinds = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink",
             tarfile.LNKTYPE: "hardlink", tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "char",
             tarfile.BLKTYPE: "block"}
    fd = os.open(blob, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as raw, contextlib.ExitStack() as stack:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: IO[bytes] | gzip.GzipFile = raw
        if compressed:
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as tar:
            for m in tar:
                digest = None
                if m.isreg():
                    f = tar.extractfile(m)
                    assert f is not None
                    h = hashlib.sha256()
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                    digest = h.hexdigest()
                yield TarEntry(m.name, kinds.get(m.type, "other"), m.mode, m.uid, m.gid,
                               int(m.mtime), m.size if m.isreg() else 0, digest, m.linkname)


def _config_fields(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for key in sorted({*ours, *theirs}):
        if key == "config":
            a, b = ours.get(key) or {}, theirs.get(key) or {}
            found += [f"config.{k}" for k in sorted({*a, *b}) if a.get(k) != b.get(k)]
        elif key == "history":
            a, b = ours.get(key) or [], theirs.get(key) or []
            found += [f"history[{i}]" for i in range(max(len(a), len(b)))
                      if (a[i] if i < len(a) else None) != (b[i] if i < len(b) else None)]
        elif ours.get(key) != theirs.get(key):
            found.append(key)
    return found


def _compare_layer(result: Comparison, index: int, ours: Path, theirs: Path) -> None:
    a, b = list(_entries(ours)), list(_entries(theirs))
    names_b = {e.path: e for e in b}
    for position in range(max(len(a), len(b))):
        x = a[position] if position < len(a) else None
        y = b[position] if position < len(b) else None
        if x == y:
            continue
        if x is not None and (y is None or x.path != y.path):
            other = names_b.get(x.path)
            what = "only in ours" if other is None else "entry order"
            if other is not None and other != x:
                what = _what(x, other)
            result.add({"where": f"layer {index}", "layer": index, "path": x.path,
                        "what": what, "ours": x.as_dict(),
                        "theirs": None if other is None else other.as_dict()})
            return
        if y is not None and x is None:
            result.add({"where": f"layer {index}", "layer": index, "path": y.path,
                        "what": "only in theirs", "ours": None, "theirs": y.as_dict()})
            return
        assert x is not None and y is not None
        result.add({"where": f"layer {index}", "layer": index, "path": x.path,
                    "what": _what(x, y), "ours": x.as_dict(), "theirs": y.as_dict()})
        return
    result.add({"where": f"layer {index}", "layer": index, "path": None,
                "what": "same entries, different tar bytes (header encoding or padding)"})


def _what(x: TarEntry, y: TarEntry) -> str:
    for attr, label in (("kind", "type"), ("sha256", "content"), ("size", "size"),
                        ("link", "link target"), ("mode", "mode"), ("uid", "owner"),
                        ("gid", "group"), ("mtime", "mtime")):
        if getattr(x, attr) != getattr(y, attr):
            return label
    return "entry order"


def compare_images(ours: VerifiedImage, theirs: VerifiedImage, ours_name: str,
                   theirs_name: str) -> Comparison:
    result = Comparison(ours_name, theirs_name, ours.manifest_digest, theirs.manifest_digest)
    if ours.manifest_digest == theirs.manifest_digest:
        return result
    fields = _config_fields(ours.config_json, theirs.config_json)
    config_differs = ours.config_blob.digest != theirs.config_blob.digest
    # a layer that differs changes rootfs.diff_ids too: that is said after the layers
    if config_differs and fields != ["rootfs"]:
        result.add({"where": "config", "what": "fields differ" if fields else
                    "same fields, different JSON bytes", "fields": fields,
                    "ours": ours.config_blob.digest, "theirs": theirs.config_blob.digest})
    if len(ours.layers) != len(theirs.layers):
        result.add({"where": "manifest", "what": f"{len(ours.layers)} layers here, "
                    f"{len(theirs.layers)} there"})
    ids_a, ids_b = ours.diff_ids, theirs.diff_ids
    for i, (x, y) in enumerate(zip(ours.layers, theirs.layers, strict=False)):
        if x.digest == y.digest:
            continue
        if i < len(ids_a) and i < len(ids_b) and ids_a[i] == ids_b[i]:
            result.add({"where": f"layer {i}", "layer": i, "path": None,
                        "what": "same content (diff_id), different compression",
                        "ours": x.digest, "theirs": y.digest})
            continue
        _compare_layer(result, i, x.path, y.path)
    if config_differs and fields == ["rootfs"]:
        result.add({"where": "config", "what": "fields differ", "fields": fields,
                    "ours": ours.config_blob.digest, "theirs": theirs.config_blob.digest})
    if result.verdict == "identical":  # the manifests differ in something else
        result.add({"where": "manifest", "what": "same config and layers, different "
                    "manifest (annotations or media types)"})
    return result


def compare_against(ours: Path, theirs: Path) -> Comparison:
    """Compare the local layout ``ours`` with ``theirs`` (a layout or an oci-archive)."""
    with opened(ours) as a, opened(theirs) as b:
        return compare_images(a, b, str(ours), str(theirs))


__all__ = ["COULD_NOT_DECIDE", "AgainstError", "Comparison", "compare_against"]
