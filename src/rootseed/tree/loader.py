"""Read and validate one ``package.toml``; every error names the file and the field."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rootseed.errors import RootseedError
from rootseed.tree.model import Source
from rootseed.tree.placeholders import (
    FILE_PLACEHOLDERS,
    expand,
    unknown_placeholders,
    version_forms,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class RawPackage:
    """A package.toml as written, before ``version_from`` and the Containerfile are resolved."""

    path: Path
    stage: str
    pname: str
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


def _fail(path: Path, where: str, what: str, hint: str | None = None) -> NoReturn:
    raise RootseedError(f"{path}: {where}: {what}", hint=hint)


def _string(path: Path, table: dict[str, Any], key: str, where: str,
            required: bool) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            _fail(path, where, f"missing required field {key!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(path, where, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _strings(path: Path, table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(path, where, f"{key!r} must be a list of strings, got {value!r}")
    return tuple(value)


def read_package_toml(path: Path, stage: str) -> RawPackage:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RootseedError(f"{path}: not valid TOML: {e}") from e
    except RecursionError:  # tomllib recurses per nested array/inline table
        raise RootseedError(f"{path}: not valid TOML: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RootseedError(f"{path}: cannot read: {e}") from e

    pkg = data.get("package")
    if not isinstance(pkg, dict):
        _fail(path, "[package]", "missing table", hint="every package.toml starts with [package]")
    pname = _string(path, pkg, "name", "[package]", required=True)
    assert pname is not None
    if not _NAME.fullmatch(pname):
        _fail(path, "[package] name", f"{pname!r} is not a valid package name")
    version = _string(path, pkg, "version", "[package]", required=False)
    version_from = _string(path, pkg, "version_from", "[package]", required=False)
    if version is not None and version_from is not None:
        _fail(path, "[package]", "'version' and 'version_from' are both set",
              hint="keep one: a version of its own, or version_from = \"<stage>-<name>\"")
    if version is None and version_from is None:
        _fail(path, "[package]", "missing 'version' (or 'version_from')")

    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, dict) for v in sources.values()):
        _fail(path, "[sources]", "each source must be a table [sources.<id>]")
    outputs = _read_outputs(path, data.get("outputs", {}))

    return RawPackage(
        path=path,
        stage=stage,
        pname=pname,
        version=version,
        version_from=version_from,
        description=_string(path, pkg, "description", "[package]", required=True) or "",
        license=_string(path, pkg, "license", "[package]", required=True) or "",
        website=_string(path, pkg, "website", "[package]", required=False),
        platforms=_strings(path, pkg, "platforms", "[package]"),
        subpackages=_strings(path, pkg, "subpackages", "[package]"),
        sources=sources,
        outputs=outputs,
    )


def _read_outputs(path: Path, table: object) -> dict[str, tuple[str, int]]:
    if not isinstance(table, dict):
        _fail(path, "[outputs]", "must be a table of \"path\" = [\"<sha256>\", <size>]")
    outputs: dict[str, tuple[str, int]] = {}
    for file, value in table.items():
        ok = (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
              and _SHA256.fullmatch(value[0]) is not None
              and isinstance(value[1], int) and value[1] >= 0)
        if not ok:
            _fail(path, f"[outputs] {file!r}", f"expected [\"<64 hex sha256>\", <size>], "
                  f"got {value!r}")
        outputs[file.lstrip("/")] = (value[0], value[1])
    return outputs


def resolve_source(path: Path, source_id: str, table: dict[str, Any],
                   package_version: str) -> Source:
    """Validate one ``[sources.<id>]`` table and expand its placeholders."""
    where = f"[sources.{source_id}]"
    digest = _string(path, table, "hash", where, required=True)
    assert digest is not None
    if not _SHA256.fullmatch(digest):
        _fail(path, f"{where} hash", f"must be 64 lowercase hex digits (sha256), got {digest!r}")
    version = _string(path, table, "version", where, required=False) or package_version
    fmt = _string(path, table, "format", where, required=False)
    git_sha = _string(path, table, "git_sha", where, required=False)
    seed = table.get("seed", False)
    if not isinstance(seed, bool):
        _fail(path, f"{where} seed", f"must be true or false, got {seed!r}")
    mirrors = _strings(path, table, "mirrors", where)
    if not mirrors:
        _fail(path, f"{where} mirrors", "at least one mirror URL is required")

    values = version_forms(version)
    if fmt is not None:
        values["format"] = fmt
    allowed = FILE_PLACEHOLDERS if fmt is not None else FILE_PLACEHOLDERS - {"format"}
    file_template = _string(path, table, "file", where, required=False)
    if file_template is not None:
        bad = unknown_placeholders(file_template, allowed)
        if bad:
            _fail(path, f"{where} file", f"unknown placeholder {{{bad[0]}}}",
                  hint=_placeholder_hint(allowed, "format" in bad))
        file = expand(file_template, values)
    else:
        file = ""
    expanded: list[str] = []
    for mirror in mirrors:
        bad = unknown_placeholders(mirror, allowed | {"file"})
        if bad:
            _fail(path, f"{where} mirrors", f"unknown placeholder {{{bad[0]}}} in {mirror!r}",
                  hint=_placeholder_hint(allowed | {"file"}, "format" in bad))
        if "{file}" in mirror and not file:
            _fail(path, f"{where} mirrors", f"{mirror!r} uses {{file}} but 'file' is not set")
        expanded.append(expand(mirror, {**values, "file": file}))
    if not file:
        file = expanded[0].rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if not file or "/" in file or file in (".", ".."):
        _fail(path, f"{where} file", f"{file!r} is not a usable file name")
    return Source(id=source_id, hash=digest, version=version, file=file,
                  mirrors=tuple(expanded), format=fmt, git_sha=git_sha, seed=seed)


def _placeholder_hint(allowed: frozenset[str], format_missing: bool) -> str:
    names = ", ".join("{" + n + "}" for n in sorted(allowed | (
        {"format"} if format_missing else set())))
    extra = " ({format} needs a 'format' field)" if format_missing else ""
    return f"known placeholders: {names}{extra}"

