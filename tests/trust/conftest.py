"""Throwaway OpenPGP keys (real GnuPG, generated once per session) and fake OCI images."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

GPG = shutil.which("gpg")


def gpg(home: Path, *args: str, stdin: bytes = b"", check: bool = True) -> bytes:
    """Run gpg in ``home``; return stdout."""
    assert GPG is not None
    proc = subprocess.run([GPG, "--homedir", str(home), "--batch", "--no-tty",
                           "--pinentry-mode", "loopback", "--passphrase", "", *args],
                          input=stdin, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout


def _fingerprints(home: Path, uid: str) -> list[str]:
    listing = gpg(home, "--with-colons", "--fixed-list-mode", "--list-keys", uid).decode()
    return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]


def kill_agent(home: Path) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf is not None:
        subprocess.run([gpgconf, "--homedir", str(home), "--kill", "all"],
                       capture_output=True, check=False)


@dataclass(frozen=True)
class Keys:
    """The session's keys: fingerprints, and a home holding all their secret keys."""

    home: Path
    alice: str  # primary, also has a signing subkey
    alice_sub: str
    bob: str
    mallory: str  # never in the trusted keyring
    eve: str  # expired (created and used with a faked system time in the past)
    rita: str  # revoked after signing

    def public(self, *fprs: str) -> bytes:
        return gpg(self.home, "--export", *fprs)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    if GPG is None:
        pytest.skip("GnuPG (gpg) is not installed")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)

    def new_key(uid: str, *extra: str, expire: str = "0") -> str:
        gpg(home, *extra, "--quick-gen-key", uid, "ed25519", "sign", expire)
        return _fingerprints(home, uid)[0]

    alice = new_key("Alice <alice@example.org>")
    gpg(home, "--quick-add-key", alice, "ed25519", "sign", "0")
    alice_sub = _fingerprints(home, alice)[1]
    bob = new_key("Bob <bob@example.org>")
    mallory = new_key("Mallory <mallory@example.org>")
    eve = new_key("Eve <eve@example.org>", "--faked-system-time", "20200101T000000",
                  expire="2020-06-01")
    rita = new_key("Rita <rita@example.org>")
    yield Keys(home, alice, alice_sub, bob, mallory, eve, rita)
    kill_agent(home)


@pytest.fixture
def gnupghome(keys: Keys, tmp_path: Path) -> Iterator[Path]:
    """This test's own GNUPGHOME: a copy of the session's keys (secret and public)."""
    home = tmp_path / "gnupg"
    shutil.copytree(keys.home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    home.chmod(0o700)
    yield home
    kill_agent(home)


def revoke(home: Path, fpr: str) -> None:
    """Import the revocation certificate GnuPG made when it generated ``fpr``."""
    text = (home / "openpgp-revocs.d" / f"{fpr}.rev").read_text()
    gpg(home, "--import", stdin=text.replace(":-----BEGIN", "-----BEGIN").encode())


def write_blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}"


def make_image(out: Path, name: str, salt: str = "") -> str:
    """A minimal OCI image layout at ``out/name``; returns its manifest digest."""
    layout = out / name
    config = json.dumps({"architecture": "386", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": []}, "salt": salt}, sort_keys=True).encode()
    config_digest = write_blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": []}, sort_keys=True).encode()
    digest = write_blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": len(manifest)}]}))
    return digest
