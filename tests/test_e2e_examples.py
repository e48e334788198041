"""The whole path on the shipped example tree, offline, through the real command line.

fetch → build → an independent second build elsewhere (same digests) → sign with two keys
→ verify (quorum 2 passes, 3 fails) → trace back to our own seed (whose sha256 is what
rootseed's Python hex0 makes of ``seeds/x86/hex0.hex0``) → challenge (identical).

Every step runs ``python -m rootseed`` in a subprocess and checks what it printed (JSON
where there is JSON) against values computed here, so any broken link fails the test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed import shipped
from rootseed.errors import ErrorKind
from rootseed.tools.hex0 import assemble
from trust_helpers import Keys, gpg

EXAMPLES = shipped.examples()
SEED_SOURCE = shipped.seeds() / "x86" / "hex0.hex0"
NAMESPACE = "rootseed-examples"
PACKAGES = ("seed-hex0", "seed-hello")

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)")


def rootseed(*args: str, cwd: Path, expect: int = 0) -> Result:
    return run_cli(*args, cwd=cwd, expect=expect)


def rootseed_json(*args: str, cwd: Path, expect: int = 0) -> dict[str, Any]:
    data = json.loads(rootseed(*args, "--json", cwd=cwd, expect=expect).stdout)
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Workspace:
    """A copy of the example tree with its own cache and out dir, used from ``cwd``."""

    cwd: Path
    tree: Path
    cache: Path
    out: Path

    @classmethod
    def make(cls, cwd: Path, tree_rel: str) -> Workspace:
        cwd.mkdir(parents=True)
        tree = cwd / tree_rel
        shutil.copytree(EXAMPLES, tree)
        return cls(cwd, tree, cwd / "cache", cwd / "out")

    def common(self) -> tuple[str, ...]:
        return ("--tree", str(self.tree), "--cache-dir", str(self.cache), "--out",
                str(self.out), "--offline")

    def build(self) -> dict[str, str]:
        data = rootseed_json("build", "seed-hello", *self.common(), cwd=self.cwd)
        digests = {r["package"]: r["manifest_digest"] for r in data["results"]}
        assert set(digests) == set(PACKAGES), data
        assert data["check"] == []
        assert not any(r["cached"] for r in data["results"]), "a fresh cache built nothing?"
        for package, digest in digests.items():
            index = json.loads((self.out / package / "index.json").read_text())
            assert index["manifests"][0]["digest"] == digest
        return digests


def pinned_sources() -> dict[tuple[str, str], str]:
    """(package, source id) → sha256, read from the example tree's package.toml files."""
    pins: dict[tuple[str, str], str] = {}
    for package in PACKAGES:
        stage, name = package.split("-", 1)
        data = tomllib.loads((EXAMPLES / stage / name / "package.toml").read_text())
        for source_id, source in data["sources"].items():
            pins[(package, source_id)] = source["hash"]
    return pins


def test_examples_end_to_end(tmp_path: Path, keys: Keys, gnupghome: Path) -> None:
    first = Workspace.make(tmp_path / "first", "tree")
    second = Workspace.make(tmp_path / "second" / "somewhere else", "nested/examples copy")

    # fetch, offline: every pinned source verified into the content-addressed cache
    fetched = rootseed_json("fetch", *first.common(), cwd=first.cwd)["fetched"]
    pins = pinned_sources()
    assert {(f["package"], f["source"]): f["sha256"] for f in fetched} == pins
    for f in fetched:
        path = Path(f["path"])
        assert path == first.cache / "sources" / "sha256" / f["sha256"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]

    # build, then an independent build: other tree location, cache, out and cwd
    digests = first.build()
    assert second.build() == digests

    # sign seed-hello's digest with two throwaway keys
    sigs = tmp_path / "signatures"
    signers = []
    for key in (keys.alice, keys.bob):
        signed = rootseed_json("sign", "seed-hello", "--key", key, "--gnupghome",
                               str(gnupghome), "--signatures", str(sigs), *first.common(),
                               cwd=first.cwd)
        assert signed["digest"] == digests["seed-hello"]
        assert signed["reference"] == f"{NAMESPACE}/seed-hello:1"
        signers.append(signed["signer"])
    assert signers == [keys.alice, keys.bob]
    sigdir = sigs / NAMESPACE / f"seed-hello@sha256={digests['seed-hello'].split(':')[1]}"
    assert sorted(p.name for p in sigdir.iterdir()) == [
        "provenance-1", "provenance-2", "signature-1", "signature-2"]  # provenance.json too

    # verify: quorum 2 of the two trusted keys passes (for either build); 3 of 3 fails
    two = tmp_path / "two-keys.gpg"
    two.write_bytes(gpg(gnupghome, "--export", keys.alice, keys.bob))
    three = tmp_path / "three-keys.gpg"
    three.write_bytes(gpg(gnupghome, "--export", keys.alice, keys.bob, keys.mallory))
    for ws in (first, second):
        verdict = rootseed_json("verify", "seed-hello", "--keyring", str(two), "--quorum", "2",
                                "--signatures", str(sigs), *ws.common(), cwd=ws.cwd)
        assert verdict["passed"] is True and verdict["digest"] == digests["seed-hello"]
        assert sorted(verdict["valid_signers"]) == sorted([keys.alice, keys.bob])
    verdict = rootseed_json("verify", "seed-hello", "--keyring", str(three), "--quorum", "3",
                            "--signatures", str(sigs), *first.common(), cwd=first.cwd,
                            expect=1)
    assert verdict["passed"] is False and verdict["valid"] == 2 and verdict["quorum"] == 3
    unsigned = rootseed_json("verify", "seed-hex0", "--keyring", str(two), "--signatures",
                             str(sigs), *first.common(), cwd=first.cwd, expect=1)
    assert unsigned["passed"] is False and unsigned["signatures"] == []

    # trace --keyring requires the quorum on every image and its provenance: seed-hex0 is
    # unsigned, so the chain is refused until it is signed too
    refused = rootseed("trace", "seed-hello", "--keyring", str(two), "--signatures",
                       str(sigs), *first.common(), "--json", cwd=first.cwd, expect=1)
    cli_error(refused, ErrorKind.QUORUM, exit_code=1, package="seed-hex0")
    for key in (keys.alice, keys.bob):
        rootseed_json("sign", "seed-hex0", "--key", key, "--gnupghome", str(gnupghome),
                      "--signatures", str(sigs), *first.common(), cwd=first.cwd)

    # trace: seed-hello ← seed-hex0 ← our seed, with each image's quorum
    seed_sha = hashlib.sha256(assemble(SEED_SOURCE.read_bytes())).hexdigest()
    chain = rootseed_json("trace", "seed-hello", "--keyring", str(two), "--signatures",
                          str(sigs), *first.common(), cwd=first.cwd)
    assert chain["root"] == {"package": "seed-hello", "digest": digests["seed-hello"]}
    nodes = {n["package"]: n for n in chain["nodes"]}
    assert [n["package"] for n in chain["nodes"]] == ["seed-hex0", "seed-hello"]
    assert nodes["seed-hello"]["parents"] == [{"package": "seed-hex0",
                                               "digest": digests["seed-hex0"]}]
    assert nodes["seed-hex0"]["parents"] == []
    assert nodes["seed-hex0"]["digest"] == digests["seed-hex0"]
    seeds = [s for s in nodes["seed-hex0"]["sources"] if s["seed"]]
    assert [(s["file"], s["sha256"]) for s in seeds] == [("hex0-seed", seed_sha)]
    assert hashlib.sha256((first.tree / "mirror" / "hex0-seed").read_bytes()).hexdigest() \
        == seed_sha
    assert f"seed: hex0-seed sha256 {seed_sha}" in nodes["seed-hex0"]["verified"]
    assert nodes["seed-hello"]["quorum"] == nodes["seed-hex0"]["quorum"] == "quorum 2/2 met"
    assert {n["provenance_quorum"] for n in chain["nodes"]} == {"provenance quorum 2/2 met"}
    text = rootseed("trace", "seed-hello", *first.common(), cwd=first.cwd)
    # words: the summary for people (the --json trace above is checked field by field)
    assert "2 images verified back to the seed" in text.stderr
    assert seed_sha in "".join(text.stderr.split())

    # challenge: an independent rebuild (fresh cache, other conditions) is identical
    result = rootseed_json("challenge", "seed-hello", *first.common(), cwd=first.cwd)
    assert result["verdict"] == "identical", result
    assert result["recorded"] == result["rebuilt"] == digests["seed-hello"]
    assert result["differences"] == []
