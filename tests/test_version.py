"""``rootseed --version``: the version and the source revision, never a made-up one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clirun import rootseed
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
    r = rootseed("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"rootseed {version.describe()}\n"


def test_the_version_is_the_installed_distributions() -> None:
    """``--version`` reads ``__version__`` (no importlib.metadata at start-up): it must be
    what the installed package's metadata (from pyproject.toml) says."""
    from importlib import metadata

    assert version.version() == metadata.version("rootseed")


def test_version_imports_no_command_module() -> None:
    """Start-up stays small: ``--version`` loads no command, not even click, nor rich,
    httpx, pysequoia or dockerfile (each is imported when a command that needs it runs)."""
    code = ("import sys\nfrom rootseed.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    loaded = set(r.stdout.split("\n")[-2].split())
    heavy = {"click", "rich", "httpx", "pysequoia", "dockerfile", "importlib.metadata",
             "rootseed.console", "rootseed.tree", "rootseed.engine", "traceback"}
    assert loaded & heavy == set()
    assert not {m for m in loaded if m.startswith("rootseed.cli.")}
