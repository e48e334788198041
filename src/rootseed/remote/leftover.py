"""What a remote step leaves behind that REAPI cannot carry, reported as a typed failure.

A local RUN step that leaves a FIFO, socket or device node fails when its layer is made
(:func:`rootseed.oci.entries.check_entry`). REAPI's output tree has no node for such a
file, so a worker drops it silently and the same step would *succeed* remotely with
another image. rootseed's worker therefore looks at the step's root after the command
ran (the ``bwrap`` shim of :mod:`rootseed.remote.bot` lists every special file there) and
fails the lease with FAILED_PRECONDITION and a ``google.rpc.ErrorInfo`` detail
(:data:`DOMAIN`, :data:`REASON`, the path and its file type); the client turns that detail
(never the message) back into the local error, :class:`~rootseed.oci.entries.
UnsupportedEntry`, with the local message.

Only a worker that runs rootseed's bot checks this: another service's worker drops the
file and reports success (see docs/trust-model.md, "Remote workers").
"""

from __future__ import annotations

import stat

from rootseed.remote import RemoteError
from rootseed.remote.protos import code_pb2, error_details_pb2, status_pb2

#: The ErrorInfo domain and reason of "the step left a special file" (a stable code).
DOMAIN = "rootseed.remote"
REASON = "SPECIAL_FILE_LEFT"
#: File types by the letter ``find -printf %y`` prints, and their names in the ErrorInfo.
TYPES = {"p": ("fifo", stat.S_IFIFO), "s": ("socket", stat.S_IFSOCK),
         "b": ("block-device", stat.S_IFBLK), "c": ("char-device", stat.S_IFCHR)}
_MODES = dict(TYPES.values())
#: Top-level directories the worker mounts over (as local steps' sandbox does): skipped.
MOUNTED = ("tmp", "dev", "proc")
_HOSTILE = "the remote service or a worker is broken or hostile"


class BadLeftoverDetail(RemoteError):
    """The service's special-file detail names no path inside the step's root (or no
    known file type): a broken or hostile worker; the step is refused."""

    def __init__(self, message: str, *, hint: str | None = None, path: str) -> None:
        super().__init__(message, hint=hint)
        self.path = path


def first_special(listing: bytes) -> tuple[str, str] | None:
    """The first special file (in path order) of the shim's listing (``%y %P\\0`` per
    file), as (path below the root, type name), or None when there is none."""
    found: list[tuple[bytes, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        letter, _, path = entry.partition(b" ")
        known = TYPES.get(letter.decode("ascii", "replace"))
        if known is None or not path or path.split(b"/")[0] in (m.encode() for m in MOUNTED):
            raise ValueError(f"unexpected entry in the special-file listing: {entry!r}")
        found.append((path, known[0]))
    if not found:
        return None
    path, kind = min(found)
    return path.decode("utf-8", "backslashreplace"), kind


def status_for(path: str, kind: str, worker: str) -> status_pb2.Status:
    """The lease status that says "the step left ``path``, a ``kind``"."""
    status = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION,
        message=f"worker {worker}: the step left /{path}, a {kind}, which a remote result "
                "cannot carry")
    status.details.add().Pack(error_details_pb2.ErrorInfo(
        reason=REASON, domain=DOMAIN, metadata={"path": path, "type": kind}))
    return status


def special_left(status: status_pb2.Status) -> tuple[str, int] | None:
    """(path, st_mode file type) when ``status`` says a step left a special file (its
    ErrorInfo, checked), else None."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if not detail.Is(info.DESCRIPTOR) or not detail.Unpack(info):
            continue
        if info.domain != DOMAIN or info.reason != REASON:
            continue
        path, kind = info.metadata.get("path", ""), info.metadata.get("type", "")
        parts = path.split("/")
        if kind not in _MODES or not path or any(p in ("", ".", "..") for p in parts) \
                or "\0" in path:
            raise BadLeftoverDetail(f"the remote service reports a special file left "
                                    f"behind, but names it {path!r} ({kind!r})",
                                    hint=_HOSTILE, path=path)
        return path, _MODES[kind]
    return None
