"""What can be wrong with a package of a tree: typed problems, kept on the :class:`Tree`.

A tree loads even when some packages are broken. Each problem names its kind, the file
(and line or field) and the package it makes unbuildable; a package's dependents cannot
be built either, everything else can. ``rootseed check`` adds the problems it finds by
planning every Containerfile.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rootseed.errors import ErrorKind, RootseedError


class Severity(StrEnum):
    ERROR = "error"  # the package cannot be built
    WARNING = "warning"  # StageX accepts it; worth a look


class ProblemKind(StrEnum):
    # package.toml
    BAD_TOML = "bad-toml"  # not TOML, unreadable
    MISSING_FIELD = "missing-field"  # a field StageX's reader requires
    BAD_FIELD = "bad-field"  # wrong type or value
    BAD_HASH = "bad-hash"  # not 64 lowercase hex digits (sha256)
    BAD_PLACEHOLDER = "bad-placeholder"  # unknown {placeholder} in file/mirrors
    NAME_MISMATCH = "name-mismatch"  # [package] name differs from the directory
    VERSION_FROM = "version-from"  # names no package, or loops
    BOTH_VERSIONS = "both-versions"  # version and version_from (version_from wins)
    DUPLICATE_IMAGE = "duplicate-image"  # two packages/subpackages give one image name
    NO_PACKAGE_TOML = "no-package-toml"  # a Containerfile alone (StageX skips it)
    NO_CONTAINERFILE = "no-containerfile"  # a package.toml alone (StageX skips it)
    # Containerfile
    CONTAINERFILE = "containerfile"  # does not parse
    PLAN = "plan"  # cannot be planned (expansion, --from, target)
    NO_SUBPACKAGE_STAGE = "no-subpackage-stage"  # no stage package-<sub>
    UNKNOWN_IMAGE = "unknown-image"  # FROM/--from an image no package builds
    SELF_REFERENCE = "self-reference"  # FROM/--from one of its own images
    UNKNOWN_SOURCE = "unknown-source"  # ${X_SOURCE}/fetch/... names no declared source
    MISSING_CONTEXT_FILE = "missing-context-file"  # COPY/ADD of a file not in the package
    BAD_FILE_NAME = "bad-file-name"  # a build context file name that is not UTF-8
    NO_VERSION = "no-version"  # uses VERSION* but the package has no version
    UNDECLARED_VARIABLE = "undeclared-variable"  # ${X} with no value where a value was meant
    # the graph
    CYCLE = "cycle"  # packages need each other


#: How bad each kind is (one place, so severity is never chosen ad hoc).
SEVERITY: dict[ProblemKind, Severity] = {
    **{k: Severity.ERROR for k in ProblemKind},
    ProblemKind.BOTH_VERSIONS: Severity.WARNING,
    ProblemKind.NO_PACKAGE_TOML: Severity.WARNING,
    ProblemKind.NO_CONTAINERFILE: Severity.WARNING,
    ProblemKind.UNDECLARED_VARIABLE: Severity.WARNING,
}


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    file: Path
    message: str  # what is wrong, without the location
    package: str | None = None  # the image name it makes unbuildable (None: no package)
    line: int | None = None
    field: str | None = None  # "[package] version_from", "[sources.gcc] hash", ...
    hint: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]

    def where(self, base: Path | None = None) -> str:
        """``file:line`` (or ``file: field``), the file relative to ``base`` when inside it."""
        path = self.where_file(base)
        if self.line is not None:
            path = f"{path}:{self.line}"
        return f"{path}: {self.field}" if self.field else path

    def describe(self, base: Path | None = None) -> str:
        return f"{self.where(base)}: {self.message}"

    def to_json(self, base: Path | None = None) -> dict[str, object]:
        return {"kind": self.kind.value, "severity": self.severity.value,
                "file": self.where_file(base), "line": self.line, "field": self.field,
                "package": self.package, "message": self.message, "hint": self.hint}

    def where_file(self, base: Path | None) -> str:
        if base is not None:
            try:
                return self.file.relative_to(base).as_posix()
            except ValueError:
                pass
        return str(self.file)


class ProblemError(RootseedError):
    """Raised inside the loader for one package's problem; the tree records it."""

    kind = ErrorKind.TREE

    def __init__(self, problem: Problem):
        super().__init__(problem.describe(), hint=problem.hint)
        self.problem = problem


class UnbuildableError(RootseedError):
    """A package that cannot be built because of a problem (its own or a dependency's);
    ``--json`` names the problem's kind and, when it is a dependency's, ``via``."""

    kind = ErrorKind.TREE

    def __init__(self, name: str, problem: Problem, via: str | None = None):
        because = f" because it needs {via}, which" if via is not None else ", which"
        super().__init__(
            f"{name} cannot be built{because} has a problem: {problem.describe()}",
            hint=problem.hint or "run `rootseed check` to see every problem of the tree",
            package=name, file=str(problem.file), line=problem.line)
        self.name = name
        self.problem = problem
        self.via = via

    def as_json(self) -> dict[str, Any]:
        extra = {} if self.via is None else {"via": self.via}
        return {**super().as_json(), "problem": self.problem.kind.value, **extra}
