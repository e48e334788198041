"""``rootseed --version``: the version and the source revision, never a made-up one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rootseed import version


def test_no_embedded_file_and_no_git_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "_embedded", lambda: None)
    monkeypatch.setattr(version, "_git", lambda *_args: None)
    assert version.revision() is None
    assert version.describe() == f"{version.version()} (unknown revision)"


def test_embedded_revision_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "_embedded", lambda: "ab" * 20)
    assert version.describe() == f"{version.version()} (revision {'ab' * 20})"


def test_cli_prints_it() -> None:
    r = subprocess.run([sys.executable, "-m", "rootseed", "--version"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"rootseed {version.describe()}\n"
