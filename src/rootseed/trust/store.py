"""Where signatures live on disk: the containers/image "lookaside" layout.

``<root>/<registry>/<stage>-<name>@sha256=<manifest hex>/signature-<N>``, N = 1, 2, …
and, beside them, ``provenance-<N>``: detached OpenPGP signatures over the exact bytes of
the image's ``provenance.json`` (see :mod:`rootseed.trust.verify`).

Readers stop at the first missing N, as containers/image (skopeo) does: its lookaside
reader asks for signature-1, signature-2, … and ends at the first one that does not
exist. Files past such a gap, and past the first :data:`MAX_FILES`, are not counted
(:attr:`Listing.ignored` names them).
A new signature takes the smallest free N. Files are written under a temporary name and
then hard-linked into place, which fails instead of overwriting if another writer took
that N first. Reading never follows a symlink, never blocks on a FIFO, and reads at most
:data:`MAX_FILE` bytes.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rootseed import safefs
from rootseed.errors import RootseedError
from rootseed.trust.payload import check_manifest_digest, check_name

#: Largest signature file read (a real one is under 1 KiB).
MAX_FILE = 1 << 20
#: Most files of one kind read per image (a real image has one per maintainer, a handful):
#: each one is an OpenPGP check, so a directory of thousands is work without bound.
MAX_FILES = 100


class Kind(StrEnum):
    """What a numbered file in a signature directory signs."""

    IMAGE = "signature"  # signature-N: the image (an OpenPGP signed message)
    PROVENANCE = "provenance"  # provenance-N: provenance.json (a detached signature)


@dataclass(frozen=True)
class Stored:
    """One numbered file: its bytes, or why they could not be read."""

    name: str
    data: bytes | None
    problem: str | None = None


@dataclass(frozen=True)
class Listing:
    """The files a reader takes (N = 1, 2, … up to the first gap) and those past the gap."""

    files: tuple[Stored, ...]
    ignored: tuple[str, ...]


def signature_dir(root: Path, registry: str, name: str, digest: str) -> Path:
    """The directory holding every signature of image ``registry/name`` at ``digest``."""
    check_name(f"{registry}/{name}")
    algorithm, _, hexdigest = check_manifest_digest(digest).partition(":")
    return root.joinpath(*registry.split("/"), f"{name}@{algorithm}={hexdigest}")


def _numbered(directory: Path, kind: Kind) -> list[int]:
    pattern = re.compile(rf"{kind.value}-([1-9][0-9]*)")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RootseedError(f"cannot list signatures in {directory}: {e.strerror}") from e
    return sorted(int(m[1]) for name in names if (m := pattern.fullmatch(name)))


def _read(path: Path) -> Stored:
    try:
        data = safefs.read_bytes(path.parent, path, MAX_FILE)
    except safefs.UnsafePath as e:
        why = {safefs.Problem.LINK: "is a symbolic link",
               safefs.Problem.TOO_LARGE: f"is larger than {MAX_FILE} bytes"}.get(
                   e.problem, "is not a regular file")
        return Stored(path.name, None, f"{path.name} {why}")
    except OSError as e:
        return Stored(path.name, None, f"{path.name} cannot be read: {e.strerror}")
    return Stored(path.name, data)


def read_signatures(directory: Path, kind: Kind = Kind.IMAGE) -> Listing:
    """``<kind>-1``, ``<kind>-2``, … up to the first missing N, read safely."""
    numbers = _numbered(directory, kind)
    present = set(numbers)
    files: list[Stored] = []
    n = 1
    while n in present and len(files) < MAX_FILES:
        path = directory / f"{kind.value}-{n}"
        if not os.path.lexists(path):  # removed since the listing: a gap now
            break
        files.append(_read(path))
        n += 1
    ignored = tuple(f"{kind.value}-{m}" for m in numbers if m >= n)
    return Listing(tuple(files), ignored)


def list_signatures(directory: Path, kind: Kind = Kind.IMAGE) -> list[Path]:
    """The ``<kind>-<N>`` paths a reader takes (up to the first gap), by N."""
    return [directory / f.name for f in read_signatures(directory, kind).files]


def add_signature(directory: Path, data: bytes, kind: Kind = Kind.IMAGE) -> Path:
    """Store ``data`` as the smallest free ``<kind>-<N>``; return its path."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{kind.value}-", dir=directory)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            n = 1
            while True:
                target = directory / f"{kind.value}-{n}"
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
