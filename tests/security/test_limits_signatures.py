"""Red-team: a flood of signature files against a big keyring is bounded work.

On main before this change every check handed Sequoia the whole keyring (it then looked
at each certificate): 200 copies of one signature against a 3,000-key keyring took
60-76 s, and 2,000 copies did not finish in 300 s; every signature-N up to the first gap
was read and checked, however many there were. Now the issuer's certificate is looked up
first and only it is handed to Sequoia, and at most ``store.MAX_FILES`` files per image
are read (the rest are reported as not counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pysequoia
import pytest

from rootseed.trust import payload, store
from trust_attack import canaries, snapshot
from trust_helpers import Keys, gpg, make_image

PKG = "bootstrap-stage0"
REGISTRY = "rootseed"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Cert.generate: fine for a test
def test_2000_signatures_against_a_3000_key_keyring(tmp_path: Path, keys: Keys,
                                                    gnupghome: Path) -> None:
    out, sigs = tmp_path / "out", tmp_path / "signatures"
    digest = make_image(out, PKG)
    directory = store.signature_dir(sigs, REGISTRY, PKG, digest)
    host = canaries(tmp_path / "host")
    one = gpg(gnupghome, "--local-user", keys.alice, "--sign",
              stdin=payload.build(f"{REGISTRY}/{PKG}:1.0", digest))
    store.add_signature(directory, one)
    for n in range(2, 2001):
        os.link(directory / "signature-1", directory / f"signature-{n}")
    others = b"".join(bytes(pysequoia.Cert.generate(f"k{n} <k{n}@example.org>"))
                      for n in range(2999))
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(gpg(gnupghome, "--export", keys.alice) + others)
    before = snapshot(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rootseed", "verify", PKG, "--keyring", str(keyring),
             "--quorum", "1", "--signatures", str(sigs), "--registry", REGISTRY,
             "--out", str(out), "--json"],
            capture_output=True, text=True, timeout=240, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("verifying 2,000 signature files did not finish in 240 s")
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert len(result["signatures"]) == store.MAX_FILES
    assert len(result["ignored"]) == 2000 - store.MAX_FILES
    assert result["valid_signers"] == [keys.alice]
    assert snapshot(tmp_path) == before
    assert host.is_dir()


def test_the_human_listing_of_files_not_counted_is_short(tmp_path: Path, keys: Keys,
                                                         gnupghome: Path) -> None:
    out, sigs = tmp_path / "out", tmp_path / "signatures"
    digest = make_image(out, PKG)
    directory = store.signature_dir(sigs, REGISTRY, PKG, digest)
    store.add_signature(directory, gpg(gnupghome, "--local-user", keys.alice, "--sign",
                                       stdin=payload.build(f"{REGISTRY}/{PKG}:1.0", digest)))
    for n in range(2, 400):
        os.link(directory / "signature-1", directory / f"signature-{n}")
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(gpg(gnupghome, "--export", keys.alice))
    proc = subprocess.run(
        [sys.executable, "-m", "rootseed", "verify", PKG, "--keyring", str(keyring),
         "--quorum", "1", "--signatures", str(sigs), "--registry", REGISTRY, "--out",
         str(out)], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    # words: a warning for people (the verify succeeds; warnings have no kind)
    assert "and 294 more" in proc.stderr and f"first {store.MAX_FILES}" in proc.stderr
