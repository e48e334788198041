"""Our signatures are the real containers/image format: gpg and skopeo agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rootseed.cli import main
from rootseed.trust import payload, store
from rootseed.trust.facts import CryptoStatus
from rootseed.trust.quorum import check_quorum
from rootseed.trust.sequoia import Keyring
from trust_helpers import Keys, gpg, make_image, short_gnupghome

PKG = "bootstrap-stage0"
REGISTRY = "rootseed"
REFERENCE = f"{REGISTRY}/{PKG}:1.0"
SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")


def sign(out: Path, sigs: Path, home: Path, key: str) -> None:
    try:
        main(["sign", PKG, "--key", key, "--gnupghome", str(home), "--signatures", str(sigs),
              "--registry", REGISTRY, "--tag", "1.0", "--out", str(out)])
    except SystemExit as e:
        raise AssertionError(f"rootseed sign failed with exit {e.code}") from e


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    """An empty GNUPGHOME at a short path (see trust_helpers.short_gnupghome)."""
    with short_gnupghome() as home:
        yield home


def manifest_bytes(out: Path, digest: str) -> bytes:
    return (out / PKG / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def skopeo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SKOPEO is not None
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run([SKOPEO, *args], capture_output=True, text=True, env=env,
                          check=False)


@pytest.fixture
def signed(tmp_path: Path, keys: Keys, gnupghome: Path) -> tuple[Path, Path, str]:
    """An image signed by alice (primary key) and bob; returns (out, signature dir, digest)."""
    out, sigs = tmp_path / "out", tmp_path / "signatures"
    digest = make_image(out, PKG)
    sign(out, sigs, gnupghome, keys.alice + "!")
    sign(out, sigs, gnupghome, keys.bob + "!")
    return out, store.signature_dir(sigs, REGISTRY, PKG, digest), digest


def test_gpg_verifies_the_stored_file_and_the_json_is_exact(
        signed: tuple[Path, Path, str], gnupghome: Path, keys: Keys) -> None:
    _, sigdir, digest = signed
    path = sigdir / "signature-1"
    assert path.read_bytes()[0] & 0x80  # binary OpenPGP packet, not ASCII armor
    proc = subprocess.run(["gpg", "--homedir", str(gnupghome), "--batch", "--status-fd", "1",
                           "--verify", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"VALIDSIG {keys.alice}" in proc.stdout
    signed_data = gpg(gnupghome, "--decrypt", str(path))
    assert signed_data == (
        '{"critical":{"identity":{"docker-reference":"' + REFERENCE + '"},'
        '"image":{"docker-manifest-digest":"' + digest + '"},'
        '"type":"atomic container signature"},"optional":{}}').encode()


@needs_skopeo
def test_skopeo_standalone_verify_accepts_our_signature(
        signed: tuple[Path, Path, str], gnupghome: Path, keys: Keys, tmp_path: Path) -> None:
    out, sigdir, digest = signed
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(manifest_bytes(out, digest))
    for sig, fpr in ((sigdir / "signature-1", keys.alice), (sigdir / "signature-2", keys.bob)):
        proc = skopeo(gnupghome, "standalone-verify", str(manifest), REFERENCE, fpr, str(sig))
        assert proc.returncode == 0, proc.stderr
        assert digest in proc.stdout
    proc = skopeo(gnupghome, "standalone-verify", str(manifest), f"{REGISTRY}/{PKG}:2.0",
                  keys.alice, str(sigdir / "signature-1"))
    assert proc.returncode != 0  # skopeo does check the reference; the test can fail


def _dir_image(out: Path, digest: str, sigdir: Path, dest: Path) -> Path:
    """containers/image "dir:" layout: manifest.json, blobs by hex, signature-N files."""
    dest.mkdir()
    blobs = out / PKG / "blobs" / "sha256"
    for blob in blobs.iterdir():
        shutil.copyfile(blob, dest / blob.name)
    (dest / digest.removeprefix("sha256:")).unlink()
    (dest / "manifest.json").write_bytes(manifest_bytes(out, digest))
    (dest / "version").write_text("Directory Transport Version: 1.1\n")
    for sig in store.list_signatures(sigdir):
        shutil.copyfile(sig, dest / sig.name)
    return dest


def _policy(tmp_path: Path, keyring: bytes) -> Path:
    (tmp_path / "trusted.gpg").write_bytes(keyring)
    policy = {"default": [{"type": "reject"}], "transports": {"dir": {"": [{
        "type": "signedBy", "keyType": "GPGKeys", "keyPath": str(tmp_path / "trusted.gpg"),
        "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}}]}}}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return path


@needs_skopeo
def test_skopeo_copy_enforces_a_signedby_policy_on_our_signatures(
        signed: tuple[Path, Path, str], gnupghome: Path, keys: Keys, tmp_path: Path) -> None:
    out, sigdir, digest = signed
    src = _dir_image(out, digest, sigdir, tmp_path / "src")
    policy = _policy(tmp_path, gpg(gnupghome, "--export", keys.alice, keys.bob))
    proc = skopeo(gnupghome, "--policy", str(policy), "copy", f"dir:{src}",
                  f"dir:{tmp_path / 'dst'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dst" / "signature-2").read_bytes() == (sigdir / "signature-2").read_bytes()

    # Same policy, keyring without alice and bob: skopeo rejects the image.
    policy = _policy(tmp_path, gpg(gnupghome, "--export", keys.mallory))
    proc = skopeo(gnupghome, "--policy", str(policy), "copy", f"dir:{src}",
                  f"dir:{tmp_path / 'dst2'}")
    assert proc.returncode != 0
    assert "rejected" in proc.stderr  # words: skopeo's own message (another tool, no kind)


@needs_skopeo
def test_signatures_made_by_skopeo_are_counted(
        tmp_path: Path, gnupghome: Path, keys: Keys) -> None:
    out = tmp_path / "out"
    digest = make_image(out, PKG)
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(manifest_bytes(out, digest))
    facts = []
    keyring = Keyring(gpg(gnupghome, "--export", keys.alice, keys.bob), source="test")
    for n, key in enumerate((keys.alice, keys.bob), 1):
        sig = tmp_path / f"skopeo-{n}"
        proc = skopeo(gnupghome, "standalone-sign", str(manifest), REFERENCE, key,
                      "--output", str(sig))
        assert proc.returncode == 0, proc.stderr
        facts.append(keyring.check(sig.read_bytes(), name=sig.name))
    assert all(f.status is CryptoStatus.GOOD for f in facts)
    assert payload.parse(facts[0].payload or b"").creator  # skopeo fills optional.creator
    result = check_quorum(keyring.fingerprints, facts, digest=digest, quorum=2,
                          reference=REFERENCE)
    assert result.passed, result


@needs_skopeo
def test_skopeo_and_verify_both_stop_at_a_gap_in_the_numbering(
        signed: tuple[Path, Path, str], gnupghome: Path, keys: Keys, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out, sigdir, digest = signed
    (sigdir / "signature-1").unlink()  # alice's; bob's signature-2 stays, after a gap
    src = _dir_image(out, digest, sigdir, tmp_path / "src")
    shutil.copyfile(sigdir / "signature-2", src / "signature-2")
    bob = gpg(gnupghome, "--export", keys.bob)
    policy = _policy(tmp_path, bob)
    proc = skopeo(gnupghome, "--policy", str(policy), "copy", f"dir:{src}",
                  f"dir:{tmp_path / 'dst'}")
    # words: skopeo's own message (another tool, no kind): it never saw bob's signature
    assert proc.returncode != 0 and "rejected" in proc.stderr
    (tmp_path / "bob.gpg").write_bytes(bob)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", PKG, "--keyring", str(tmp_path / "bob.gpg"), "--quorum", "1",
              "--signatures", str(sigdir.parent.parent), "--registry", REGISTRY,
              "--out", str(out), "--json"])
    assert exit_info.value.code == 1
    result = json.loads(capsys.readouterr().out)
    assert result["signatures"] == [] and result["ignored"] == ["signature-2"]
    # closing the gap: both accept bob's signature
    (sigdir / "signature-2").rename(sigdir / "signature-1")
    (src / "signature-2").rename(src / "signature-1")
    proc = skopeo(gnupghome, "--policy", str(policy), "copy", f"dir:{src}",
                  f"dir:{tmp_path / 'dst2'}")
    assert proc.returncode == 0, proc.stderr


@needs_skopeo
def test_signatures_made_by_sequoia_verify_with_gpg_skopeo_and_rootseed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], gnupg_home: Path) -> None:
    """The other way round: a key and signatures made by Sequoia, checked by the others."""
    import pysequoia

    home = gnupg_home  # short: gpg-agent's socket lives in it
    out = tmp_path / "out"
    digest = make_image(out, PKG)
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(manifest_bytes(out, digest))
    sigdir = store.signature_dir(tmp_path / "signatures", REGISTRY, PKG, digest)
    fprs = []
    certs = b""
    for n in (1, 2):
        tsk = pysequoia.Tsk.generate(f"Signer {n} <s{n}@example.org>")
        cert = tsk.extract_certificate()
        fprs.append(cert.fingerprint.upper())
        certs += bytes(cert)
        data = pysequoia.sign(tsk.signer(), payload.build(REFERENCE, digest), armor=False)
        store.add_signature(sigdir, data)
    gpg(home, "--import", stdin=certs)
    keyring = Keyring(certs, source="test")
    for n in (1, 2):
        sig = sigdir / f"signature-{n}"
        proc = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--verify", str(sig)],
                              capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr
        subkey = keyring.check(sig.read_bytes(), name=sig.name).signing_fingerprint
        assert subkey is not None  # Sequoia signs with the signing subkey; skopeo wants it
        proc = skopeo(home, "standalone-verify", str(manifest), REFERENCE, subkey, str(sig))
        assert proc.returncode == 0, proc.stderr
    (tmp_path / "keyring.gpg").write_bytes(certs)
    capsys.readouterr()
    main(["verify", PKG, "--keyring", str(tmp_path / "keyring.gpg"), "--signatures",
          str(tmp_path / "signatures"), "--registry", REGISTRY, "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] is True and sorted(result["valid_signers"]) == sorted(fprs)
