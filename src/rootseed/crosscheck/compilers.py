"""The independent C compilers diverse double-compiling uses: Debian's gcc, clang, tcc.

A compiler is looked for on the host (in ``/usr/bin`` by default: the sandbox that runs
it binds the host's ``/usr`` read-only, so a compiler outside ``/usr`` could not run
there). One that is not installed is reported as missing, by name, and nothing is
done in its place.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: where compilers are looked for unless the caller says otherwise
DEFAULT_SEARCH = "/usr/bin"


@dataclass(frozen=True)
class CompilerKind:
    name: str
    version_args: tuple[str, ...]
    #: flags added to the makefile's own (-D_GNU_SOURCE -O0 -std=c99)
    flags: tuple[str, ...]
    why: str  # why these flags, for the report


#: M2 code relies on behaviour C leaves undefined (e.g. M2-Mesoplanet's spawn fails when
#: gcc builds it at -O2), so every build keeps the makefile's -O0. gcc and clang link
#: statically, so the programs need no library at run time; Debian's tcc cannot link
#: glibc statically ("Unknown relocation type for got: 23"), so its programs are linked
#: dynamically and run with the host's /usr bound read-only.
KINDS: tuple[CompilerKind, ...] = (
    CompilerKind("gcc", ("--version",), ("-static",), "-O0 from the makefile; static"),
    CompilerKind("clang", ("--version",), ("-static",), "-O0 from the makefile; static"),
    CompilerKind("tcc", ("-v",), (), "tcc does not optimise; dynamic (tcc cannot link "
                                     "glibc statically)"),
)
KNOWN = tuple(k.name for k in KINDS)


@dataclass(frozen=True)
class Compiler:
    name: str  # gcc, clang, tcc
    path: Path  # the host executable (absolute, as found)
    version: str  # e.g. 12.2.0
    flags: tuple[str, ...]  # added to the recipe's flags

    @property
    def label(self) -> str:
        """How the report names what this compiler reproduced."""
        return f"DDC: {self.name} {self.version}"

@dataclass(frozen=True)
class Missing:
    name: str
    reason: str


def version_of(text: str) -> str | None:
    """The version number in the first line of ``cc --version`` / ``tcc -v``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"(?:version\s+|\)\s+)(\d+(?:\.\d+)+)", first) or re.search(
        r"(\d+\.\d+(?:\.\d+)?)", first)
    return m.group(1) if m else None


def find_compilers(names: Sequence[str] = KNOWN, search: str = DEFAULT_SEARCH
                   ) -> tuple[list[Compiler], list[Missing]]:
    """The compilers of ``names`` found in ``search`` (a PATH-like list), and the rest
    with the reason each one is not used."""
    found: list[Compiler] = []
    missing: list[Missing] = []
    kinds = {k.name: k for k in KINDS}
    for name in names:
        kind = kinds.get(name)
        if kind is None:
            missing.append(Missing(name, f"unknown compiler (known: {', '.join(KNOWN)})"))
            continue
        where = shutil.which(name, path=search)
        if where is None:
            missing.append(Missing(name, f"not installed (no {name} in {search})"))
            continue
        try:
            r = subprocess.run([where, *kind.version_args], capture_output=True, text=True,
                               timeout=30, check=False, env={"PATH": search, "LC_ALL": "C"})
        except (OSError, subprocess.TimeoutExpired) as e:
            missing.append(Missing(name, f"{where} did not run: {e}"))
            continue
        version = version_of(r.stdout or r.stderr)
        if r.returncode != 0 or version is None:
            missing.append(Missing(name, f"{where} {' '.join(kind.version_args)} gave no "
                                         "version"))
            continue
        found.append(Compiler(name, Path(where), version, kind.flags))
    return found, missing
