"""The package tree's data: frozen, validated, nothing left to interpret.

The build arguments are StageX's (``src/targets.py`` ``get_build_args``): ``VERSION*``
only when the package has a version, ``<ID>_VERSION``/``<ID>_SOURCE`` only for a source
with a version of its own, ``<ID>_GIT_SHA`` when set, and ``SOURCE_DATE_EPOCH=1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rootseed.tree.placeholders import version_forms

#: The tag StageX gives an image whose package has no version.
NO_VERSION_TAG = "latest"


def arg_prefix(source_id: str) -> str:
    """Source id → build-arg prefix, as StageX does it: Python's ``str.upper()`` and
    nothing else (``m2_planet`` → ``M2_PLANET``, ``gcc-libs`` → ``GCC-LIBS``)."""
    return source_id.upper()


@dataclass(frozen=True)
class Source:
    id: str
    hash: str  # sha256, 64 lowercase hex digits
    version: str | None  # its own version, else the package's (what file names use)
    file: str  # the fetched file's name
    mirrors: tuple[str, ...]  # expanded URLs, in order
    format: str | None = None
    git_sha: str | None = None
    seed: bool = False  # a bootstrap seed: a root of the chain of custody
    own_version: str | None = None  # [sources.<id>] version, as written
    arg_file: str | None = None  # <ID>_SOURCE as StageX computes it (None: same as file)

    def build_args(self) -> dict[str, str]:
        prefix = arg_prefix(self.id)
        args: dict[str, str] = {}
        if self.own_version:  # StageX: only a source with a version of its own
            args[f"{prefix}_VERSION"] = self.own_version
            args[f"{prefix}_SOURCE"] = self.arg_file if self.arg_file is not None else self.file
        if self.git_sha:
            args[f"{prefix}_GIT_SHA"] = self.git_sha
        return args


@dataclass(frozen=True)
class Package:
    """One image of the tree, as StageX registers it.

    A directory whose package.toml lists ``subpackages`` stands for one package per
    subpackage: ``name`` ``<stage>-<sub>``, ``origin`` the directory's package, built
    from the directory's Containerfile with ``target`` ``package-<sub>``.
    """

    name: str  # "<stage>-<pname>" (a subpackage: "<stage>-<sub>")
    stage: str
    pname: str  # the directory's name (a subpackage: the subpackage's)
    version: str  # the image's version tag: declared_version, else "latest" (as StageX)
    description: str
    license: str
    directory: Path
    containerfile: Path
    website: str | None = None
    platforms: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    deps: tuple[str, ...] = ()  # package names this one's Containerfile refers to
    outputs: dict[str, tuple[str, int]] = field(default_factory=dict)  # path → (sha256, size)
    declared_version: str | None = None  # [package] version (or version_from's), if any
    origin: str | None = None  # a subpackage's directory package "<stage>-<dir>"
    target: str | None = None  # a subpackage's stage "package-<sub>"

    @property
    def directory_name(self) -> str:
        """``<stage>-<dir>``: the package directory this image is built from."""
        return self.origin or self.name

    def build_args(self) -> dict[str, str]:
        """The build arguments StageX hands a Containerfile (docs/formats.md#packagetoml)."""
        args: dict[str, str] = {}
        if self.declared_version:
            forms = version_forms(self.declared_version)
            args.update({
                "VERSION": self.declared_version,
                "VERSION_UNDER": forms["version_under"],
                "VERSION_DASH": forms["version_dash"],
                "VERSION_MAJOR": forms["version_major"],
                "VERSION_MAJOR_MINOR": forms["version_major_minor"],
                "VERSION_STRIP_SUFFIX": forms["version_strip_suffix"],
            })
        for source in self.sources:
            args.update(source.build_args())
        args["SOURCE_DATE_EPOCH"] = "1"
        return args

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)
