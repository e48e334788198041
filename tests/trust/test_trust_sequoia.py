"""The Sequoia boundary: facts about one signature file, from real gpg-made signatures."""

from __future__ import annotations

import zlib
from pathlib import Path

from kinds import raises_kind
from rootseed.errors import ErrorKind
from rootseed.trust import gpg as gpg_mod
from rootseed.trust import payload
from rootseed.trust.facts import CryptoStatus, HashAlgorithm, KeyAlgorithm
from rootseed.trust.sequoia import MAX_PAYLOAD, Keyring
from trust_helpers import Keys, fingerprints, gpg

DIGEST = "sha256:" + "ab" * 32
DATA = payload.build("rootseed/bootstrap-stage0:1.0", DIGEST)


def test_keyring_without_keys_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gpg"
    empty.write_bytes(b"")
    with raises_kind(ErrorKind.SIGNATURE):
        Keyring.from_file(empty)
    empty.write_bytes(b"\x99\x01garbage")
    with raises_kind(ErrorKind.SIGNATURE):
        Keyring.from_file(empty)
    with raises_kind(ErrorKind.SIGNATURE):
        Keyring.from_file(tmp_path / "missing.gpg")


def test_check_facts_of_a_subkey_signature(keys: Keys, gnupghome: Path) -> None:
    sig = gpg_mod.sign(DATA, keys.alice_sub + "!", gnupghome=gnupghome)
    assert sig[0] & 0x80 and b"BEGIN PGP" not in sig  # binary OpenPGP, not armored
    keyring = Keyring(gpg(gnupghome, "--export", keys.alice), source="test")
    assert keyring.fingerprints == (keys.alice,)
    facts = keyring.check(sig, name="s")
    assert facts.status is CryptoStatus.GOOD
    assert facts.payload == DATA
    assert (facts.signing_fingerprint, facts.primary_fingerprint) == (keys.alice_sub, keys.alice)
    assert facts.user_id == "Alice <alice@example.org>"
    assert facts.key_algorithm is KeyAlgorithm.EDDSA and facts.key_bits is None
    assert facts.hash_algorithm in (HashAlgorithm.SHA256, HashAlgorithm.SHA512)

    other = Keyring(gpg(gnupghome, "--export", keys.bob), source="test")
    assert other.check(sig + sig, name="two").status is CryptoStatus.UNREADABLE
    facts = other.check(sig, name="s")
    assert facts.status is CryptoStatus.NO_PUBKEY
    assert facts.payload is None and facts.primary_fingerprint is None


def test_detached_signature_covers_exactly_its_data(keys: Keys, gnupghome: Path) -> None:
    keyring = Keyring(gpg(gnupghome, "--export", keys.bob), source="test")
    sig = gpg_mod.sign(b"statement\n", keys.bob, gnupghome=gnupghome, detached=True)
    good = keyring.check_detached(sig, b"statement\n", name="p")
    assert good.status is CryptoStatus.GOOD and good.payload == b"statement\n"
    assert keyring.check_detached(sig, b"statement!", name="p").status is CryptoStatus.BAD
    # a detached signature is not a signed message, nor the other way round
    assert keyring.check(sig, name="p").status is CryptoStatus.UNREADABLE
    inline = gpg_mod.sign(b"statement\n", keys.bob, gnupghome=gnupghome)
    assert keyring.check_detached(inline, b"statement\n", name="p").status \
        is CryptoStatus.UNREADABLE


def test_compressed_signatures_verify_and_bombs_are_refused(keys: Keys,
                                                            gnupghome: Path) -> None:
    keyring = Keyring(gpg(gnupghome, "--export", keys.bob), source="test")
    for algo in ("zip", "zlib"):
        sig = gpg(gnupghome, "--compress-algo", algo, "--local-user", keys.bob, "--sign",
                  stdin=DATA)
        facts = keyring.check(sig, name=algo)
        assert facts.status is CryptoStatus.GOOD and facts.payload == DATA, algo
    # pysequoia's wheel cannot open BZip2: said plainly, never counted
    sig = gpg(gnupghome, "--compress-algo", "bzip2", "--local-user", keys.bob, "--sign",
              stdin=DATA)
    facts = keyring.check(sig, name="bzip2")
    assert facts.status is CryptoStatus.UNREADABLE and "cannot open" in facts.detail
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(b"\0" * (MAX_PAYLOAD * 4)) + deflate.flush()
    bomb = b"\xa3\x01" + body  # old-format compressed data packet, ZIP, to the end
    facts = keyring.check(bomb, name="bomb")
    assert facts.status is CryptoStatus.UNREADABLE
    assert "larger than" in facts.detail


def test_signature_by_a_subkey_that_expired_since_does_not_pass(gnupghome: Path) -> None:
    uid = "Sam <sam@example.org>"  # a primary that never expires, from 2019
    gpg(gnupghome, "--faked-system-time", "20190101T000000", "--quick-gen-key", uid,
        "ed25519", "sign", "0")
    [sam] = fingerprints(gnupghome, uid)
    gpg(gnupghome, "--faked-system-time", "20200101T000000", "--quick-add-key", sam,
        "ed25519", "sign", "2020-06-01")
    subkey = [f for f in fingerprints(gnupghome, sam) if f != sam][-1]
    sig = gpg(gnupghome, "--faked-system-time", "20200201T000000", "--local-user",
              subkey + "!", "--sign", stdin=DATA)
    keyring = Keyring(gpg(gnupghome, "--export", sam), source="test")
    facts = keyring.check(sig, name="s")
    assert (facts.signing_fingerprint, facts.primary_fingerprint) == (subkey, sam)
    assert facts.status is CryptoStatus.EXPIRED_KEY and "2020-06-01" in facts.detail
