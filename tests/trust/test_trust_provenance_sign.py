"""``rootseed sign`` signs each image's provenance.json too: detached, beside signature-N."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provenance_fixtures import NAMESPACE, SEED_PKG, build, seed_source
from rootseed.trust import store
from rootseed.trust.verify import ImageVerifier
from trust_attack import run
from trust_helpers import Keys, gpg


class Env:
    def __init__(self, tmp: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.home, self.capsys = tmp, home, capsys
        self.out, self.sigs = tmp / "out", tmp / "signatures"
        self.digest = build(self.out, SEED_PKG, sources=(seed_source(),))
        self.dir = store.signature_dir(self.sigs, NAMESPACE, SEED_PKG, self.digest)
        self.provenance = self.out / SEED_PKG / "provenance.json"

    def sign(self, key: str, *extra: str) -> tuple[int, str, str]:
        return run(self.capsys, "sign", SEED_PKG, "--key", key, "--gnupghome", str(self.home),
                   "--signatures", str(self.sigs), "--registry", NAMESPACE, "--tag", "1.0",
                   "--out", str(self.out), *extra)


@pytest.fixture
def env(tmp_path: Path, gnupghome: Path, capsys: pytest.CaptureFixture[str]) -> Env:
    return Env(tmp_path, gnupghome, capsys)


def test_sign_writes_a_detached_provenance_signature_gpg_can_check(env: Env,
                                                                   keys: Keys) -> None:
    code, out, err = env.sign(keys.alice, "--json")
    assert code == 0, err
    signed = json.loads(out)
    assert Path(signed["signature"]) == env.dir / "signature-1"
    assert Path(signed["provenance_signature"]) == env.dir / "provenance-1"
    sig = env.dir / "provenance-1"
    assert sig.read_bytes()[0] & 0x80  # binary OpenPGP
    proc = subprocess.run(["gpg", "--homedir", str(env.home), "--batch", "--status-fd", "1",
                           "--verify", str(sig), str(env.provenance)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "VALIDSIG " in proc.stdout, proc.stderr
    assert keys.alice in proc.stdout  # the primary key (it signs with a subkey)
    env.provenance.write_bytes(env.provenance.read_bytes().replace(b'"1.0"', b'"1.1"', 1))
    proc = subprocess.run(["gpg", "--homedir", str(env.home), "--batch", "--verify", str(sig),
                           str(env.provenance)], capture_output=True, check=False)
    assert proc.returncode != 0


def test_provenance_quorum_counts_distinct_trusted_keys(env: Env, keys: Keys) -> None:
    for key in (keys.alice, keys.bob, keys.mallory):
        assert env.sign(key)[0] == 0
    keyring = env.tmp / "keyring.gpg"
    keyring.write_bytes(gpg(env.home, "--export", keys.alice, keys.bob))
    statement = env.provenance.read_bytes()
    with ImageVerifier(keyring, signatures=env.sigs, registry=NAMESPACE,
                       quorum=2) as verifier:
        checked = verifier.check_provenance(SEED_PKG, env.digest, statement)
        assert checked.passed and checked.line == "quorum 2/2 met"
        assert [v.reason for v in checked.result.verdicts][2] is not None  # mallory
        other = verifier.check_provenance(SEED_PKG, env.digest, statement + b" ")
        assert not other.passed


def test_sign_adds_the_missing_provenance_signature_once(env: Env, keys: Keys) -> None:
    assert env.sign(keys.bob)[0] == 0
    (env.dir / "provenance-1").unlink()  # as if signed before provenance was signed
    code, out, err = env.sign(keys.bob, "--json")
    assert code == 0, err
    signed = json.loads(out)
    assert signed["signature"] is None
    assert Path(signed["provenance_signature"]) == env.dir / "provenance-1"
    code, out, _ = env.sign(keys.bob, "--json")
    assert (code, json.loads(out)["error"]["kind"]) == (1, "signature")
    assert sorted(p.name for p in env.dir.iterdir()) == ["provenance-1", "signature-1"]


def test_sign_refuses_provenance_of_another_image(env: Env, keys: Keys) -> None:
    other = build(env.tmp / "other", SEED_PKG, sources=(seed_source(),), content=b"other")
    assert other != env.digest
    env.provenance.write_bytes((env.tmp / "other" / SEED_PKG / "provenance.json").read_bytes())
    code, out, err = env.sign(keys.alice, "--json")
    error = json.loads(out)["error"]
    assert (code, error["kind"], error["package"]) == (1, "provenance", SEED_PKG), err
    assert not env.sigs.exists()
