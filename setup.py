"""Build hooks: embed the git revision rootseed is built from (see src/rootseed/version.py),
and compile the one C extension (rootseed.oci._goflate, Go-identical DEFLATE: see its source).

Everything else about the package is in pyproject.toml. The revision is written into the
wheel as ``rootseed/_revision.txt``; an sdist carries it as ``REVISION`` at its top, so a
wheel built from the sdist (where there is no git) still names the revision. With neither
git nor ``REVISION``, nothing is written and ``rootseed --version`` says "unknown revision".
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
REVISION_FILE = "_revision.txt"
REVISION = re.compile(r"[0-9a-f]{40}(-dirty)?")


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, text=True,
                           timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_revision() -> str | None:
    """HEAD of the checkout this file is in ("-dirty" with uncommitted changes), else None."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != HERE:
        return None  # not a checkout of rootseed itself (e.g. an unpacked sdist in a repo)
    head = _git("rev-parse", "--verify", "HEAD")
    if head is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if status else "")


def revision() -> str | None:
    found = git_revision()
    if found is None and (HERE / "REVISION").is_file():
        found = (HERE / "REVISION").read_text().strip()
    return found if found is not None and REVISION.fullmatch(found) else None


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        found = revision()
        # Editable installs run from the source tree: there the revision is read from git
        # at run time, so a stale one is never baked in.
        if found is not None and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "rootseed" / REVISION_FILE
            target.write_text(found + "\n")


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        found = revision()
        if found is not None:
            (Path(base_dir) / "REVISION").write_text(found + "\n")


# The compressor's output must not depend on how it is built: it uses integer arithmetic
# only, so any optimisation level gives the same bytes; no host-specific flags
# (-march=native) so a wheel built on one machine runs on another.
GOFLATE = Extension(
    "rootseed.oci._goflate",
    sources=["src/rootseed/oci/_goflate.c"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers"],
)

setup(cmdclass={"build_py": BuildPy, "sdist": Sdist}, ext_modules=[GOFLATE])
