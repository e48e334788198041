"""Helpers for the trust attack tests (tests/security/test_trust_attack_*.py).

:func:`snapshot` records every path under a directory with its content digest, mode and
link count (never following symlinks), so a test can assert that a refused attack left
the host (canary files, the signature store, out/, the tree) exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from clirun import rootseed as run_cli

Entry = tuple[str, int, int]  # (content sha256 or link target or "", mode, link count)


def snapshot(root: Path) -> dict[str, Entry]:
    state: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = "-> " + os.readlink(path)
            else:
                content = ""
            state[path.relative_to(root).as_posix()] = (content, st.st_mode, st.st_nlink)
    return state


def canaries(directory: Path) -> Path:
    """A few host files an attacker would like to read, change or link to."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "secret").write_text("root-only secret\n")
    (directory / "secret").chmod(0o600)
    (directory / "public").write_text("public\n")
    return directory


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``rootseed ARGS`` in-process (tests/clirun.py): (exit code, stdout, stderr); never a
    traceback, never an internal error."""
    r = run_cli(*args)
    return r.returncode, r.stdout, r.stderr
