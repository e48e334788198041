"""Signing and verification end to end, with real GnuPG and throwaway keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from rootseed.trust import payload, store
from rootseed.trust.verify import ImageVerifier
from trust_helpers import Keys, gpg, make_image, revoke

PKG = "bootstrap-stage0"
REGISTRY = "rootseed"


class Env:
    """One test's world: an out dir with a fake image, a signature store, a GnuPG home."""

    def __init__(self, tmp_path: Path, keys: Keys, gnupghome: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.keys, self.home, self.capsys = tmp_path, keys, gnupghome, capsys
        self.out = tmp_path / "out"
        self.sigs = tmp_path / "signatures"
        self.digest = make_image(self.out, PKG)

    def run(self, *args: str) -> tuple[int, str, str]:
        r = run_cli(*args)
        return r.returncode, r.stdout, r.stderr

    def sign(self, key: str, *extra: str) -> tuple[int, str, str]:
        return self.run("sign", PKG, "--key", key, "--gnupghome", str(self.home),
                        "--signatures", str(self.sigs), "--registry", REGISTRY,
                        "--tag", "1.0", "--out", str(self.out), *extra)

    def keyring(self, *fprs: str) -> Path:
        path = self.tmp / "keyring.gpg"
        path.write_bytes(gpg(self.home, "--export", *fprs))
        return path

    def verify(self, *fprs: str, quorum: int = 2, extra: tuple[str, ...] = ()
               ) -> tuple[int, dict[str, object]]:
        code, out, err = self.run("verify", PKG, "--keyring", str(self.keyring(*fprs)),
                                  "--quorum", str(quorum), "--signatures", str(self.sigs),
                                  "--registry", REGISTRY, "--out", str(self.out), "--json",
                                  *extra)
        assert "Traceback" not in err
        return code, json.loads(out)

    @property
    def sigdir(self) -> Path:
        return store.signature_dir(self.sigs, REGISTRY, PKG, self.digest)

    def store_raw(self, key: str, data: bytes, *gpg_args: str) -> Path:
        """Sign ``data`` with plain gpg (bypassing rootseed) and store it."""
        sig = gpg(self.home, *gpg_args, "--compress-algo", "none", "--local-user", key,
                  "--sign", stdin=data)
        return store.add_signature(self.sigdir, sig)


@pytest.fixture
def env(tmp_path: Path, keys: Keys, gnupghome: Path,
        capsys: pytest.CaptureFixture[str]) -> Env:
    return Env(tmp_path, keys, gnupghome, capsys)


def reasons(result: dict[str, object]) -> dict[str, str | None]:
    sigs = result["signatures"]
    assert isinstance(sigs, list)
    return {s["name"]: s["reason"] for s in sigs}


def test_two_distinct_keys_meet_quorum_two(env: Env) -> None:
    k = env.keys
    assert env.sign(k.alice + "!")[0] == 0
    code, out, _ = env.sign(k.bob, "--json")
    assert code == 0
    assert json.loads(out)["signer"] == k.bob
    assert [p.name for p in store.list_signatures(env.sigdir)] == ["signature-1", "signature-2"]
    assert env.sigdir.name == f"{PKG}@sha256={env.digest.removeprefix('sha256:')}"

    code, result = env.verify(k.alice, k.bob)
    assert code == 0
    assert result["passed"] is True
    assert result["valid_signers"] == [k.alice, k.bob]
    assert result["digest"] == env.digest

    code, result = env.verify(k.alice, k.bob, k.mallory, quorum=3)
    assert code == 1 and result["passed"] is False and result["valid"] == 2


def test_human_output_is_a_table_with_the_verdict(env: Env) -> None:
    k = env.keys
    env.sign(k.alice + "!")
    env.sign(k.bob)
    code, out, _ = env.run("verify", PKG, "--keyring", str(env.keyring(k.alice, k.bob)),
                           "--signatures", str(env.sigs), "--registry", REGISTRY,
                           "--out", str(env.out), "--quorum", "2")
    assert code == 0
    assert "signature-1" in out and "signature-2" in out
    assert "PASS: 2 of 2 required" in out
    env.sigdir.joinpath("signature-2").unlink()
    code, out, _ = env.run("verify", PKG, "--keyring", str(env.keyring(k.alice, k.bob)),
                           "--signatures", str(env.sigs), "--registry", REGISTRY,
                           "--out", str(env.out))
    assert code == 1
    assert "FAIL: 1 of 2 required" in out


def test_same_key_twice_counts_once_and_sign_refuses_it(env: Env) -> None:
    k = env.keys
    assert env.sign(k.alice + "!")[0] == 0
    code, out, _ = env.sign(k.alice + "!", "--json")
    assert (code, json.loads(out)["error"]["kind"]) == (1, "signature")
    # a subkey of the same key is the same signer
    code, out, _ = env.sign(k.alice_sub + "!", "--json")
    assert (code, json.loads(out)["error"]["kind"]) == (1, "signature")
    assert len(store.list_signatures(env.sigdir)) == 1

    # Force a second signature by the same key into the store behind sign's back.
    env.store_raw(k.alice + "!", payload.build(f"{REGISTRY}/{PKG}:1.0", env.digest))
    code, result = env.verify(k.alice, k.bob)
    assert code == 1
    assert result["valid_signers"] == [k.alice]
    assert reasons(result) == {"signature-1": None, "signature-2": "duplicate-signer"}
    assert env.verify(k.alice, k.bob, quorum=1)[0] == 0


def test_subkey_signature_counts_for_its_primary(env: Env) -> None:
    k = env.keys
    code, out, _ = env.sign(k.alice_sub + "!", "--json")
    assert code == 0
    signed = json.loads(out)
    assert (signed["signer"], signed["signing_key"]) == (k.alice, k.alice_sub)
    env.sign(k.bob)
    code, result = env.verify(k.alice, k.bob)
    assert code == 0
    first = result["signatures"][0]  # type: ignore[index]
    assert (first["signer"], first["signing_key"]) == (k.alice, k.alice_sub)


def test_untrusted_key_counts_for_nothing(env: Env) -> None:
    k = env.keys
    env.sign(k.mallory)
    env.sign(k.alice + "!")
    code, result = env.verify(k.alice, k.bob)
    assert code == 1
    assert result["valid_signers"] == [k.alice]
    assert reasons(result)["signature-1"] == "untrusted-key"
    assert "is not in the keyring" in result["signatures"][0]["detail"]  # type: ignore[index]
    env.sign(k.bob)
    assert env.verify(k.alice, k.bob)[0] == 0  # mallory's presence does not hurt either


def test_signature_over_another_digest_does_not_count(env: Env) -> None:
    k = env.keys
    other = make_image(env.tmp / "other-out", PKG, salt="other")
    other_dir = store.signature_dir(env.sigs, REGISTRY, PKG, other)
    env.sign(k.alice + "!")
    # bob signs the other image, and that signature ends up filed under ours.
    sig = gpg(env.home, "--compress-algo", "none", "--local-user", k.bob, "--sign",
              stdin=payload.build(f"{REGISTRY}/{PKG}:1.0", other))
    store.add_signature(other_dir, sig)
    store.add_signature(env.sigdir, sig)
    code, result = env.verify(k.alice, k.bob)
    assert code == 1
    assert reasons(result)["signature-2"] == "wrong-digest"
    assert env.verify(k.alice, k.bob, extra=("--digest", other))[1]["valid_signers"] == [k.bob]


def test_another_type_and_wrong_reference_do_not_count(env: Env) -> None:
    k = env.keys
    good = payload.build(f"{REGISTRY}/{PKG}:1.0", env.digest)
    env.store_raw(k.alice + "!", good.replace(b"atomic container signature", b"cosign"))
    env.store_raw(k.bob, payload.build(f"evil/{PKG}:1.0", env.digest))
    code, result = env.verify(k.alice, k.bob)
    assert code == 1
    assert reasons(result) == {"signature-1": "wrong-type", "signature-2": "wrong-reference"}
    env.store_raw(k.bob, b'{"critical":{}}')
    assert reasons(env.verify(k.alice, k.bob)[1])["signature-3"] == "malformed-payload"


@pytest.mark.parametrize("damage", ["flip-payload", "flip-last", "truncate", "garbage"])
def test_corrupted_signature_file_does_not_count(env: Env, damage: str) -> None:
    k = env.keys
    env.sign(k.alice + "!")
    env.sign(k.bob)
    path = env.sigdir / "signature-2"
    data = bytearray(path.read_bytes())
    if damage == "flip-payload":
        i = data.index(b"atomic")
        data[i] ^= 0x20  # "Atomic": still a well-formed payload, but not what bob signed
    elif damage == "flip-last":
        data[-1] ^= 0x01
    elif damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[:] = b"not an OpenPGP message\n"
    path.write_bytes(bytes(data))
    code, result = env.verify(k.alice, k.bob)
    assert code == 1
    assert result["valid_signers"] == [k.alice]
    assert reasons(result)["signature-2"] == "bad-signature"
    detail = result["signatures"][1]["detail"]  # type: ignore[index]
    if damage == "flip-payload":
        assert "does not verify" in detail


def test_expired_key_does_not_count(env: Env) -> None:
    k = env.keys
    # Signed while the key was still valid (faked time), checked now that it has expired.
    env.store_raw(k.eve, payload.build(f"{REGISTRY}/{PKG}:1.0", env.digest),
                  "--faked-system-time", "20200201T000000")
    env.sign(k.alice + "!")
    code, result = env.verify(k.alice, k.eve)
    assert code == 1
    assert reasons(result)["signature-1"] == "expired-key"
    sig = result["signatures"][0]  # type: ignore[index]
    assert sig["signer"] == k.eve and "expired on 2020-06-01" in sig["detail"]


def test_revoked_key_does_not_count(env: Env) -> None:
    k = env.keys
    env.sign(k.rita)
    env.sign(k.alice + "!")
    revoke(env.home, k.rita)
    code, result = env.verify(k.alice, k.rita)
    assert code == 1
    assert reasons(result)["signature-1"] == "revoked-key"
    code, _, _ = env.sign(k.rita)
    assert code == 1  # a revoked key cannot add signatures either


@pytest.mark.parametrize("quorum", ["0", "-2"])
def test_quorum_below_one_is_rejected(env: Env, quorum: str) -> None:
    env.sign(env.keys.alice + "!")
    code, out, err = env.run("verify", PKG, "--keyring", str(env.keyring(env.keys.alice)),
                             "--quorum", quorum, "--signatures", str(env.sigs),
                             "--registry", REGISTRY, "--out", str(env.out), "--json")
    assert "Traceback" not in err
    assert (code, json.loads(out)["error"]["kind"]) == (1, "usage")


def test_verify_by_digest_without_a_local_build(env: Env) -> None:
    k = env.keys
    env.sign(k.alice + "!")
    env.sign(k.bob)
    digests = env.tmp / "digests" / "bootstrap.txt"
    digests.parent.mkdir()
    digests.write_text(f"{'00' * 32} bootstrap-other\n{env.digest.removeprefix('sha256:')} "
                       f"{PKG}\n")
    nowhere = ("--out", str(env.tmp / "no-such-out"))
    code, result = env.verify(k.alice, k.bob, extra=("--digests-file", str(digests), *nowhere))
    assert code == 0 and result["digest"] == env.digest
    code, result = env.verify(k.alice, k.bob, extra=("--digest", env.digest, *nowhere))
    assert code == 0
    code, out, _ = env.run("verify", PKG, "--keyring", str(env.keyring(k.alice)),
                           "--registry", REGISTRY, *nowhere, "--json")
    assert (code, json.loads(out)["error"]["kind"]) == (1, "layout")


def test_sign_defaults_come_from_the_tree(env: Env) -> None:
    tree = env.tmp / "tree"
    (tree / "bootstrap" / "stage0").mkdir(parents=True)
    (tree / "rootseed.toml").write_text('[tree]\nnamespace = "seedling"\n')
    (tree / "bootstrap" / "stage0" / "package.toml").write_text(
        '[package]\nname = "stage0"\nversion = "1.6.0"\ndescription = "test"\n'
        'license = "MIT"\n')
    (tree / "bootstrap" / "stage0" / "Containerfile").write_text("FROM scratch\n")
    code, out, err = env.run("sign", PKG, "--key", env.keys.bob, "--gnupghome", str(env.home),
                             "--signatures", str(env.sigs), "--tree", str(tree),
                             "--out", str(env.out), "--json")
    assert code == 0, err
    signed = json.loads(out)
    assert signed["reference"] == "seedling/bootstrap-stage0:1.6.0"
    assert Path(signed["signature"]) == store.signature_dir(
        env.sigs, "seedling", PKG, env.digest) / "signature-1"


def test_image_verifier_status_line_for_the_provenance_hook(env: Env) -> None:
    k = env.keys
    env.sign(k.alice + "!")
    env.sign(k.bob)
    with ImageVerifier(env.keyring(k.alice, k.bob), signatures=env.sigs, registry=REGISTRY,
                       quorum=2) as verifier:
        assert verifier.status(PKG, env.digest) == "quorum 2/2 met"
        assert verifier.status(PKG, "sha256:" + "0" * 64) == "quorum 0/2 NOT met: no signatures"
        assert verifier.check(PKG, env.digest, tag="2.0").passed is False


def test_sign_refuses_a_corrupt_layout(env: Env) -> None:
    blob = env.out / PKG / "blobs" / "sha256" / env.digest.removeprefix("sha256:")
    blob.write_bytes(blob.read_bytes() + b" ")
    code, out, _ = env.sign(env.keys.alice + "!", "--json")
    error = json.loads(out)["error"]
    assert (code, error["kind"], error["problem"]) == (1, "layout", "SIZE")  # a byte added
    assert not env.sigs.exists()
