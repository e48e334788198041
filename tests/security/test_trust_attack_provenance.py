"""Attacks on provenance: edited records, a changed tree, duplicate keys, unsigned links.

A real build of the offline examples tree (seed-hex0 → seed-hello). ``trace`` must refuse
provenance whose Containerfile digest or build args were edited, a tree that changed after
the build, duplicate JSON keys and a parent name that leaves out/; with --keyring it must
refuse provenance that is unsigned, signed by fewer than the quorum, or edited after it
was signed. Every test also checks that nothing on the host changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed import shipped
from rootseed.errors import ErrorKind
from trust_attack import canaries, run, snapshot
from trust_helpers import Keys, gpg

REGISTRY = "rootseed-examples"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("trust-prov")
    shutil.copytree(shipped.examples(), work / "tree")
    r = run_cli("build", "seed-hello", "--tree", work / "tree", "--offline", "--cache-dir",
                work / "cache", "--out", work / "out")
    assert r.returncode == 0, r.stderr
    return work


class World:
    def __init__(self, built: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.capsys = tmp, capsys
        shutil.copytree(built / "tree", tmp / "tree", symlinks=True)
        shutil.copytree(built / "out", tmp / "out", symlinks=True)
        self.tree, self.out, self.sigs = tmp / "tree", tmp / "out", tmp / "signatures"
        canaries(tmp / "host")

    def edit(self, package: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.out / package / "provenance.json"
        statement = json.loads(path.read_text())
        change(statement)
        path.write_text(json.dumps(statement, sort_keys=True, separators=(",", ":")) + "\n")

    def trace(self, *extra: str) -> tuple[int, str, str]:
        before = snapshot(self.root)
        result = run(self.capsys, "trace", "seed-hello", "--tree", str(self.tree), "--out",
                     str(self.out), "--cache-dir", str(self.root / "no-cache"), *extra)
        assert snapshot(self.root) == before  # trace only reads
        return result

    def sign(self, package: str, key: str, home: Path) -> None:
        code, _, err = run(self.capsys, "sign", package, "--key", key, "--gnupghome",
                           str(home), "--signatures", str(self.sigs), "--tree",
                           str(self.tree), "--out", str(self.out))
        assert code == 0, err

    def keyring(self, home: Path, *fprs: str) -> Path:
        path = self.root / "keyring.gpg"
        path.write_bytes(gpg(home, "--export", *fprs))
        return path


@pytest.fixture
def world(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> World:
    return World(built, tmp_path, capsys)


def deps(statement: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = statement["predicate"]["buildDefinition"][
        "resolvedDependencies"]
    return result


def refused(result: tuple[int, str, str], *needles: str,
            kind: ErrorKind = ErrorKind.PROVENANCE) -> None:
    """A ``trace --json`` that failed with an error of ``kind`` whose message (for people)
    names each of ``needles``: the package and what does not match."""
    code, out, err = result
    error = json.loads(out)["error"]
    assert (code, error["kind"]) == (1, kind.value), err
    text = " ".join(error["message"].split())
    for needle in needles:
        assert needle in text, text  # words: the message names what differs, for people


def test_untouched_build_traces_against_the_tree(world: World) -> None:
    code, out, err = world.trace("--json")
    assert code == 0, err
    verified = {n["package"]: n["verified"] for n in json.loads(out)["nodes"]}
    assert "Containerfile, build args, context files match the tree" in verified["seed-hello"]


def test_edited_containerfile_digest_is_refused(world: World) -> None:
    def forge(statement: dict[str, Any]) -> None:
        [cf] = [d for d in deps(statement) if d["annotations"]["kind"] == "containerfile"]
        cf["digest"]["sha256"] = "0" * 64

    world.edit("seed-hello", forge)
    refused(world.trace("--json"), "seed-hello: provenance at out/seed-hello/provenance.json does "
            "not match the tree", "Containerfile: recorded sha256 " + "0" * 64)


def test_edited_build_args_are_refused(world: World) -> None:
    def forge(statement: dict[str, Any]) -> None:
        args = statement["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"]
        args["VERSION"] = "2"
        args["EXTRA"] = "1"

    world.edit("seed-hex0", forge)
    refused(world.trace("--json"), "seed-hex0: provenance", "build arg VERSION: recorded '2', the "
            "tree gives '1'", "build arg EXTRA: recorded '1', the tree does not set it")


def test_tree_changed_after_the_build_is_refused(world: World) -> None:
    containerfile = world.tree / "seed" / "hello" / "Containerfile"
    containerfile.write_text(containerfile.read_text() + "# changed after the build\n")
    refused(world.trace("--json"), "seed-hello: provenance", "Containerfile: recorded sha256")


def test_context_file_added_after_the_build_is_refused(world: World) -> None:
    (world.tree / "seed" / "hex0" / "extra.txt").write_text("new\n")
    refused(world.trace("--json"), "seed-hex0: provenance",
            "context file extra.txt: in the tree, but not recorded")


def test_duplicate_json_keys_are_refused(world: World) -> None:
    path = world.out / "seed-hello" / "provenance.json"
    text = path.read_text()
    assert text.startswith('{"_type":')
    # a second "predicate" a lenient reader would take instead of the first
    path.write_text(text[:-2] + ',"predicate":{}}\n')
    refused(world.trace("--json"), "seed-hello: provenance", "duplicate key 'predicate'")


def test_parent_name_that_leaves_out_is_refused(world: World) -> None:
    def forge(statement: dict[str, Any]) -> None:
        [parent] = [d for d in deps(statement) if d["annotations"]["kind"] == "image"]
        parent["annotations"]["package"] = "../host"

    world.edit("seed-hello", forge)
    refused(world.trace("--json"), "is not an image name")


@pytest.fixture
def signed(world: World, keys: Keys, gnupghome: Path) -> tuple[World, Path]:
    """Both images (and so their provenance) signed by alice and bob; returns the keyring."""
    for package in ("seed-hex0", "seed-hello"):
        world.sign(package, keys.alice, gnupghome)
        world.sign(package, keys.bob, gnupghome)
    return world, world.keyring(gnupghome, keys.alice, keys.bob)


def test_signed_chain_meets_the_quorum_on_images_and_provenance(
        signed: tuple[World, Path]) -> None:
    world, keyring = signed
    code, out, err = world.trace("--keyring", str(keyring), "--signatures", str(world.sigs),
                                 "--json")
    assert code == 0, err
    nodes = json.loads(out)["nodes"]
    assert {n["quorum"] for n in nodes} == {"quorum 2/2 met"}
    assert {n["provenance_quorum"] for n in nodes} == {"provenance quorum 2/2 met"}


def _provenance_signatures(world: World, package: str) -> list[Path]:
    return sorted(world.sigs.glob(f"{REGISTRY}/{package}@sha256=*/provenance-*"))


def test_unsigned_provenance_is_refused(signed: tuple[World, Path]) -> None:
    world, keyring = signed
    for path in _provenance_signatures(world, "seed-hello"):
        path.unlink()
    refused(world.trace("--json", "--keyring", str(keyring), "--signatures", str(world.sigs)),
            "seed-hello", "is not signed by the quorum",
            "provenance: quorum 0/2 NOT met: no signatures",
            "parent links it names) cannot be trusted", kind=ErrorKind.QUORUM)


def test_provenance_under_the_quorum_is_refused(signed: tuple[World, Path]) -> None:
    world, keyring = signed
    _provenance_signatures(world, "seed-hex0")[-1].unlink()  # the parent: only alice left
    refused(world.trace("--json", "--keyring", str(keyring), "--signatures", str(world.sigs)),
            "seed-hex0", "provenance: quorum 1/2 NOT met: only 1 distinct trusted signer",
            kind=ErrorKind.QUORUM)


def test_provenance_edited_after_signing_is_refused(signed: tuple[World, Path]) -> None:
    world, keyring = signed

    def forge(statement: dict[str, Any]) -> None:  # passes every tree check
        statement["predicate"]["runDetails"]["builder"]["version"]["rootseed"] = "9.9.9"

    world.edit("seed-hello", forge)
    refused(world.trace("--json", "--keyring", str(keyring), "--signatures", str(world.sigs)),
            "seed-hello", "provenance: quorum 0/2 NOT met: provenance-1 bad-signature; "
            "provenance-2 bad-signature", kind=ErrorKind.QUORUM)
    assert world.trace()[0] == 0  # without --keyring the edit is invisible: hence signing


def test_provenance_that_is_a_fifo_or_a_symlink_is_refused(world: World) -> None:
    path = world.out / "seed-hex0" / "provenance.json"
    path.unlink()
    path.symlink_to(world.root / "host" / "secret")
    refused(world.trace("--json"), "seed-hex0: provenance", "is a symbolic link")
    path.unlink()
    os.mkfifo(path)
    before = snapshot(world.root)
    proc = subprocess.run([sys.executable, "-m", "rootseed", "trace", "seed-hello", "--tree",
                           str(world.tree), "--out", str(world.out), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in proc.stderr
    cli_error(proc, ErrorKind.PROVENANCE, exit_code=1, package="seed-hex0")
    assert snapshot(world.root) == before


def test_report_does_not_verify_what_trace_refuses(signed: tuple[World, Path]) -> None:
    """Provenance edited after signing (it passes every tree check): ``report --keyring``
    used to count the image as verified, showing only the image's own (met) quorum."""
    world, keyring = signed

    def forge(statement: dict[str, Any]) -> None:
        statement["predicate"]["runDetails"]["builder"]["version"]["rootseed"] = "9.9.9"

    world.edit("seed-hello", forge)
    reports = world.root / "reports"
    reports.mkdir()
    before = snapshot(world.root)
    code, out, err = run(world.capsys, "report", "-o", str(reports / "r.html"), "--json",
                         "--tree", str(world.tree), "--out", str(world.out), "--cache-dir",
                         str(world.root / "no-cache"), "--keyring", str(keyring),
                         "--signatures", str(world.sigs))
    assert code == 0, err
    data = json.loads(out)
    assert data["unsigned"] == data["not_verified"] == ["seed-hello"]
    assert data["verified"] == ["seed-hex0"]
    page = (reports / "r.html").read_text()
    assert 'class="node unsigned" data-package="seed-hello"' in page
    assert "provenance quorum 0/2 NOT met" in page
    after = snapshot(world.root)
    assert {k: v for k, v in after.items() if not k.startswith("reports/")} == before
