"""``{placeholder}`` expansion in ``file`` and ``mirrors`` (the names StageX uses)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([^{}]*)\}")

#: Placeholders allowed in ``file``; ``mirrors`` may also use ``{file}``.
FILE_PLACEHOLDERS = frozenset({
    "version", "version_major", "version_major_minor", "version_dash", "version_under",
    "version_strip_suffix", "format",
})
MIRROR_PLACEHOLDERS = FILE_PLACEHOLDERS | {"file"}


def version_forms(version: str) -> dict[str, str]:
    """Every spelling of a version that templates and build args can refer to."""
    parts = version.split(".")
    return {
        "version": version,
        "version_major": parts[0],
        "version_major_minor": ".".join(parts[:2]),
        "version_dash": version.replace(".", "-"),
        "version_under": version.replace(".", "_"),
        "version_strip_suffix": version.split("-", 1)[0],
    }


def unknown_placeholders(template: str, allowed: frozenset[str]) -> list[str]:
    return [name for name in _FIELD.findall(template) if name not in allowed]


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` by ``values[name]``; callers check names first."""
    return _FIELD.sub(lambda m: values[m.group(1)], template)
