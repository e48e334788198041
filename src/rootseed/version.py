"""The version and the source revision this copy of rootseed was built from.

A wheel or sdist build writes the git revision into ``rootseed/_revision.txt`` (see
``setup.py``). A source checkout (editable install) has no such file; there the revision is
asked from git at run time, so it is never stale. Anything else is reported as "unknown
revision", never guessed.

``rootseed --version`` runs this at start-up, so it imports little: the version is the
package's own ``__version__`` (a test checks that the installed metadata says the same),
not ``importlib.metadata`` (which alone costs as much as the rest of start-up).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import rootseed
from rootseed import __version__

#: This package's directory (rootseed is always installed as files: it reads its data so).
PACKAGE = Path(rootseed.__file__).parent

REVISION = re.compile(r"[0-9a-f]{40}(-dirty)?")


def _embedded() -> str | None:
    try:
        text = (PACKAGE / "_revision.txt").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if REVISION.fullmatch(text) else None


def _git(cwd: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                           timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _checkout() -> str | None:
    """HEAD of the git checkout this package is imported from, if it is rootseed's own."""
    package = PACKAGE
    found = _git(package, "rev-parse", "--show-toplevel", "--verify", "HEAD")
    if found is None or len(found.splitlines()) != 2:
        return None
    top, head = found.splitlines()
    # Only a checkout whose src/rootseed is this very package: a wheel installed inside some
    # other repository (a venv in a project dir) must not report that project's revision.
    if (Path(top) / "src" / "rootseed").resolve() != package.resolve():
        return None
    dirty = _git(package, "status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


def revision() -> str | None:
    """The source revision (40 hex digits, "-dirty" if built with local changes) or None."""
    return _embedded() or _checkout()


def version() -> str:
    return __version__


def describe() -> str:
    """``0.1.0 (revision 0123…)`` or ``0.1.0 (unknown revision)``."""
    found = revision()
    return f"{version()} ({f'revision {found}' if found else 'unknown revision'})"
