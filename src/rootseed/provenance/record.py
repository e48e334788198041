"""What a build consumed and produced: the facts provenance, signing and trace rely on.

The builder fills one :class:`BuildRecord` per built image; ``provenance`` turns it into an
in-toto statement. Everything here is deterministic (no times, no paths of this machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolvedSource:
    """A pinned source as the build used it."""

    id: str  # the [sources.<id>] key
    file: str  # file name visible in the `fetch` context
    sha256: str  # verified hex digest
    uri: str  # the first declared mirror URL (what the package pins), not the local path
    seed: bool = False  # true for a bootstrap seed (a root of the chain of custody)


@dataclass(frozen=True)
class ParentImage:
    """An image of another package that the build used (FROM or COPY --from)."""

    package: str  # the image's name: "<stage>-<name>", or "<stage>-<sub>" for a subpackage
    reference: str  # as written in the Containerfile, e.g. "stagex/bootstrap-stage0"
    manifest_digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class BuildRecord:
    package: str  # the image's name: "<stage>-<name>", or "<stage>-<sub>" for a subpackage
    version: str
    namespace: str  # the tree's image namespace
    containerfile_sha256: str
    target: str | None
    build_args: dict[str, str]
    sources: tuple[ResolvedSource, ...]
    parents: tuple[ParentImage, ...]
    manifest_digest: str  # "sha256:<hex>" of the image manifest
    rootseed_version: str
    context_files: dict[str, str] = field(default_factory=dict)  # relative path → sha256
