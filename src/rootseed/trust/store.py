"""Where signatures live on disk: the containers/image "lookaside" layout.

``<root>/<registry>/<stage>-<name>@sha256=<manifest hex>/signature-<N>``, N = 1, 2, …
Readers such as skopeo stop at the first missing N, so a new signature takes the
smallest free N. Files are written under a temporary name and then hard-linked into
place, which fails instead of overwriting if another writer took that N first.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.trust.payload import check_manifest_digest, check_name

_SIGNATURE_RE = re.compile(r"signature-([1-9][0-9]*)")


def signature_dir(root: Path, registry: str, name: str, digest: str) -> Path:
    """The directory holding every signature of image ``registry/name`` at ``digest``."""
    check_name(f"{registry}/{name}")
    algorithm, _, hexdigest = check_manifest_digest(digest).partition(":")
    return root.joinpath(*registry.split("/"), f"{name}@{algorithm}={hexdigest}")


def list_signatures(directory: Path) -> list[Path]:
    """``signature-<N>`` files in ``directory``, by N (empty if there is none)."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), p) for p in directory.iterdir()
             if (m := _SIGNATURE_RE.fullmatch(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def add_signature(directory: Path, data: bytes) -> Path:
    """Store ``data`` as the next free ``signature-<N>``; return its path."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".signature-", dir=directory)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            n = 1
            while True:
                target = directory / f"signature-{n}"
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    n += 1
                    continue
                return target
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise RootseedError(f"cannot store signature in {directory}: {e.strerror or e}",
                            hint="check that the signatures directory is writable") from e
