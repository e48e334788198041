"""``rootseed bootstrap``: refusal before anything runs, the offline demo, the real chain."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from bootstrapped import Bootstrapped
from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed import shipped
from rootseed.errors import ErrorKind

MIRROR = os.environ.get("ROOTSEED_MIRROR")
needs_mirror = pytest.mark.skipif(
    not MIRROR, reason="set ROOTSEED_MIRROR=<dir> with the pinned stage0 tarballs and hex0-seed")


PINNED = "f74dcf9cef2aee9eb7723eca755849d474fccd89662947021d1aa08429d23c13"  # hex0-seed


def rootseed(*args: str, cwd: Path | None = None) -> Result:
    return run_cli(*args, cwd=cwd, env={"COLUMNS": "200"})


def test_no_network_no_mirror_lists_files_and_ways_out(tmp_path: Path) -> None:
    r = rootseed("bootstrap", "--offline", "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "out"), "--json")
    cli_error(r, ErrorKind.FETCH, exit_code=1)
    text = " ".join(r.stderr.split())
    # words: the message lists the files and the ways out, for people
    for name in ("hex0-seed", "stage0-posix-x86-a15adc72f099506fb0d40c8824d7aaa97735f7c3.tar.gz",
                 "M2-Planet-5c251e67e28e0a441589b9c3f5150758b8034998.tar.gz"):
        assert name in text  # words: as above
    # words: as above
    assert "f74dcf9cef2aee9eb7723eca755849d474fccd89662947021d1aa08429d23c13" in text
    assert "--mirror DIR" in text and "rootseed bootstrap --demo" in text
    assert not (tmp_path / "out").exists()


def test_demo_builds_our_own_seed_chain_offline(tmp_path: Path) -> None:
    r = rootseed("bootstrap", "--demo", "--offline", "--json", "--cache-dir",
                 str(tmp_path / "c"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["demo"] is True and report["package"] == "seed-hello"
    from rootseed.tools.hex0 import assemble

    ours = assemble((shipped.seeds() / "x86" / "hex0.hex0").read_bytes())
    import hashlib

    assert report["seed"]["sha256"] == hashlib.sha256(ours).hexdigest()
    assert [t["path"] for t in report["tools"]] == ["bin/hello"]
    assert all(t["expected"] for t in report["tools"])
    human = rootseed("bootstrap", "--demo", "--offline", "--cache-dir", str(tmp_path / "c"),
                     "--out", str(tmp_path / "out"))
    assert human.returncode == 0
    assert "rootseed's own seed" in human.stdout and "(cached)" in human.stdout


@needs_mirror
def test_tampered_seed_is_refused_before_anything_runs(tmp_path: Path) -> None:
    assert MIRROR is not None
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    seed = mirror / "hex0-seed"
    seed.chmod(0o644)
    data = bytearray(seed.read_bytes())
    data[100] ^= 0x01
    seed.write_bytes(bytes(data))
    r = rootseed("bootstrap", "--mirror", str(mirror), "--offline", "--cache-dir",
                 str(tmp_path / "c"), "--out", str(tmp_path / "out"), "--json")
    cli_error(r, ErrorKind.FETCH, exit_code=1)
    text = " ".join(r.stderr.split())
    # words: the message names the seed and what is pinned, for people
    assert "sha256 mismatch for hex0-seed" in text
    assert f"does not match the pinned sha256 {PINNED}" in text
    actual = hashlib.sha256(bytes(data)).hexdigest()
    # words: a local file's own hash is never shown (it could be any host file's)
    assert actual not in text
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "c" / "builds").exists()  # nothing was built


@needs_mirror
@pytest.mark.mirror
def test_real_bootstrap_matches_recorded_digest(stage0_bootstrapped: Bootstrapped) -> None:
    # the run's one `rootseed bootstrap --mirror … --json` on the chain built from the seed
    # in this run (see conftest.py); its crosscheck is the first on this cache: replayed
    report = stage0_bootstrapped.report
    assert len(report["tools"]) == 20 and all(t["expected"] for t in report["tools"])
    recorded = (shipped.digests() / "bootstrap.txt").read_text().split()[0]
    assert report["manifest_digest"] == f"sha256:{recorded}"
    lines = report["crosscheck"]
    assert lines and all(line["identical"] and not line.get("recalled") for line in lines)
