"""Check a statement against the in-toto v1 Statement and SLSA Provenance v1 requirements.

Two layers, both must pass:

* the reference implementation (PyPI ``in-toto-attestation``): the dict is parsed into the
  Statement and Provenance protobuf messages (unknown fields and wrong types are errors) and
  the library's own ``Statement.validate`` / ``ResourceDescriptor.validate`` run;
* the REQUIRED fields the protobuf schema cannot express (SLSA v1: ``buildType``,
  ``externalParameters``, ``runDetails.builder.id``; in-toto v1: a digest on every subject,
  digests as lower-case hex) plus what rootseed relies on (one sha256 subject; every image
  dependency names its package).
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

from rootseed import safefs
from rootseed.errors import ErrorKind, RootseedError
from rootseed.provenance.statement import KIND_IMAGE, PREDICATE_TYPE, STATEMENT_TYPE

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")
#: An image (package) name as a path component: never "..", never a "/" (trace opens
#: out/<package>/ and cache/images/<hex>/ from what the provenance names).
_PACKAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


#: Largest provenance statement read (a real one is a few KiB).
MAX_STATEMENT = 16 << 20


def read_untrusted(path: Path, limit: int = MAX_STATEMENT) -> bytes:
    """A file from out/ or the cache: never through a symlink, never blocking on a FIFO or
    device, at most ``limit`` bytes (:class:`OSError` otherwise, FileNotFoundError if absent).
    """
    try:
        return safefs.read_bytes(path.parent, path, limit)
    except safefs.UnsafePath as e:
        if e.problem is safefs.Problem.LINK:
            raise OSError(errno.ELOOP, "is a symbolic link, not the file the builder "
                                       "wrote") from None
        if e.problem is safefs.Problem.TOO_LARGE:
            raise OSError(errno.EFBIG, f"is larger than {limit} bytes") from None
        raise OSError(errno.EINVAL, "is not a regular file") from None


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (which value a reader sees is undefined)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def loads_strict(raw: bytes) -> Any:
    """Parse JSON, refusing duplicate keys and NaN/Infinity (:class:`ValueError` otherwise).

    Duplicate keys are refused because JSON readers disagree about them: one reader could
    check the first value while another uses the last.
    """
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constant)
    except RecursionError as e:
        raise ValueError("JSON nested too deeply") from e


def statement_problems(statement: Any) -> list[str]:
    """Every way ``statement`` breaks the requirements (empty when valid)."""
    if not isinstance(statement, dict):
        return ["statement is not a JSON object"]
    problems: list[str] = []
    problems += _library_problems(statement)
    problems += _required_field_problems(statement)
    return problems


def validate_statement(statement: Any, *, where: str = "statement") -> None:
    """Raise :class:`RootseedError` listing every problem of ``statement``."""
    problems = statement_problems(statement)
    if problems:
        raise RootseedError(
            f"{where} is not a valid in-toto/SLSA provenance statement: " + "; ".join(problems),
            hint="the file is damaged or was edited; rebuild the package to rewrite it",
            kind=ErrorKind.PROVENANCE,
        )


def _library_problems(statement: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    try:
        pb = json_format.ParseDict(statement, statement_pb2.Statement())
        stmt = Statement.copy_from_pb(pb)
        stmt.validate()
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as e:
        return [f"in-toto Statement: {e}"]
    if statement.get("predicateType") == PREDICATE_TYPE:
        try:
            json_format.ParseDict(statement.get("predicate"), provenance_pb2.Provenance())
        except (json_format.ParseError, ValueError, TypeError, AttributeError) as e:
            problems.append(f"SLSA Provenance predicate: {e}")
        deps = _get(statement, "predicate", "buildDefinition", "resolvedDependencies") or []
        for i, dep in enumerate(deps if isinstance(deps, list) else []):
            try:
                rd = ResourceDescriptor.copy_from_pb(
                    json_format.ParseDict(dep, ResourceDescriptor().pb))
                rd.validate()
            except (json_format.ParseError, ValueError, TypeError, AttributeError) as e:
                problems.append(f"resolvedDependencies[{i}]: {e}")
    return problems


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _digest_problems(where: str, digest: Any, *, require_sha256: bool) -> list[str]:
    if not isinstance(digest, dict) or not digest:
        return [f"{where}: digest missing"]
    problems = [f"{where}: digest {alg} is not lower-case hex"
                for alg, value in digest.items()
                if not isinstance(value, str) or not _HEX.match(value)]
    if require_sha256 and not (isinstance(digest.get("sha256"), str)
                               and _SHA256.match(digest["sha256"])):
        problems.append(f"{where}: no sha256 digest of 64 hex digits")
    return problems


def _required_field_problems(st: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if st.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type must be {STATEMENT_TYPE}")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        problems.append("expected exactly one subject (the image)")
    else:
        problems += _digest_problems("subject[0]", _get(subjects[0], "digest"),
                                     require_sha256=True)
    if st.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType must be {PREDICATE_TYPE}")
        return problems
    bd = _get(st, "predicate", "buildDefinition")
    if not isinstance(bd, dict):
        return [*problems, "predicate.buildDefinition missing"]
    if not isinstance(bd.get("buildType"), str) or not bd["buildType"]:
        problems.append("buildDefinition.buildType missing")
    external = bd.get("externalParameters")
    if not isinstance(external, dict):
        problems.append("buildDefinition.externalParameters missing")
    elif not isinstance(external.get("package"), str) or not external["package"]:
        problems.append("externalParameters.package missing")
    elif not _PACKAGE.match(external["package"]):
        problems.append(f"externalParameters.package {external['package']!r} is not an "
                        "image name")
    deps = bd.get("resolvedDependencies", [])
    if not isinstance(deps, list):
        problems.append("buildDefinition.resolvedDependencies is not a list")
        deps = []
    for i, dep in enumerate(deps):
        where = f"resolvedDependencies[{i}]"
        if not isinstance(dep, dict):
            problems.append(f"{where} is not an object")
            continue
        if not (dep.get("uri") or dep.get("digest") or dep.get("content")):
            problems.append(f"{where}: needs one of uri, digest, content")
        if "digest" in dep:
            problems += _digest_problems(where, dep["digest"], require_sha256=False)
        ann = dep.get("annotations") or {}
        if isinstance(ann, dict) and ann.get("kind") == KIND_IMAGE:
            if not isinstance(ann.get("package"), str) or not ann["package"]:
                problems.append(f"{where}: image dependency without annotations.package")
            elif not _PACKAGE.match(ann["package"]):
                problems.append(f"{where}: annotations.package {ann['package']!r} is not an "
                                "image name")
            problems += _digest_problems(where, dep.get("digest"), require_sha256=True)
    builder_id = _get(st, "predicate", "runDetails", "builder", "id")
    if not isinstance(builder_id, str) or not builder_id:
        problems.append("runDetails.builder.id missing")
    return problems
