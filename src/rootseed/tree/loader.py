"""Read and validate one ``package.toml`` as StageX's reader (``src/common.py``) does.

Required, as there: ``[package] name`` and each source's ``hash`` and ``mirrors``.
Everything else is optional (``version``, ``version_from``, ``description``,
``license``, ``website``, ``platforms``, ``subpackages``; a source's ``version``,
``file``, ``format``, ``git_sha``); an empty string counts as absent, as StageX's
truth tests make it. A problem raises :class:`ProblemError` naming file and field; the
tree records it against this package only.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from rootseed.tree.model import Source
from rootseed.tree.placeholders import (
    ARG_FILE_PLACEHOLDERS,
    FILE_PLACEHOLDERS,
    expand,
    placeholders,
    unknown_placeholders,
    version_forms,
)
from rootseed.tree.problems import Problem, ProblemError, ProblemKind

_SHA256 = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_VERSION_PLACEHOLDERS = FILE_PLACEHOLDERS - {"format"}


@dataclass(frozen=True)
class RawPackage:
    """A package.toml as written, before ``version_from`` and the Containerfile are resolved."""

    path: Path
    stage: str
    pname: str  # [package] name
    version: str | None
    version_from: str | None
    description: str
    license: str
    website: str | None
    platforms: tuple[str, ...]
    subpackages: tuple[str, ...]
    sources: dict[str, dict[str, Any]]
    outputs: dict[str, tuple[str, int]]

    @property
    def name(self) -> str:
        return f"{self.stage}-{self.pname}"


def _fail(path: Path, kind: ProblemKind, field: str | None, what: str,
          hint: str | None = None, package: str | None = None) -> NoReturn:
    raise ProblemError(Problem(kind=kind, file=path, field=field, message=what, hint=hint,
                               package=package))


def _optional_string(path: Path, table: dict[str, Any], key: str, where: str) -> str | None:
    """A string field StageX reads (an empty string is absent, as its truth tests make it)."""
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(path, ProblemKind.BAD_FIELD, f"{where} {key}",
              f"must be a string, got {value!r}")
    return value or None


def _text(table: dict[str, Any], key: str) -> str:
    """A field StageX never reads (description, license, website): kept when a string."""
    value = table.get(key)
    return value if isinstance(value, str) else ""


def _strings(path: Path, table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(path, ProblemKind.BAD_FIELD, f"{where} {key}",
              f"must be a list of strings, got {value!r}")
    return tuple(value)


def read_package_toml(path: Path, stage: str) -> RawPackage:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        _fail(path, ProblemKind.BAD_TOML, None, f"not valid TOML: {e}")
    except ValueError as e:  # an integer of more than 4300 digits (int's own limit)
        _fail(path, ProblemKind.BAD_TOML, None, f"not valid TOML: {e}".split(";")[0])
    except RecursionError:  # tomllib recurses per nested array/inline table
        _fail(path, ProblemKind.BAD_TOML, None, "not valid TOML: nested too deeply")
    except (OSError, UnicodeDecodeError) as e:
        _fail(path, ProblemKind.BAD_TOML, None, f"cannot read: {e}")

    pkg = data.get("package")
    if not isinstance(pkg, dict):
        _fail(path, ProblemKind.MISSING_FIELD, "[package]", "missing table",
              hint="every package.toml starts with [package] and its name")
    pname = pkg.get("name")
    if pname is None:
        _fail(path, ProblemKind.MISSING_FIELD, "[package]", "missing required field 'name'")
    if not isinstance(pname, str) or not NAME.fullmatch(pname):
        _fail(path, ProblemKind.BAD_FIELD, "[package] name",
              f"{pname!r} is not a valid package name")
    version = _optional_string(path, pkg, "version", "[package]")
    version_from = _optional_string(path, pkg, "version_from", "[package]")
    subpackages = _strings(path, pkg, "subpackages", "[package]")
    for sub in subpackages:
        if not NAME.fullmatch(sub):
            _fail(path, ProblemKind.BAD_FIELD, "[package] subpackages",
                  f"{sub!r} is not a valid package name")

    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, dict) for v in sources.values()):
        _fail(path, ProblemKind.BAD_FIELD, "[sources]",
              "each source must be a table [sources.<id>]")
    outputs = _read_outputs(path, data.get("outputs", {}))

    return RawPackage(
        path=path, stage=stage, pname=pname, version=version, version_from=version_from,
        description=_text(pkg, "description"), license=_text(pkg, "license"),
        website=_text(pkg, "website") or None,
        platforms=_strings(path, pkg, "platforms", "[package]"),
        subpackages=subpackages, sources=sources, outputs=outputs,
    )


def _read_outputs(path: Path, table: object) -> dict[str, tuple[str, int]]:
    """``[outputs]``, a rootseed extension: files the image must hold, pinned."""
    if not isinstance(table, dict):
        _fail(path, ProblemKind.BAD_FIELD, "[outputs]",
              "must be a table of \"path\" = [\"<sha256>\", <size>]")
    outputs: dict[str, tuple[str, int]] = {}
    for file, value in table.items():
        ok = (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
              and _SHA256.fullmatch(value[0]) is not None
              and isinstance(value[1], int) and value[1] >= 0)
        if not ok:
            _fail(path, ProblemKind.BAD_FIELD, f"[outputs] {file!r}",
                  f"expected [\"<64 hex sha256>\", <size>], got {value!r}")
        outputs[file.lstrip("/")] = (value[0], value[1])
    return outputs


def _url_file(mirror: str) -> str:
    """StageX's default file name: the last part of the first mirror's URL path."""
    return urlsplit(mirror).path.split("/")[-1]


def resolve_source(path: Path, source_id: str, table: dict[str, Any],
                   package_version: str | None) -> Source:
    """Validate one ``[sources.<id>]`` table and expand its placeholders.

    File names and URLs use the source's version, else the package's (StageX fetch.py);
    ``<ID>_SOURCE`` is what StageX's targets.py computes for a source with a version of
    its own: the file with ``{version}`` the source's and ``{version_dash}``/
    ``{version_under}`` the *package's* version.
    """
    where = f"[sources.{source_id}]"
    digest = table.get("hash")
    if digest is None:
        _fail(path, ProblemKind.MISSING_FIELD, where, "missing required field 'hash'")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        _fail(path, ProblemKind.BAD_HASH, f"{where} hash",
              f"must be 64 lowercase hex digits (sha256), got {digest!r}",
              hint="StageX verifies every source by its sha256")
    if "mirrors" not in table:
        _fail(path, ProblemKind.MISSING_FIELD, where, "missing required field 'mirrors'")
    mirrors = _strings(path, table, "mirrors", where)
    if not mirrors:
        _fail(path, ProblemKind.BAD_FIELD, f"{where} mirrors",
              "at least one mirror URL is required")
    own_version = _optional_string(path, table, "version", where)
    fmt = _optional_string(path, table, "format", where)
    git_sha = _optional_string(path, table, "git_sha", where)
    file_template = _optional_string(path, table, "file", where)
    seed = table.get("seed", False)
    if not isinstance(seed, bool):
        _fail(path, ProblemKind.BAD_FIELD, f"{where} seed", f"must be true or false, got {seed!r}")
    version = own_version or package_version

    allowed = FILE_PLACEHOLDERS if fmt is not None else FILE_PLACEHOLDERS - {"format"}
    template = file_template if file_template is not None else _url_file(mirrors[0])
    field = f"{where} file" if file_template is not None else f"{where} mirrors"
    _check_placeholders(path, field, template, allowed, fmt is not None, version)
    values = version_forms(version) if version is not None else {}
    if fmt is not None:
        values["format"] = fmt
    file = expand(template, values)
    for mirror in mirrors:
        _check_placeholders(path, f"{where} mirrors", mirror, allowed | {"file"},
                            fmt is not None, version)
    expanded = tuple(expand(m, {**values, "file": file}) for m in mirrors)
    if not file or "/" in file or file in (".", ".."):
        _fail(path, ProblemKind.BAD_FIELD, f"{where} file", f"{file!r} is not a usable file name")

    arg_file = None
    if own_version:
        bad = unknown_placeholders(template, ARG_FILE_PLACEHOLDERS)
        if bad:
            _fail(path, ProblemKind.BAD_PLACEHOLDER, field,
                  f"{{{bad[0]}}} in the file name of a source with its own version",
                  hint="StageX's targets.py computes <ID>_SOURCE with {version}, "
                       "{version_dash}, {version_under} and {format} only")
        package_forms = version_forms(package_version) if package_version else {}
        arg_file = expand(template, {
            "version": own_version, "format": fmt or "",
            "version_dash": package_forms.get("version_dash", ""),
            "version_under": package_forms.get("version_under", "")})
    return Source(id=source_id, hash=digest, version=version, file=file, mirrors=expanded,
                  format=fmt, git_sha=git_sha, seed=seed, own_version=own_version,
                  arg_file=arg_file if arg_file != file else None)


def _check_placeholders(path: Path, field: str, template: str, allowed: frozenset[str],
                        has_format: bool, version: str | None) -> None:
    bad = unknown_placeholders(template, allowed)
    if bad:
        _fail(path, ProblemKind.BAD_PLACEHOLDER, field,
              f"unknown placeholder {{{bad[0]}}} in {template!r}",
              hint=_placeholder_hint(allowed, "format" in bad and not has_format))
    if version is None and any(p in _VERSION_PLACEHOLDERS for p in placeholders(template)):
        _fail(path, ProblemKind.BAD_FIELD, field,
              f"{template!r} uses a version placeholder, but neither the source nor the "
              "package has a version", hint="give the source a version = \"...\"")


def _placeholder_hint(allowed: frozenset[str], format_missing: bool) -> str:
    names = ", ".join("{" + n + "}" for n in sorted(allowed | (
        {"format"} if format_missing else set())))
    extra = " ({format} needs a 'format' field)" if format_missing else ""
    return f"known placeholders: {names}{extra}"
