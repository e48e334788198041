"""File names rootseed cannot carry faithfully, found before they break a build.

A package directory is a build context: its file names go into cache keys, provenance
(JSON, UTF-8) and image layers (PAX headers, UTF-8). A name that is not valid UTF-8 has
no faithful form in any of them, so it is refused up front, as one problem of its
package: ``check`` reports it, ``build`` fails that package with the same message.
"""

from __future__ import annotations

import os
from pathlib import Path

from rootseed.errors import RootseedError


class BadFileName(RootseedError):
    """A file name in a build context that is not valid UTF-8."""

    def __init__(self, directory: Path, rel: str) -> None:
        self.rel = rel
        super().__init__(
            f"{shown(str(directory))}: the file name '{shown(rel)}' is not valid UTF-8",
            hint="rename it (file names in a build context go into cache keys, provenance "
                 "and image layers, which are all UTF-8)")


def shown(name: str) -> str:
    """``name`` printable: bytes that are not UTF-8 as ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by the OS as surrogates
        return False
    return True


def check_name(directory: Path, rel: str) -> None:
    """Raise :class:`BadFileName` when ``rel`` (inside ``directory``) is not UTF-8."""
    if not is_utf8(rel):
        raise BadFileName(directory, rel)


def first_bad_name(directory: Path) -> str | None:
    """The first path below ``directory`` (sorted walk) whose name is not UTF-8."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            if not is_utf8(name):
                return os.path.relpath(os.path.join(dirpath, name), directory)
    return None
