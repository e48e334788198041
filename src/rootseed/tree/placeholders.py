"""``{placeholder}`` expansion in ``file`` and ``mirrors`` (the names StageX uses)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_FIELD = re.compile(r"\{([^{}]*)\}")

#: Placeholders allowed in ``file``; ``mirrors`` may also use ``{file}`` (StageX fetch.py).
FILE_PLACEHOLDERS = frozenset({
    "version", "version_major", "version_major_minor", "version_dash", "version_under",
    "version_strip_suffix", "format",
})

#: What StageX's targets.py can put in ``<ID>_SOURCE`` (its ``str.format`` knows no other).
ARG_FILE_PLACEHOLDERS = frozenset({"version", "version_dash", "version_under", "format"})


def version_forms(version: str) -> dict[str, str]:
    """Every spelling of a version that templates and build args can refer to.

    Exactly StageX's ``CommonUtils`` (src/common.py): a version without a dot has no
    major.minor there; its ``version_to_major_minor`` returns None, which StageX's
    f-strings and ``str.format`` spell "None". Kept, so rootseed hands a Containerfile
    the same values StageX does.
    """
    parts = version.split(".")
    return {
        "version": version,
        "version_major": parts[0],
        "version_major_minor": ".".join(parts[:2]) if len(parts) >= 2 else "None",
        "version_dash": version.replace(".", "-"),
        "version_under": version.replace(".", "_"),
        "version_strip_suffix": version.split("-", 1)[0],
    }


def placeholders(template: str) -> list[str]:
    return _FIELD.findall(template)


def unknown_placeholders(template: str, allowed: frozenset[str]) -> list[str]:
    return [name for name in _FIELD.findall(template) if name not in allowed]


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` by ``values[name]``; callers check names first."""
    return _FIELD.sub(lambda m: values[m.group(1)], template)
