"""The examples' golden digests (``rootseed/data/digests/seed.txt``) catch any change.

On a copy of the shipped data, one byte of an example's Containerfile is changed; then
``rootseed build --check`` and ``rootseed bootstrap --demo`` must both fail with a message
naming the recorded digest and the one built. The shipped tree is never modified.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clirun import Result, rootseed
from rootseed import shipped
from rootseed.bootstrap import DigestMismatch, bootstrap
from rootseed.engine.digests import read_digests
from rootseed.errors import ErrorKind
from rootseed.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (bwrap)")


def data_copy(root: Path) -> Path:
    """A copy of the shipped examples with its digests beside it; returns the tree."""
    shutil.copytree(shipped.examples(), root / "examples")
    shutil.copytree(shipped.digests(), root / "digests")
    return root / "examples"


def change_one_byte(containerfile: Path) -> None:
    data = bytearray(containerfile.read_bytes())
    # The image's ENTRYPOINT: the files (pinned by [outputs]) stay the same, so only the
    # golden digest can notice.
    at = data.index(b'ENTRYPOINT ["/bin/hello"]')
    data[at + len(b'ENTRYPOINT ["/bin/')] = ord("H")  # /bin/hello -> /bin/Hello
    containerfile.write_bytes(bytes(data))


def cli(*args: str, cwd: Path) -> Result:
    return rootseed(*args, cwd=cwd, env={"COLUMNS": "300"})


def test_unchanged_copy_passes_the_check(tmp_path: Path) -> None:
    tree = data_copy(tmp_path)
    r = cli("build", "seed-hello", "--check", "--tree", str(tree), "--offline",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_one_changed_byte_fails_build_check_naming_the_digest(tmp_path: Path) -> None:
    tree = data_copy(tmp_path)
    change_one_byte(tree / "seed" / "hello" / "Containerfile")
    recorded = read_digests(tmp_path / "digests")["seed-hello"]
    r = cli("build", "seed-hello", "--check", "--tree", str(tree), "--offline",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    message = " ".join(r.stderr.split())
    # words: names the recorded and the built digest, for people (test_build: the kind)
    assert f"recorded sha256:{recorded}" in message, message
    assert "seed-hello: built sha256:" in message


def test_one_changed_byte_fails_bootstrap_demo_naming_the_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = data_copy(tmp_path)
    change_one_byte(tree / "seed" / "hello" / "Containerfile")
    recorded = read_digests(tmp_path / "digests")
    monkeypatch.setattr("rootseed.bootstrap.default_examples", lambda: tree)
    settings = Settings(cache_dir=tmp_path / "cache", out=tmp_path / "out", offline=True,
                        json=True, jobs=2)
    with pytest.raises(DigestMismatch) as caught:
        bootstrap(settings, demo=True)
    message = caught.value.message
    assert caught.value.kind is ErrorKind.DIGEST_MISMATCH
    # words: names the image whose digest differs, and only that one, for people
    assert f"recorded sha256:{recorded['seed-hello']}" in message
    assert "seed-hex0" not in message  # the unchanged image still matches its digest
    assert "rootseed digests" in (caught.value.hint or "")
