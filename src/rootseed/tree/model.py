"""The package tree's data: frozen, validated, nothing left to interpret."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.tree.placeholders import version_forms


def arg_prefix(source_id: str) -> str:
    """Source id → build-arg prefix: ``m2_planet`` → ``M2_PLANET``, ``gcc-libs`` → ``GCC_LIBS``."""
    return re.sub(r"[^A-Za-z0-9]", "_", source_id).upper()


@dataclass(frozen=True)
class Source:
    id: str
    hash: str  # sha256, 64 lowercase hex digits
    version: str
    file: str
    mirrors: tuple[str, ...]  # expanded URLs, in order
    format: str | None = None
    git_sha: str | None = None
    seed: bool = False  # a bootstrap seed: a root of the chain of custody

    def build_args(self) -> dict[str, str]:
        prefix = arg_prefix(self.id)
        args = {f"{prefix}_VERSION": self.version, f"{prefix}_SOURCE": self.file}
        if self.git_sha is not None:
            args[f"{prefix}_GIT_SHA"] = self.git_sha
        return args


@dataclass(frozen=True)
class Package:
    name: str  # "<stage>-<pname>"
    stage: str
    pname: str
    version: str
    description: str
    license: str
    directory: Path
    containerfile: Path
    website: str | None = None
    platforms: tuple[str, ...] = ()
    subpackages: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    deps: tuple[str, ...] = ()  # package names this one's Containerfile refers to
    outputs: dict[str, tuple[str, int]] = field(default_factory=dict)  # path → (sha256, size)

    def build_args(self) -> dict[str, str]:
        """The build arguments StageX hands a Containerfile (docs/formats.md#packagetoml)."""
        forms = version_forms(self.version)
        args = {
            "VERSION": self.version,
            "VERSION_UNDER": forms["version_under"],
            "VERSION_DASH": forms["version_dash"],
            "VERSION_MAJOR": forms["version_major"],
            "VERSION_MAJOR_MINOR": forms["version_major_minor"],
            "VERSION_STRIP_SUFFIX": forms["version_strip_suffix"],
            "SOURCE_DATE_EPOCH": "1",
        }
        for source in self.sources:
            args.update(source.build_args())
        return args

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)
