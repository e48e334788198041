"""The in-toto v1 Statement (SLSA Provenance v1 predicate) that records one build.

:func:`make_statement` turns a :class:`~rootseed.provenance.record.BuildRecord` into a plain,
deterministic dict (no times, no host paths); :func:`write_statement` stores it beside the
image as ``provenance.json``; :func:`read_statement` loads one back as :class:`Provenance`,
the few facts ``trace`` and ``report`` follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootseed.console import canonical_json
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fsutil import atomic_write
from rootseed.provenance.record import BuildRecord

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: Identifiers rootseed controls name versioned documents of its own repository, written
#: ``rootseed:<path in the repository>#<heading anchor>`` (the scheme is defined in
#: docs/formats.md#identifiers). No domain: nothing outside the repository defines them.
IDENTIFIER_SCHEME = "rootseed:"
#: What kind of build this was; fixes the meaning of externalParameters/internalParameters.
BUILD_TYPE = "rootseed:docs/formats.md#buildtype-v1"
#: Who built it (the rootseed builder; its version is in runDetails.builder.version).
BUILDER_ID = "rootseed:docs/formats.md#builder-v1"
PROVENANCE_FILE = "provenance.json"

#: ``annotations.kind`` values of resolvedDependencies entries.
KIND_SOURCE = "source"
KIND_IMAGE = "image"
KIND_CONTAINERFILE = "containerfile"
KIND_CONTEXT = "context"


def _hex(digest: str) -> str:
    """``sha256:<hex>`` or ``<hex>`` → ``<hex>`` (lower case)."""
    return digest.removeprefix("sha256:").lower()


def image_uri(namespace: str, package: str) -> str:
    return f"oci:{namespace}/{package}"


def make_statement(record: BuildRecord) -> dict[str, Any]:
    """The in-toto v1 Statement with an SLSA Provenance v1 predicate for ``record``."""
    external: dict[str, Any] = {"package": record.package, "buildArgs": dict(record.build_args)}
    if record.target is not None:
        external["target"] = record.target

    deps: list[dict[str, Any]] = []
    for s in sorted(record.sources, key=lambda s: (s.id, s.file)):
        deps.append({
            "uri": s.uri,
            "name": s.file,
            "digest": {"sha256": _hex(s.sha256)},
            "annotations": {"kind": KIND_SOURCE, "id": s.id, "seed": s.seed},
        })
    seen: set[tuple[str, str]] = set()
    for p in sorted(record.parents, key=lambda p: (p.package, p.manifest_digest, p.reference)):
        key = (p.package, _hex(p.manifest_digest))
        if key in seen:  # the same image used twice (FROM and COPY --from)
            continue
        seen.add(key)
        deps.append({
            "uri": image_uri(record.namespace, p.package),
            "name": p.reference,
            "digest": {"sha256": key[1]},
            "annotations": {"kind": KIND_IMAGE, "package": p.package},
        })
    deps.append({
        "name": "Containerfile",
        "digest": {"sha256": _hex(record.containerfile_sha256)},
        "annotations": {"kind": KIND_CONTAINERFILE},
    })
    for path in sorted(record.context_files):
        deps.append({
            "name": path,
            "digest": {"sha256": _hex(record.context_files[path])},
            "annotations": {"kind": KIND_CONTEXT},
        })

    return {
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": f"{record.namespace}/{record.package}",
            "digest": {"sha256": _hex(record.manifest_digest)},
            "annotations": {"package": record.package, "version": record.version},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"namespace": record.namespace,
                                       "version": record.version},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"rootseed": record.rootseed_version}},
            },
        },
    }


def statement_bytes(record: BuildRecord) -> bytes:
    """The statement as written: canonical JSON, UTF-8, one trailing newline."""
    return (canonical_json(make_statement(record)) + "\n").encode()


def write_statement(layout_dir: Path, record: BuildRecord) -> Path:
    """Write ``<layout_dir>/provenance.json`` atomically; returns its path."""
    from rootseed.provenance.validate import validate_statement

    statement = make_statement(record)
    validate_statement(statement, where=f"provenance of {record.package}")
    return atomic_write(layout_dir / PROVENANCE_FILE, (canonical_json(statement) + "\n").encode())


@dataclass(frozen=True)
class SourceRef:
    id: str
    file: str
    uri: str
    sha256: str
    seed: bool


@dataclass(frozen=True)
class ParentRef:
    package: str
    reference: str
    uri: str
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class Provenance:
    """What ``trace`` needs from one validated ``provenance.json``."""

    path: Path
    subject_name: str
    subject_digest: str  # "sha256:<hex>"
    package: str
    version: str
    builder_id: str
    builder_version: str
    sources: tuple[SourceRef, ...]
    parents: tuple[ParentRef, ...]
    statement: dict[str, Any]
    raw: bytes = b""  # the file's exact bytes (what provenance signatures sign)

    @property
    def seeds(self) -> tuple[SourceRef, ...]:
        return tuple(s for s in self.sources if s.seed)


def read_statement(path: Path, *, package: str | None = None) -> Provenance:
    """Load and validate ``path``; raise :class:`RootseedError` naming ``package`` on failure."""
    from rootseed.provenance.validate import loads_strict, read_untrusted, validate_statement

    who = package or path.parent.name
    try:
        raw = read_untrusted(path)
    except FileNotFoundError:
        raise RootseedError(
            f"{who}: missing provenance: {path} does not exist",
            hint="rebuild the package (the builder writes provenance.json beside the image)",
            kind=ErrorKind.PROVENANCE, package=package,
        ) from None
    except OSError as e:
        raise RootseedError(f"{who}: provenance {path} cannot be read: {e.strerror or e}",
                            hint="the builder writes provenance.json as a regular file; "
                                 "rebuild the package",
                            kind=ErrorKind.PROVENANCE, package=package) from None
    try:
        statement = loads_strict(raw)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, duplicate keys
        raise RootseedError(f"{who}: provenance {path} is not valid JSON: {e}",
                            hint="the file is damaged or was edited; rebuild the package",
                            kind=ErrorKind.PROVENANCE, package=package) from None
    try:
        validate_statement(statement, where=f"{who}: provenance {path}")
    except RootseedError as e:
        raise e.at(package=package) from None

    subject = statement["subject"][0]
    pred = statement["predicate"]
    external = pred["buildDefinition"]["externalParameters"]
    internal = pred["buildDefinition"].get("internalParameters") or {}
    builder = pred["runDetails"]["builder"]
    sources: list[SourceRef] = []
    parents: list[ParentRef] = []
    for dep in pred["buildDefinition"].get("resolvedDependencies", []):
        ann = dep.get("annotations") or {}
        kind = ann.get("kind")
        if kind == KIND_SOURCE:
            sources.append(SourceRef(id=str(ann.get("id", "")), file=str(dep.get("name", "")),
                                     uri=str(dep.get("uri", "")),
                                     sha256=str(dep["digest"]["sha256"]),
                                     seed=ann.get("seed") is True))
        elif kind == KIND_IMAGE:
            parents.append(ParentRef(package=str(ann["package"]),
                                     reference=str(dep.get("name", "")),
                                     uri=str(dep.get("uri", "")),
                                     digest="sha256:" + str(dep["digest"]["sha256"])))
    return Provenance(
        path=path,
        subject_name=str(subject.get("name", "")),
        subject_digest="sha256:" + str(subject["digest"]["sha256"]),
        package=str(external["package"]),
        version=str(internal.get("version", "")),
        builder_id=str(builder["id"]),
        builder_version=str((builder.get("version") or {}).get("rootseed", "")),
        sources=tuple(sources),
        parents=tuple(parents),
        statement=statement,
        raw=raw,
    )
