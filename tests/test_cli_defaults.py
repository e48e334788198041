"""Safe defaults and up-front checks, as a new user meets them: ``cache prune`` needs an
explicit choice, a missing --mirror / --cache-dir / bubblewrap is one message before any
work, redirected output is never cut, each command lists only the options it uses, and
mistyped commands and package names get a "did you mean"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kinds import cli_error
from rootseed import shipped
from rootseed.errors import ErrorKind
from test_cache_maintenance import _entry


def rootseed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rootseed", *args], capture_output=True,
                          text=True, env=env, check=False, timeout=300)


def _one_package_tree(root: Path, name: str) -> Path:
    stage, _, short = name.partition("-")
    d = root / "packages" / stage / short
    d.mkdir(parents=True)
    (d / "package.toml").write_text(f'[package]\nname = "{short}"\nversion = "1.0"\n'
                                    'description = "x"\nlicense = "MIT"\n')
    (d / "Containerfile").write_text("FROM scratch\nCOPY note.txt /\n")
    (d / "note.txt").write_text("note\n")
    return root / "packages"


def test_cache_prune_without_a_choice_removes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = _entry(cache, "actions", "a" * 64, "action.json", 30)
    r = rootseed("cache", "prune", "--cache-dir", str(cache), "--json")
    message = cli_error(r, ErrorKind.USAGE, exit_code=2)["message"]
    assert "--keep-days N" in message and "--all" in message  # words: the choices, for people
    assert entry.exists()
    r = rootseed("cache", "prune", "--all", "--keep-days", "3", "--cache-dir", str(cache))
    assert r.returncode == 2 and entry.exists()
    r = rootseed("cache", "prune", "--all", "--cache-dir", str(cache))
    assert r.returncode == 0, r.stderr
    assert not entry.exists() and "removed 1 actions" in r.stdout


def test_missing_cache_dir_and_mirror_are_said_up_front(tmp_path: Path) -> None:
    r = rootseed("cache", "du", "--cache-dir", str(tmp_path / "nope"), "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=1)
    assert str(tmp_path / "nope") in error["message"]  # words: names the directory
    r = rootseed("fetch", "--mirror", str(tmp_path / "no-mirror"), "--cache-dir",
                 str(tmp_path / "c"), "--json")
    cli_error(r, ErrorKind.USAGE, exit_code=2)
    assert len([line for line in r.stderr.splitlines() if "no-mirror" in line]) == 1
    assert not (tmp_path / "c").exists()  # nothing was fetched


def test_missing_bubblewrap_is_one_message_before_any_work(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-path")}
    r = rootseed("build", "seed-hello", "--tree", str(shipped.examples()), "--offline",
                 "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--json",
                 env=env)
    assert cli_error(r, ErrorKind.SANDBOX, exit_code=1)["hint"]
    assert len(r.stderr.splitlines()) == 2  # the error and its hint, no step started
    assert not (tmp_path / "c").exists()


def test_redirected_output_is_never_cut(tmp_path: Path) -> None:
    name = "core-" + "a-very-long-package-name-" * 4 + "end"
    tree = _one_package_tree(tmp_path, name)
    r = rootseed("list", "--tree", str(tree))
    assert r.returncode == 0, r.stderr
    assert name in r.stdout and "…" not in r.stdout
    assert str(tree) in r.stdout


def test_help_lists_only_the_options_a_command_uses() -> None:
    def options(*command: str) -> set[str]:
        r = rootseed(*command, "--help")
        assert r.returncode == 0, r.stderr
        return {w.rstrip(",") for line in r.stdout.splitlines()
                for w in line.split() if w.startswith("--")}

    assert {"--tree", "--json"} <= options("list")
    assert not {"--out", "--jobs", "--mirror", "--cache-dir", "--offline"} & options("list")
    assert "--jobs" not in options("cache", "du") and "--cache-dir" in options("cache", "du")
    assert {"--tree", "--out", "--cache-dir", "--seed"} <= options("trace")
    assert not {"--jobs", "--mirror", "--offline"} & options("trace")
    assert {"--tree", "--mirror", "--cache-dir", "--out", "--offline", "--jobs"} <= options(
        "build")


def test_tool_help_is_in_the_same_style_and_exits_0(tmp_path: Path) -> None:
    r = rootseed("tool", "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: rootseed tool")
    assert "hex0" in r.stdout and "catm" in r.stdout
    r = subprocess.run([sys.executable, "-m", "rootseed", "tool", "catm", "--help"],
                       capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0 and "Usage: rootseed tool catm OUTPUT [INPUT...]" in r.stdout
    assert list(tmp_path.iterdir()) == []  # catm did not write a file named --help
    r = rootseed("tool", "hex0", "--help")
    assert r.returncode == 0 and "Usage: rootseed tool hex0 INPUT OUTPUT" in r.stdout


def test_did_you_mean(tmp_path: Path) -> None:
    r = rootseed("bild", "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=2)
    assert "Did you mean 'build'?" in error["message"]  # words: the suggestion, for people
    tree = _one_package_tree(tmp_path, "bootstrap-stage0")
    r = rootseed("build", "stage0", "--tree", str(tree), "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o"), "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=1, package="stage0")
    assert error["hint"] == "did you mean bootstrap-stage0?"


def test_verify_a_mistyped_package_says_no_such_package(tmp_path: Path) -> None:
    tree = _one_package_tree(tmp_path, "bootstrap-stage0")
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(b"")
    r = rootseed("verify", "bootstrap-stage00", "--keyring", str(keyring), "--tree", str(tree),
                 "--out", str(tmp_path / "o"), "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=1, package="bootstrap-stage00")
    assert error["hint"] == "did you mean bootstrap-stage0?"
    assert "index.json" not in r.stderr  # words: no image was looked for
