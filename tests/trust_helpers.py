"""Helpers for tests that use GnuPG: running gpg, the key set, fake OCI images."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


def fingerprints(home: Path, uid: str) -> list[str]:
    listing = gpg(home, "--with-colons", "--fixed-list-mode", "--list-keys", uid).decode()
    return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]


def kill_agent(home: Path) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf is not None:
        subprocess.run([gpgconf, "--homedir", str(home), "--kill", "all"],
                       capture_output=True, check=False)


@contextmanager
def short_gnupghome(prefix: str = "rs-gpg-") -> Iterator[Path]:
    """A new GNUPGHOME (0700) whose path is short whatever TMPDIR is: gpg-agent puts its
    socket in it, and a Unix socket path is limited to 107 bytes, so a home under a long
    TMPDIR (pytest's tmp_path) breaks every signing. Removed, agent killed, at the end."""
    base = "/tmp" if os.access("/tmp", os.W_OK | os.X_OK) else None
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=base))  # mode 0700
    try:
        yield home
    finally:
        kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


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


def legacy_payload(name: str, hexdigest: str) -> bytes:
    """StageX's legacy signed payload (its store from 2023-12 until its 2025-05 change "Fix
    JSON payload to align with atomic spec"), written here from the format's facts: a JSON
    array of one object, no whitespace, keys in this order, the reference without a tag,
    the digest as bare hex, ``"optional": null``, no trailing newline.

    Checked by hand against the real files at StageX's 2025.04 release (commit 17e07990):
    byte for byte equal for every one of its 6,967 well-formed signature files;
    ``test_trust_legacy.py`` repeats the check when ROOTSEED_STAGEX names a checkout.
    """
    return ('[{"critical":{"identity":{"docker-reference":"' + name + '"},'
            '"image":{"docker-manifest-digest":"' + hexdigest + '"},'
            '"type":"pgp container image signature"},"optional":null}]').encode()
