"""``rootseed trace`` checks recorded sources against the tree's package.toml pins."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed import shipped
from rootseed.errors import ErrorKind


def rootseed(*args: str) -> Result:
    return run_cli(*args)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pins")
    shutil.copytree(shipped.examples(), work / "tree")
    r = rootseed("build", "seed-hello", "--tree", str(work / "tree"), "--offline",
                 "--cache-dir", str(work / "cache"), "--out", str(work / "out"))
    assert r.returncode == 0, r.stderr
    return work


def trace(work: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return rootseed("trace", "seed-hello", "--tree", str(work / "tree"), "--out", str(out),
                    "--cache-dir", str(work / "nocache"), "--json")


def tampered_copy(work: Path, name: str, edit: object) -> Path:
    out = work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "out", out)
    path = out / "seed-hex0" / "provenance.json"
    statement = json.loads(path.read_text())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert callable(edit)
    edit(deps)
    path.write_text(json.dumps(statement, sort_keys=True, separators=(",", ":")) + "\n")
    return out


def test_untouched_provenance_matches_pins(built: Path) -> None:
    r = trace(built, built / "out")
    assert r.returncode == 0, r.stderr
    assert "sources match package.toml" in r.stdout


def test_edited_seed_hash_is_caught(built: Path) -> None:
    def swap_seed(deps: list[dict[str, object]]) -> None:
        seed = next(d for d in deps if d["name"] == "hex0-seed")
        seed["digest"] = {"sha256": "0" * 64}

    r = trace(built, tampered_copy(built, "seed", swap_seed))
    error = cli_error(r, ErrorKind.PROVENANCE, exit_code=1, package="seed-hex0")
    # words: names the source and what was recorded, for people
    assert "hex0-seed: recorded sha256 " + "0" * 64 in " ".join(error["message"].split())


def test_dropped_source_is_caught(built: Path) -> None:
    def drop_source(deps: list[dict[str, object]]) -> None:
        deps[:] = [d for d in deps if d["name"] != "hex0.hex0"]

    r = trace(built, tampered_copy(built, "drop", drop_source))
    error = cli_error(r, ErrorKind.PROVENANCE, exit_code=1, package="seed-hex0")
    # words: names the source that was dropped, for people
    assert "hex0.hex0: pinned in package.toml, but not recorded" in " ".join(
        error["message"].split())
