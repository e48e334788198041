"""Which files count as a seed: where a chain of custody may end.

A rootseed tree marks its seed in package.toml (``seed = true`` on a source) and the
provenance records that mark. A tree that does not know the mark (StageX's, unmodified)
still pins its seed: StageX's stage0 is built FROM scratch with ``ADD hex0-seed /``, a
context file of the package. Such a file is taken as the seed when its sha256 is one of
:data:`KNOWN_SEEDS` (facts about published seed binaries, checked here) or one the user
named with ``--seed``: recognised by content, never by name, so no edit of the tree is
needed and no file becomes a seed because it is called one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from rootseed.errors import ErrorKind, RootseedError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: A seed is a few hundred bytes; a bound keeps ``--seed FILE`` from reading a device.
MAX_SEED_FILE = 1 << 20


@dataclass(frozen=True)
class KnownSeed:
    sha256: str
    name: str
    origin: str


#: Published seed binaries, by the sha256 of their bytes.
KNOWN_SEEDS: tuple[KnownSeed, ...] = (
    KnownSeed(
        "f74dcf9cef2aee9eb7723eca755849d474fccd89662947021d1aa08429d23c13",
        "hex0-seed (i386)",
        "the 181-byte i386 hex0 seed of stage0-posix (bootstrap-seeds POSIX/x86/hex0-seed), "
        "which StageX pins as packages/bootstrap/stage0/hex0-seed"),
)


@dataclass(frozen=True)
class RecognisedSeed:
    """A file of a FROM-scratch image's provenance taken as its seed, and why."""

    file: str
    sha256: str
    kind: str  # "source" or "context file": how the provenance records it
    why: str

    def line(self) -> str:
        return f"seed: {self.file} ({self.kind}) sha256 {self.sha256}: {self.why}"

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "sha256": self.sha256, "kind": self.kind, "why": self.why}


@dataclass(frozen=True)
class SeedPolicy:
    """The sha256 values that make a recorded file a seed → the reason given for each."""

    accepted: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({
        s.sha256: f"its sha256 is the known {s.name}, {s.origin}" for s in KNOWN_SEEDS}))

    def with_given(self, given: Iterable[str]) -> SeedPolicy:
        """Add the sha256 values named with ``--seed`` (a file path or 64 hex digits)."""
        accepted = dict(self.accepted)
        for value in given:
            hexd, origin = parse_seed_option(value)
            accepted.setdefault(hexd, f"its sha256 is the one given with --seed {origin}")
        return SeedPolicy(MappingProxyType(accepted))

    def recognise(self, files: Iterable[tuple[str, str, str]]) -> list[RecognisedSeed]:
        """The seeds among ``(name, sha256, kind)`` recorded files, in the order given."""
        return [RecognisedSeed(name, hexd, kind, self.accepted[hexd])
                for name, hexd, kind in files if hexd in self.accepted]


def parse_seed_option(value: str) -> tuple[str, str]:
    """``--seed FILE|SHA256`` → (sha256 hex, what the user named)."""
    text = value.strip().lower().removeprefix("sha256:")
    if _SHA256.match(text):
        return text, f"sha256:{text}"
    path = Path(value)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SEED_FILE + 1)
    except OSError as e:
        raise RootseedError(f"--seed {value}: neither 64 hex digits (a sha256) nor a readable "
                            f"file ({e.strerror or e})",
                            hint="pass the seed file itself, or its sha256",
                            kind=ErrorKind.USAGE) from None
    if len(data) > MAX_SEED_FILE:
        raise RootseedError(f"--seed {value}: {len(data)}+ bytes, not a seed (at most "
                            f"{MAX_SEED_FILE} bytes)", hint="pass the seed binary itself")
    return hashlib.sha256(data).hexdigest(), str(path)


def recorded_files(statement: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """``(name, sha256, kind)`` of every source and context file a statement records."""
    from rootseed.provenance.statement import KIND_CONTEXT, KIND_SOURCE

    build = statement.get("predicate", {})
    deps = build.get("buildDefinition", {}).get("resolvedDependencies", []) \
        if isinstance(build, dict) else []
    kinds = {KIND_SOURCE: "source", KIND_CONTEXT: "context file"}
    found: list[tuple[str, str, str]] = []
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, dict):
            continue
        kind = kinds.get(str((dep.get("annotations") or {}).get("kind")))
        hexd = (dep.get("digest") or {}).get("sha256")
        if kind is not None and isinstance(hexd, str):
            found.append((str(dep.get("name", "")), hexd, kind))
    return found

