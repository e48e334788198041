"""How to build M2-Planet and M2-Mesoplanet with a host C compiler, read from their own
makefiles (pure: text in, recipe out).

Both projects ship a ``makefile`` whose rule for the program is one ``$(CC) $(CFLAGS)``
command naming every file, M2libc's ``bootstrappable.c`` included, then ``-o`` the
program. The recipe is that file list and the flags in ``CFLAGS`` that change what the
code means (``-D``, ``-O``, ``-std``), read from the pinned source at run time, so a
different pin brings its own list.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from rootseed.errors import ErrorKind, RootseedError

#: the programs diverse double-compiling builds → the output their makefile rule names
PROGRAMS = {"M2-Planet": "bin/M2-Planet", "M2-Mesoplanet": "bin/M2-Mesoplanet"}

#: CFLAGS that change the meaning of the code; warnings (-W…, -pedantic) and debug
#: information (-g…) do not and are left out.
_MEANINGFUL = ("-D", "-U", "-O", "-std=")


class RecipeError(RootseedError):
    """A makefile does not say how to build the program."""

    kind = ErrorKind.CROSSCHECK


@dataclass(frozen=True)
class Recipe:
    program: str  # "M2-Planet" or "M2-Mesoplanet"
    sources: tuple[str, ...]  # C files, relative to the project's top directory
    cflags: tuple[str, ...]  # from CFLAGS: only the flags that change the code's meaning

    @property
    def uses_m2libc(self) -> bool:
        return any(s.startswith("M2libc/") for s in self.sources)


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash-newline continuations joined."""
    return re.sub(r"\\\r?\n", " ", text).splitlines()


def _cflags(lines: list[str]) -> tuple[str, ...]:
    flags: list[str] = []
    for line in lines:
        m = re.match(r"^\s*CFLAGS\s*[:+?]?=\s*(.*)$", line)
        if m is None:
            continue
        flags += [w for w in m.group(1).split()
                  if w.startswith(_MEANINGFUL) and "$" not in w]
    return tuple(flags)


def parse_makefile(text: str, program: str) -> Recipe:
    """The recipe of ``program`` (a key of :data:`PROGRAMS`) in a makefile's text."""
    output = PROGRAMS[program]
    lines = _logical_lines(text)
    target = ""
    for line in lines:
        if re.match(r"^[^\s:#=]+\s*(::?=|[+?!]?=)", line):
            continue  # a variable assignment
        if line and not line[0].isspace() and ":" in line:
            target = line.split(":", 1)[0].strip()
            continue
        if not line.startswith("\t"):
            continue
        words = line.split()
        if len(words) < 2 or words[0] != "$(CC)" or "-o" not in words:
            continue
        out = words[words.index("-o") + 1] if words.index("-o") + 1 < len(words) else ""
        if (target if out == "$@" else out) != output:
            continue
        files = [w for w in words[1:] if not w.startswith(("-", "$")) and w != out]
        sources = tuple(f for f in files if f.endswith(".c"))
        # Headers on the command line are not translation units (gcc would write a
        # precompiled header for each); the .c files include them.
        if not sources or any(not _safe(f) for f in files):
            raise RecipeError(f"the makefile rule for {output} names unusable files: "
                              f"{' '.join(files)}")
        return Recipe(program, sources, _cflags(lines))
    raise RecipeError(f"no makefile rule runs $(CC) ... -o {output}",
                      hint="the pinned source is not a M2-Planet/M2-Mesoplanet release "
                           "with the usual makefile")


def _safe(path: str) -> bool:
    """A relative path that stays inside the project directory."""
    norm = posixpath.normpath(path)
    return not path.startswith("/") and norm != ".." and not norm.startswith("../")
