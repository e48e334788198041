"""What an image's file system may hold, decided in one place.

Layers, cached snapshots and images hold regular files, directories, symlinks and
hardlinks; nothing else. Two kinds of entry a build step can make are refused, with the
path in the message, wherever a step's output becomes a layer, a cache entry or an
image (:func:`rootseed.engine.layers.layer_digest`, :func:`rootseed.oci.layer.write_tar`)
and wherever an image is unpacked (:mod:`rootseed.oci.unpack`):

* a name starting with ``.wh.``: OCI layers reserve it for whiteouts, so a file called
  ``.wh.x`` would make every consumer delete ``x`` (and ``.wh..wh..opq`` empty its
  directory, ``.wh..`` name the directory above). Such a file cannot round-trip
  through an OCI layer, so it is refused rather than silently dropped;
* a FIFO, socket or device node: reading one blocks or reaches the host's devices, and
  the sandbox gives each step its own ``/dev``, so images never need them.
"""

from __future__ import annotations

from typing import Any

from rootseed.errors import ErrorKind, RootseedError
from rootseed.fsutil import special_kind

WHITEOUT_PREFIX = ".wh."


class UnsupportedEntry(RootseedError):
    """A file system entry that no layer or image rootseed makes may hold."""

    kind = ErrorKind.REFUSED

    def __init__(self, path: str, what: str, hint: str) -> None:
        self.path = path
        super().__init__(f"/{path.lstrip('/')} {what}", hint=hint)

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "path": f"/{self.path.lstrip('/')}"}


#: The name of a special file's kind, or None for what an image may hold.
kind_of = special_kind


def check_entry(rel: str, mode: int) -> None:
    """Refuse ``rel`` (a path inside an image's root) when no image may hold it."""
    name = rel.rpartition("/")[2]
    if name.startswith(WHITEOUT_PREFIX):
        raise UnsupportedEntry(
            rel, f"is named like an OCI whiteout ({WHITEOUT_PREFIX}…): in a layer it would "
                 "delete another file instead of being one",
            hint="rename or remove it in the build step that made it (rootseed refuses "
                 "such names rather than dropping them)")
    kind = kind_of(mode)
    if kind is not None:
        raise UnsupportedEntry(
            rel, f"is {kind}: images hold only regular files, directories and symlinks",
            hint="remove it before the build step that made it ends (each step gets its "
                 "own /dev, /tmp and /run)")
