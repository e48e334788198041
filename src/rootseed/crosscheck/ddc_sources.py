"""Find M2-Planet, M2-Mesoplanet and M2libc among a package's pinned source archives.

They are recognised by what they hold, not by their names in ``package.toml``: the
project whose ``makefile`` has a rule building ``bin/M2-Planet`` (resp.
``bin/M2-Mesoplanet``), and the archive with ``bootstrappable.c`` and ``stdlib.c`` at its
top (M2libc, a git submodule of both projects, pinned as its own archive).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rootseed.crosscheck.recipe import PROGRAMS, Recipe, RecipeError, parse_makefile

_MAX_MAKEFILE = 1 << 20


@dataclass(frozen=True)
class Project:
    archive: Path  # the verified source archive
    top: str  # its top directory (``M2-Planet-<commit>``)
    recipe: Recipe


@dataclass(frozen=True)
class DdcSources:
    projects: dict[str, Project]  # program → where its recipe came from
    m2libc: tuple[Path, str] | None  # (archive, top directory)


def _top(names: list[str]) -> str | None:
    tops = {n.split("/", 1)[0] for n in names if n.strip("/")}
    return tops.pop() if len(tops) == 1 else None


def scan(archives: Iterable[Path]) -> DdcSources:
    """Look into each archive once (names and the top-level ``makefile`` only)."""
    projects: dict[str, Project] = {}
    m2libc: tuple[Path, str] | None = None
    for archive in sorted(archives):
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                top = _top([m.name for m in members])
                if top is None:
                    continue
                files = {m.name: m for m in members if m.isfile()}
                if f"{top}/bootstrappable.c" in files and f"{top}/stdlib.c" in files:
                    m2libc = m2libc or (archive, top)
                makefile = files.get(f"{top}/makefile")
                if makefile is None or makefile.size > _MAX_MAKEFILE:
                    continue
                f = tar.extractfile(makefile)
                text = f.read().decode("utf-8", "replace") if f is not None else ""
        except (tarfile.TarError, OSError, EOFError):
            continue  # not an archive (e.g. the seed): nothing to find in it
        for program in PROGRAMS:
            try:
                recipe = parse_makefile(text, program)
            except RecipeError:
                continue
            missing = [s for s in recipe.sources
                       if f"{top}/{s}" not in files and not s.startswith("M2libc/")]
            if not missing and program not in projects:
                projects[program] = Project(archive, top, recipe)
    return DdcSources(projects, m2libc)
