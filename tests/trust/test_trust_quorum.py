"""The trust decision, table-driven, on hand-made facts (no GnuPG involved)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinds import raises_kind
from rootseed.errors import ErrorKind, RootseedError
from rootseed.trust import payload
from rootseed.trust.facts import CryptoStatus, HashAlgorithm, KeyAlgorithm, SignatureFacts
from rootseed.trust.quorum import QuorumPolicy, Reason, check_quorum, normalize_fingerprint

A, B, C, M = ("A" * 40, "B" * 40, "C" * 40, "D" * 40)  # M is not trusted
A_SUB = "E" * 40
TRUSTED = (A, B, C)
DIGEST = "sha256:" + "11" * 32
OTHER = "sha256:" + "22" * 32
REF = "rootseed/bootstrap-stage0:1.0"


def good(signer: str, *, digest: str = DIGEST, ref: str = REF, subkey: str | None = None,
         data: bytes | None = None) -> SignatureFacts:
    return SignatureFacts("sig", CryptoStatus.GOOD, "GOODSIG", key_id=signer[-16:],
                          signing_fingerprint=subkey or signer, primary_fingerprint=signer,
                          payload=data if data is not None else payload.build(ref, digest))


def status(s: CryptoStatus, signer: str | None = A) -> SignatureFacts:
    crypto_ok = s not in (CryptoStatus.BAD, CryptoStatus.UNREADABLE, CryptoStatus.NO_PUBKEY)
    return SignatureFacts("sig", s, s.value, signing_fingerprint=signer if crypto_ok else None,
                          primary_fingerprint=signer if crypto_ok else None,
                          payload=payload.build(REF, DIGEST) if crypto_ok else None)


WRONG_TYPE = (b'{"critical":{"identity":{"docker-reference":"' + REF.encode() + b'"},"image":'
              b'{"docker-manifest-digest":"' + DIGEST.encode() + b'"},"type":"other"},'
              b'"optional":{}}')


def made(f: SignatureFacts, hash_algorithm: HashAlgorithm, key: KeyAlgorithm = KeyAlgorithm.RSA,
         bits: int | None = 4096) -> SignatureFacts:
    return replace(f, hash_algorithm=hash_algorithm, key_algorithm=key, key_bits=bits)


@dataclass(frozen=True)
class Case:
    id: str
    facts: list[SignatureFacts]
    quorum: int
    passed: bool
    signers: tuple[str, ...]
    reasons: tuple[Reason | None, ...]
    reference: str | None = REF


CASES = [
    Case("two distinct keys", [good(A), good(B)], 2, True, (A, B), (None, None)),
    Case("one key is not two", [good(A)], 2, False, (A,), (None,)),
    Case("same key twice counts once", [good(A), good(A)], 2, False, (A,),
         (None, Reason.DUPLICATE_SIGNER)),
    Case("same key twice meets quorum 1", [good(A), good(A)], 1, True, (A,),
         (None, Reason.DUPLICATE_SIGNER)),
    Case("subkey counts for its primary", [good(A, subkey=A_SUB), good(B)], 2, True, (A, B),
         (None, None)),
    Case("subkey and primary of one key count once", [good(A, subkey=A_SUB), good(A)], 2,
         False, (A,), (None, Reason.DUPLICATE_SIGNER)),
    Case("untrusted key counts for nothing", [good(A), good(M)], 2, False, (A,),
         (None, Reason.UNTRUSTED_KEY)),
    Case("unknown key (NO_PUBKEY)", [good(A), status(CryptoStatus.NO_PUBKEY, None)], 2, False,
         (A,), (None, Reason.UNTRUSTED_KEY)),
    Case("bad signature", [good(A), status(CryptoStatus.BAD, B)], 2, False, (A,),
         (None, Reason.BAD_SIGNATURE)),
    Case("unreadable signature", [status(CryptoStatus.UNREADABLE, None), good(B)], 2, False,
         (B,), (Reason.BAD_SIGNATURE, None)),
    Case("expired key", [good(A), status(CryptoStatus.EXPIRED_KEY, B)], 2, False, (A,),
         (None, Reason.EXPIRED_KEY)),
    Case("revoked key", [good(A), status(CryptoStatus.REVOKED_KEY, B)], 2, False, (A,),
         (None, Reason.REVOKED_KEY)),
    Case("expired signature", [good(A), status(CryptoStatus.EXPIRED_SIGNATURE, B)], 2, False,
         (A,), (None, Reason.EXPIRED_SIGNATURE)),
    Case("other digest", [good(A), good(B, digest=OTHER)], 2, False, (A,),
         (None, Reason.WRONG_DIGEST)),
    Case("other type", [good(A), good(B, data=WRONG_TYPE)], 2, False, (A,),
         (None, Reason.WRONG_TYPE)),
    Case("malformed payload", [good(A), good(B, data=b"not json")], 2, False, (A,),
         (None, Reason.MALFORMED_PAYLOAD)),
    Case("other tag", [good(A), good(B, ref="rootseed/bootstrap-stage0:2.0")], 2, False,
         (A,), (None, Reason.WRONG_REFERENCE)),
    Case("other repository", [good(A), good(B, ref="evil/bootstrap-stage0:1.0")], 2, False,
         (A,), (None, Reason.WRONG_REFERENCE), "rootseed/bootstrap-stage0"),
    Case("repository-only reference accepts any tag",
         [good(A), good(B, ref="rootseed/bootstrap-stage0:latest")], 2, True, (A, B),
         (None, None), "rootseed/bootstrap-stage0"),
    Case("no reference expected: only the digest binds",
         [good(A, ref="x/y:1"), good(B)], 2, True, (A, B), (None, None), None),
    Case("a rejected signature does not use up its signer",
         [good(A, digest=OTHER), good(A), good(B)], 2, True, (A, B),
         (Reason.WRONG_DIGEST, None, None)),
    Case("three of three", [good(C), good(B), good(A)], 3, True, (C, B, A), (None,) * 3),
    Case("no signatures at all", [], 1, False, (), ()),
    # the algorithm policy: decided here even when the OpenPGP layer said "good"
    Case("SHA-1 never counts", [good(A), made(good(B), HashAlgorithm.SHA1)], 2, False, (A,),
         (None, Reason.WEAK_HASH)),
    Case("MD5 and RIPEMD-160 never count",
         [made(good(A), HashAlgorithm.MD5), made(good(B), HashAlgorithm.RIPEMD160)], 1,
         False, (), (Reason.WEAK_HASH, Reason.WEAK_HASH)),
    Case("RSA-1024 never counts", [made(good(A), HashAlgorithm.SHA256, bits=1024), good(B)],
         2, False, (B,), (Reason.WEAK_KEY, None)),
    Case("DSA and ElGamal under 2048 bits never count",
         [made(good(A), HashAlgorithm.SHA256, KeyAlgorithm.DSA, 1024),
          made(good(B), HashAlgorithm.SHA256, KeyAlgorithm.ELGAMAL, 2047)], 1, False, (),
         (Reason.WEAK_KEY, Reason.WEAK_KEY)),
    Case("RSA-2048 with SHA-256 and Ed25519 with SHA-512 count",
         [made(good(A), HashAlgorithm.SHA256, bits=2048),
          made(good(B), HashAlgorithm.SHA512, KeyAlgorithm.EDDSA, None)], 2, True, (A, B),
         (None, None)),
    Case("a weak signature by an untrusted key is weak first",
         [replace(made(status(CryptoStatus.NO_PUBKEY, None), HashAlgorithm.SHA1),
                  key_algorithm=None, key_bits=None), good(B)], 1, True, (B,),
         (Reason.WEAK_HASH, None)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_quorum_table(case: Case) -> None:
    result = check_quorum(TRUSTED, case.facts, digest=DIGEST, quorum=case.quorum,
                          reference=case.reference)
    assert result.passed is case.passed
    assert result.valid_signers == case.signers
    assert tuple(v.reason for v in result.verdicts) == case.reasons
    assert all(v.detail for v in result.rejected)
    assert len(result.rejected) == sum(r is not None for r in case.reasons)
    js = result.to_json()
    assert js["passed"] is case.passed and js["valid"] == len(case.signers)


@pytest.mark.parametrize("quorum", [0, -1])
def test_quorum_below_one_is_rejected(quorum: int) -> None:
    with raises_kind(ErrorKind.USAGE):
        QuorumPolicy(TRUSTED, quorum)


def test_quorum_above_trusted_keys_is_rejected() -> None:
    with raises_kind(ErrorKind.QUORUM):
        QuorumPolicy([A, B], 3)


def test_trusted_fingerprints_are_normalized_and_duplicates_count_once() -> None:
    policy = QuorumPolicy([A.lower(), A, " ".join([B[:20], B[20:]])], 2)
    assert policy.trusted == {A, B}
    with raises_kind(ErrorKind.QUORUM):
        QuorumPolicy([A, A.lower()], 2)
    with raises_kind(ErrorKind.USAGE):
        normalize_fingerprint("DEADBEEF")


def test_expected_digest_is_validated() -> None:
    with pytest.raises(RootseedError):
        check_quorum(TRUSTED, [good(A)], digest="sha256:nope", quorum=1)


FACT_KINDS = st.sampled_from(["good", "good-other-digest", "bad", "nopub", "expired"])
SIGNERS = st.sampled_from([A, B, C, M])


@given(st.lists(st.tuples(FACT_KINDS, SIGNERS), max_size=8), st.integers(1, 3))
def test_counting_invariants(items: list[tuple[str, str]], quorum: int) -> None:
    facts = []
    for kind, signer in items:
        facts.append({
            "good": lambda s: good(s),
            "good-other-digest": lambda s: good(s, digest=OTHER),
            "bad": lambda s: status(CryptoStatus.BAD, s),
            "nopub": lambda s: status(CryptoStatus.NO_PUBKEY, None),
            "expired": lambda s: status(CryptoStatus.EXPIRED_KEY, s),
        }[kind](signer))
    result = check_quorum(TRUSTED, facts, digest=DIGEST, quorum=quorum, reference=REF)
    expected = {s for kind, s in items if kind == "good" and s in TRUSTED}
    assert set(result.valid_signers) == expected
    assert len(result.valid_signers) == len(set(result.valid_signers))
    assert result.passed == (len(expected) >= quorum)
    assert len(result.verdicts) == len(facts)


def test_weak_reason_names_both_the_hash_and_the_key() -> None:
    facts = [made(good(A), HashAlgorithm.SHA1, bits=1024)]
    [verdict] = check_quorum(TRUSTED, facts, digest=DIGEST, quorum=1).verdicts
    assert verdict.reason is Reason.WEAK_HASH
    assert "SHA-1" in verdict.detail and "RSA-1024" in verdict.detail


def test_provenance_statement_signatures_count_only_for_their_bytes() -> None:
    statement = b'{"_type":"https://in-toto.io/Statement/v1"}\n'
    facts = [good(A, data=statement), good(B, data=statement + b" "),
             good(C, data=statement)]
    result = QuorumPolicy(TRUSTED, 2).evaluate_statement(facts, digest=DIGEST,
                                                         statement=statement)
    assert result.passed and result.valid_signers == (A, C)
    assert [v.reason for v in result.verdicts] == [None, Reason.WRONG_STATEMENT, None]
