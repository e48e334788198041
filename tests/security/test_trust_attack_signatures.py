"""Attacks on signature verification: weak algorithms and the signature numbering.

Each test asserts the attack is refused with a reason per signature and that nothing on
the host changed (the store, out/, the keyring and canary files: content, mode, links).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rootseed.trust import payload, store
from trust_attack import canaries, run, snapshot
from trust_helpers import Keys, fingerprints, gpg, make_image, short_gnupghome

PKG = "bootstrap-stage0"
REGISTRY = "rootseed"
REFERENCE = f"{REGISTRY}/{PKG}:1.0"


@dataclass(frozen=True)
class WeakKeys:
    home: Path
    rsa1024: str
    rsa2048: str
    dsa1024: str


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeakKeys]:
    """Keys the policy refuses (RSA/DSA 1024) and an RSA-2048 key, made by real GnuPG."""
    with short_gnupghome() as home:
        made = {}
        for uid, algo in (("RSA1024 <r1@example.org>", "rsa1024"),
                          ("RSA2048 <r2@example.org>", "rsa2048"),
                          ("DSA1024 <d1@example.org>", "dsa1024")):
            gpg(home, "--quick-gen-key", uid, algo, "sign", "0")
            made[algo] = fingerprints(home, uid)[0]
        yield WeakKeys(home, made["rsa1024"], made["rsa2048"], made["dsa1024"])


class World:
    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp, capsys
        self.out, self.sigs = tmp / "out", tmp / "signatures"
        self.digest = make_image(self.out, PKG)
        self.dir = store.signature_dir(self.sigs, REGISTRY, PKG, self.digest)
        self.host = canaries(tmp / "host")

    def put(self, home: Path, key: str, *gpg_args: str, number: int | None = None) -> None:
        data = gpg(home, *gpg_args, "--local-user", key, "--sign",
                   stdin=payload.build(REFERENCE, self.digest))
        if number is None:
            store.add_signature(self.dir, data)
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / f"signature-{number}").write_bytes(data)

    def keyring(self, home: Path, *fprs: str) -> Path:
        path = self.tmp / "keyring.gpg"
        path.write_bytes(gpg(home, "--export", *fprs))
        return path

    def verify(self, keyring: Path, quorum: int, *extra: str) -> tuple[int, str, str]:
        return run(self.capsys, "verify", PKG, "--keyring", str(keyring), "--quorum",
                   str(quorum), "--signatures", str(self.sigs), "--registry", REGISTRY,
                   "--out", str(self.out), *extra)


@pytest.fixture
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> World:
    return World(tmp_path, capsys)


def by_name(out: str) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in json.loads(out)["signatures"]}


def test_sha1_signature_from_an_rsa1024_key_does_not_count(world: World,
                                                            weak: WeakKeys) -> None:
    world.put(weak.home, weak.rsa1024, "--digest-algo", "SHA1")
    world.put(weak.home, weak.rsa2048, "--digest-algo", "SHA1")
    world.put(weak.home, weak.rsa1024, "--digest-algo", "SHA256")
    world.put(weak.home, weak.dsa1024)  # DSA-1024 signs with SHA-1 (160-bit q)
    world.put(weak.home, weak.rsa2048, "--digest-algo", "SHA256")
    keyring = world.keyring(weak.home, weak.rsa1024, weak.rsa2048, weak.dsa1024)
    before = snapshot(world.tmp)
    code, out, _ = world.verify(keyring, 2, "--json")
    assert code == 1
    sigs = by_name(out)
    assert sigs["signature-1"]["reason"] == "weak-hash"
    assert "SHA-1" in str(sigs["signature-1"]["detail"])
    assert "RSA-1024" in str(sigs["signature-1"]["detail"])
    assert sigs["signature-2"]["reason"] == "weak-hash"
    assert sigs["signature-3"]["reason"] == "weak-key"
    assert "RSA-1024" in str(sigs["signature-3"]["detail"])
    assert sigs["signature-4"]["reason"] == "weak-hash"
    assert "DSA-1024" in str(sigs["signature-4"]["detail"])
    assert sigs["signature-5"]["counted"] is True  # RSA-2048 with SHA-256 is fine
    assert json.loads(out)["valid_signers"] == [weak.rsa2048]
    # and the human table says why, per signature
    code, out, _ = world.verify(keyring, 2)
    text = " ".join(out.split())
    assert code == 1 and text.count("weak-hash") == 3 and "weak-key" in text
    assert snapshot(world.tmp) == before


def test_sign_refuses_to_make_a_signature_that_would_not_count(world: World,
                                                               weak: WeakKeys) -> None:
    before = snapshot(world.tmp)
    code, out, _ = run(world.capsys, "sign", PKG, "--key", weak.rsa1024, "--gnupghome",
                       str(weak.home), "--signatures", str(world.sigs), "--registry",
                       REGISTRY, "--tag", "1.0", "--out", str(world.out), "--json")
    error = json.loads(out)["error"]
    assert (code, error["kind"]) == (1, "signature")
    assert "weak-key" in error["message"]  # words: names the reason it would not count
    assert snapshot(world.tmp) == before


def test_signatures_past_a_gap_in_the_numbering_are_not_counted(
        world: World, keys: Keys, gnupghome: Path) -> None:
    world.put(gnupghome, keys.alice, number=1)
    world.put(gnupghome, keys.bob, number=3)  # signature-2 is missing
    keyring = world.keyring(gnupghome, keys.alice, keys.bob)
    before = snapshot(world.tmp)
    code, out, _ = world.verify(keyring, 2, "--json")
    result = json.loads(out)
    assert code == 1 and result["valid_signers"] == [keys.alice]
    assert [s["name"] for s in result["signatures"]] == ["signature-1"]
    assert result["ignored"] == ["signature-3"]
    code, _, err = world.verify(keyring, 2)
    # words: a warning for people (the --json result above says which were ignored)
    assert code == 1 and "signature-3" in err and "gap" in err
    assert snapshot(world.tmp) == before
    # skopeo reads the same way: it stops at the first missing signature-N
    (world.dir / "signature-3").rename(world.dir / "signature-2")
    assert world.verify(keyring, 2)[0] == 0


def test_symlinked_and_special_signature_files_are_not_followed(
        world: World, keys: Keys, gnupghome: Path) -> None:
    world.put(gnupghome, keys.alice, number=1)
    world.put(gnupghome, keys.bob, number=4)
    (world.dir / "signature-2").symlink_to(world.host / "secret")
    os.mkfifo(world.dir / "signature-3")
    keyring = world.keyring(gnupghome, keys.alice, keys.bob)
    before = snapshot(world.tmp)
    # a FIFO must not hang verify: run it as a subprocess with a deadline
    proc = subprocess.run(
        [sys.executable, "-m", "rootseed", "verify", PKG, "--keyring", str(keyring),
         "--signatures", str(world.sigs), "--registry", REGISTRY, "--out", str(world.out),
         "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr  # alice and bob count
    sigs = by_name(proc.stdout)
    assert "symbolic link" in str(sigs["signature-2"]["detail"])
    assert "not a regular file" in str(sigs["signature-3"]["detail"])
    assert sigs["signature-4"]["counted"] is True
    assert {sigs[n]["reason"] for n in ("signature-2", "signature-3")} == {"bad-signature"}
    assert snapshot(world.tmp) == before
