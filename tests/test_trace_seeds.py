"""A chain may end in a seed the tree does not mark (StageX's stage0 ADDs its pinned
``hex0-seed`` as a context file): recognised by sha256 (known seeds, ``--seed``), and
``trace`` says which file was taken as the seed and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kinds import cli_error, raises_kind
from provenance_fixtures import (
    CHILD_PKG,
    GRANDCHILD_PKG,
    NAMESPACE,
    SEED_BYTES,
    SEED_PKG,
    SEED_SHA,
    sha,
    three_level_chain,
    write_layout,
)
from rootseed.engine.record import BuildRecord
from rootseed.errors import ErrorKind
from rootseed.provenance.report import collect
from rootseed.provenance.seeds import KNOWN_SEEDS, SeedPolicy, parse_seed_option
from rootseed.provenance.statement import write_statement
from rootseed.provenance.trace import Tracer

STAGEX_SEED = "f74dcf9cef2aee9eb7723eca755849d474fccd89662947021d1aa08429d23c13"


def _stagex_like_stage0(out: Path, seed_sha: str) -> str:
    """FROM scratch, no source marked as a seed, the seed ADDed from the package dir."""
    digest = write_layout(out / "bootstrap-stage0", b"stage0 image")
    write_statement(out / "bootstrap-stage0", BuildRecord(
        package="bootstrap-stage0", version="", namespace=NAMESPACE,
        containerfile_sha256=sha(b"FROM scratch"), target=None,
        build_args={"SOURCE_DATE_EPOCH": "1"}, sources=(), parents=(),
        manifest_digest=digest, rootseed_version="0.1.0",
        context_files={"hex0-seed": seed_sha, "notes.txt": sha(b"notes")}))
    return digest


def test_stagex_seed_is_known_by_its_hash() -> None:
    assert STAGEX_SEED in {k.sha256 for k in KNOWN_SEEDS}


def test_context_file_with_the_known_seed_hash_ends_the_chain(tmp_path: Path) -> None:
    _stagex_like_stage0(tmp_path, STAGEX_SEED)
    node = Tracer(tmp_path).trace("bootstrap-stage0")
    [seed] = node.recognised
    assert (seed.file, seed.kind, seed.sha256) == ("hex0-seed", "context file", STAGEX_SEED)
    assert "known hex0-seed (i386)" in seed.why
    assert [s.file for s in node.seeds] == ["hex0-seed"]
    assert any(v.startswith("seed: hex0-seed (context file)") for v in node.verified)
    # the report paints it traced, not broken
    [info] = collect(tmp_path)
    assert info.status == "verified" and info.detail["seeds"][0]["file"] == "hex0-seed"


def test_other_context_file_is_no_seed(tmp_path: Path) -> None:
    _stagex_like_stage0(tmp_path, sha(b"some other file"))
    with raises_kind(ErrorKind.PROVENANCE, package="bootstrap-stage0") as e:
        Tracer(tmp_path).trace("bootstrap-stage0")
    assert "--seed" in (e.value.hint or "")
    [info] = collect(tmp_path)
    assert info.status == "broken"


def test_seed_option_by_hash_and_by_file(tmp_path: Path) -> None:
    three_level_chain(tmp_path / "out", seed_marked=False)
    with raises_kind(ErrorKind.PROVENANCE, package=SEED_PKG):
        Tracer(tmp_path / "out").trace(GRANDCHILD_PKG)
    node = Tracer(tmp_path / "out", seeds=SeedPolicy().with_given([SEED_SHA])
                  ).trace(GRANDCHILD_PKG)
    [seed_node] = [n for n in node.walk() if n.package == SEED_PKG]
    assert "given with --seed" in seed_node.recognised[0].why
    seed_file = tmp_path / "my-seed"
    seed_file.write_bytes(SEED_BYTES)
    assert parse_seed_option(str(seed_file)) == (SEED_SHA, str(seed_file))
    with raises_kind(ErrorKind.USAGE):
        parse_seed_option(str(tmp_path / "absent"))


def test_cli_trace_names_the_seed_and_why(tmp_path: Path) -> None:
    out = tmp_path / "out"
    three_level_chain(out, seed_marked=False)
    seed_file = tmp_path / "my-seed"
    seed_file.write_bytes(SEED_BYTES)
    common = ["--out", str(out), "--cache-dir", str(tmp_path / "c"), "--tree",
              str(tmp_path / "none")]
    run = [sys.executable, "-m", "rootseed", "trace", GRANDCHILD_PKG, *common]
    r = subprocess.run([*run, "--json"], capture_output=True, text=True, check=False)
    error = cli_error(r, ErrorKind.PROVENANCE, exit_code=1, package=SEED_PKG)
    assert "--seed FILE|SHA256" in error["hint"]  # words: says what to do, for people
    r = subprocess.run([*run, "--seed", str(seed_file)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    # words: the report says why this seed was taken, for people (not an error)
    assert (f"seed: hex0-seed (source of {SEED_PKG}), taken as the seed because its sha256 "
            f"is the one given with --seed {seed_file}") in " ".join(r.stderr.split())
    assert CHILD_PKG in r.stdout
