"""digests/<stage>.txt is a reference: a differing recorded value is shown, never silently
replaced (``rootseed digests --replace`` replaces it); ``build --check`` says the build does
not reproduce it instead of calling it stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from buildtree import BUSYBOX, make_tree
from rootseed.engine.digests import RecordedDigestsDiffer, write_digests
from rootseed.errors import ErrorKind
from test_build import cli

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_write_adds_keeps_and_refuses_to_replace(tmp_path: Path) -> None:
    d = tmp_path / "digests"
    d.mkdir()
    (d / "core.txt").write_text(f"{A} core-x\n")
    with pytest.raises(RecordedDigestsDiffer) as e:
        write_digests(d, {"core-x": f"sha256:{B}", "core-y": C}, {"core-x": "core",
                                                                   "core-y": "core"})
    assert (d / "core.txt").read_text() == f"{A} core-x\n"  # nothing written
    assert e.value.kind is ErrorKind.DIGEST_MISMATCH
    # words: the message names each image, its recorded and its built digest, for people
    assert f"core-x: recorded sha256:{A} → built sha256:{B}" in e.value.message
    assert [(c.image, c.status) for c in e.value.changes] == [("core-x", "differs"),
                                                              ("core-y", "added")]
    changes, written = write_digests(d, {"core-x": B, "core-y": C},
                                     {"core-x": "core", "core-y": "core"}, replace=True)
    assert written == [d / "core.txt"]
    assert (d / "core.txt").read_text() == f"{B} core-x\n{C} core-y\n"
    changes, written = write_digests(d, {"core-x": B}, {"core-x": "core"})
    assert written == [] and [c.status for c in changes] == ["unchanged"]


@pytest.mark.skipif(not BUSYBOX.is_file() or shutil.which("bwrap") is None,
                    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")
def test_cli_check_and_digests_never_overwrite_a_published_value(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out",
              str(tmp_path / "o")]
    published = tmp_path / "digests" / "bootstrap.txt"
    published.parent.mkdir()
    published.write_text(f"{A} bootstrap-base\n")
    r = cli("build", "bootstrap-base", "--check", *common)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    # words: what is tested is the advice for people (never "stale"; challenge it)
    assert "stale" not in r.stderr and "records the current build" not in r.stderr
    assert "does not reproduce" in r.stderr and "rootseed challenge bootstrap-base" in r.stderr
    built = r.stdout.split()[0]
    r = cli("digests", "bootstrap-base", *common)
    assert r.returncode == 1, r.stdout
    assert published.read_text() == f"{A} bootstrap-base\n"
    # words: the message for people names the change and the way to replace it
    assert f"bootstrap-base: recorded sha256:{A} → built {built}" in r.stderr
    assert "--replace" in r.stderr
    r = cli("digests", "bootstrap-base", "--json", *common)
    assert r.returncode == 1 and published.read_text() == f"{A} bootstrap-base\n"
    assert json.loads(r.stdout)["changes"] == [{
        "image": "bootstrap-base", "stage": "bootstrap", "status": "differs",
        "recorded": f"sha256:{A}", "built": built}]
    r = cli("digests", "bootstrap-base", "--replace", *common)
    assert r.returncode == 0, r.stderr
    assert f"bootstrap-base: sha256:{A} → {built} (replaced)" in r.stdout
    assert published.read_text() == f"{built.removeprefix('sha256:')} bootstrap-base\n"
    r = cli("build", "bootstrap-base", "--check", *common)
    assert r.returncode == 0, r.stderr
