"""Images taken whole from a shared cache, and kept apart from the build cache.

With ``--remote``, a package whose target stage a builder has already built is taken
from the service as its finished image (BuildKit's ``--cache-from`` with the image's own
layers): one action-cache lookup and the image's blobs, instead of every step's
layer. The record there is a *claim* made by whoever wrote it (another builder using the
same service); this module is what the engine does with such a claim:

* the image's files are checked as a whole before anything uses them: exactly the
  files of one OCI layout (``oci-layout``, ``index.json`` and the blobs its manifest
  names, engine/publish.py ``layout_files``), each blob re-hashed by the verifying reader
  (``open_image``): whatever the service sent, the layout is what its manifest digest
  says;
* what is taken is kept in ``<cache>/shared/<id>/`` (``image/`` and ``shared.json``, a
  record only this user's rootseed can write: engine/records.py), never in a stage entry:
  a build without ``--remote`` never uses it, and a local cache hit is never a claim of
  someone else's. The record names where the image came from (the service, the worker
  name the record carries), and so does every event and result that uses it.

Nothing else about the claim can be checked without building: ``rootseed challenge`` (a
rebuild executed again) or a local build tells a true record from a false one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rootseed import safefs
from rootseed.console import canonical_json
from rootseed.engine.cache import BuildCache
from rootseed.engine.interface import ImageIdent, SharedImages
from rootseed.engine.maintenance import touch
from rootseed.engine.publish import layout_files, linked_dirs
from rootseed.engine.records import Kind
from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.layout import LAYOUT_VERSION
from rootseed.oci.verified import MAX_JSON, LayoutError, open_image

#: the local area of images taken from a shared cache
AREA = "shared"
RECORD = "shared.json"
#: the one ``oci-layout`` both exporters write (no digest covers it, nor ``index.json``)
MARKER = canonical_json(LAYOUT_VERSION).encode()
_HOSTILE = "the service, or the builder that recorded the image, is broken or hostile"
#: the most of a refused record's reason a warning repeats (a reason may quote megabytes
#: of the record: a digest, a layer member's name)
REASON_CHARS = 400


class SharedImageRefused(RootseedError):
    """What a shared cache sent is not one whole OCI image."""

    kind = ErrorKind.REMOTE


@dataclass(frozen=True)
class SharedImage:
    layout: Path  # the image's layout, verified, in the cache's shared area
    manifest_digest: str
    origin: dict[str, object]  # where it came from (for events and results)
    fetched: bool = True  # read from the shared cache now (False: kept from before)


def why_refused(e: Exception) -> str:
    """Why a record was refused (or could not be taken: a full disk; or stored), as a
    warning says it: one line of at most :data:`REASON_CHARS` printable characters (it
    may quote the record, or the service's own error text)."""
    text = e.message if isinstance(e, RootseedError) else str(e)
    shown = "".join(c if c.isprintable() else " " for c in text[:REASON_CHARS])
    return shown + ("..." if len(text) > REASON_CHARS else "")


def ident_name(ident: ImageIdent) -> str:
    """The entry's name: a digest of everything the image is recorded under."""
    return hashlib.sha256(canonical_json(ident.to_json()).encode()).hexdigest()


class SharedCache:
    """The images a build takes from a :class:`SharedImages` (see the module docstring)."""

    def __init__(self, cache: BuildCache) -> None:
        self.cache = cache
        self.area = cache.dir / AREA

    def take(self, images: SharedImages, ident: ImageIdent) -> SharedImage | None:
        """``ident``'s image as the shared cache records it now: kept from an earlier
        take of the same record, else fetched and checked now (None: the shared cache
        has no record of it; a kept image of a record since replaced or gone is never
        used: the service is asked each time)."""
        name = ident_name(ident)
        entry = self.area / name
        with self.cache.lock(f"shared-{name}"):
            current = images.record(ident)
            if current is None:
                return None
            found = self._kept(entry, ident, images.where)
            if found is not None and found.origin.get("record") == current:
                return found
            with self.cache.workdir() as work:
                tmp = work / "entry"
                layout = tmp / "image"
                layout.mkdir(parents=True)
                origin = images.fetch(ident, layout)
                if origin is None:
                    return None
                digest = self._check(layout, images.where)
                record = {"manifest": digest, "origin": origin, **ident.to_json()}
                self.cache.verifier.records.write(self.cache.dir, tmp / RECORD, Kind.SHARED,
                                                  name, record)
                safefs.ensure_dir(self.cache.dir, self.area)
                if os.path.lexists(entry):  # an unrecorded or damaged one: taken again
                    safefs.remove(self.cache.dir, entry)
                os.replace(tmp, entry)
            return SharedImage(entry / "image", digest, origin)

    def _kept(self, entry: Path, ident: ImageIdent, where: str) -> SharedImage | None:
        """The image an earlier take kept, if its record is this user's, its layout
        still matches it, and it was taken from the service asked now (``where``)."""
        if not safefs.is_dir(entry):
            return None
        read = self.cache.verifier.records.read(self.cache.dir, entry / RECORD, Kind.SHARED,
                                                ident_name(ident))
        record = read.record
        layout = entry / "image"
        if record is None or not safefs.is_dir(layout) or linked_dirs(layout) is not None:
            return None
        try:  # checked whole, as a take checks it (every blob re-hashed, oci-layout and
            # index.json read): a seal covers neither file, so none is kept
            digest = self._check(layout, str(layout))
        except (OSError, RootseedError):
            return None
        origin = record.get("origin")
        if digest != record.get("manifest") or not isinstance(origin, dict) \
                or origin.get("service") != where:  # another service's claim: not asked for
            return None
        touch(entry / RECORD)
        return SharedImage(layout, digest, origin, fetched=False)

    @staticmethod
    def _check(layout: Path, where: str) -> str:
        """``layout`` is one whole image, every blob matching its digest, and holds
        nothing else; its manifest digest."""
        try:
            digest = open_image(layout).manifest_digest
            wanted = set(layout_files(layout, digest))
            marker = safefs.read_bytes(layout, layout / "oci-layout", len(MARKER) + 1)
            index = json.loads(safefs.read_bytes(layout, layout / "index.json", MAX_JSON))
        except LayoutError as e:
            raise SharedImageRefused(f"{where}: the image recorded for this package is "
                                     f"not a whole OCI image: {e.what}",
                                     hint=_HOSTILE) from None
        except (OSError, ValueError, KeyError, TypeError, RootseedError) as e:
            raise SharedImageRefused(f"{where}: the image recorded for this package "
                                     f"cannot be read: {getattr(e, 'message', e)}",
                                     hint=_HOSTILE) from None
        present = {str(p.relative_to(layout)) for p in layout.rglob("*")
                   if not p.is_dir() or p.is_symlink()}
        if present != wanted:
            extra = sorted(present - wanted) or sorted(wanted - present)
            raise SharedImageRefused(f"{where}: the image recorded for this package "
                                     f"holds other files than its manifest names ({extra[0]})",
                                     hint=_HOSTILE)
        if marker != MARKER or len(index["manifests"]) != 1:  # out/ gets them as they are
            raise SharedImageRefused(f"{where}: the image recorded for this package has an "
                                     "oci-layout or index.json rootseed never writes (another "
                                     "marker, or more than its one manifest)", hint=_HOSTILE)
        return digest

