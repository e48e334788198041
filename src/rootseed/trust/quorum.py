"""The trust decision: do at least N distinct trusted keys vouch for this manifest digest?

No I/O happens here. The input is what the OpenPGP layer found out about each signature
(:class:`~rootseed.trust.facts.SignatureFacts`), the trusted primary key fingerprints,
the expected manifest digest and (optionally) the expected docker reference. Counting is
over the trusted key list: an unknown key counts for nothing, a subkey counts for its
primary key, and each primary key counts once however many signatures it made.

The algorithm policy is decided here too, from the facts, whatever the OpenPGP layer
said: a signature made with MD5, SHA-1 or RIPEMD-160, or by an RSA, DSA or ElGamal key
under 2048 bits, never counts (the limits of Sequoia's StandardPolicy), and the reason is
given per signature.

The same decision serves provenance: :meth:`QuorumPolicy.evaluate_statement` counts
detached signatures over the exact bytes of one provenance statement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rootseed.errors import ErrorKind, RootseedError
from rootseed.trust import payload as payload_mod
from rootseed.trust.facts import CryptoStatus, HashAlgorithm, KeyAlgorithm, SignatureFacts
from rootseed.trust.payload import PayloadFormat


class Reason(StrEnum):
    """Why a signature does not count."""

    BAD_SIGNATURE = "bad-signature"
    UNTRUSTED_KEY = "untrusted-key"
    EXPIRED_KEY = "expired-key"
    REVOKED_KEY = "revoked-key"
    EXPIRED_SIGNATURE = "expired-signature"
    MALFORMED_PAYLOAD = "malformed-payload"
    WRONG_TYPE = "wrong-type"
    WRONG_DIGEST = "wrong-digest"
    WRONG_REFERENCE = "wrong-reference"
    DUPLICATE_SIGNER = "duplicate-signer"
    WEAK_HASH = "weak-hash"
    WEAK_KEY = "weak-key"
    WRONG_STATEMENT = "wrong-statement"


#: Hash algorithms whose signatures never count (no collision resistance).
WEAK_HASHES = frozenset({HashAlgorithm.MD5, HashAlgorithm.SHA1, HashAlgorithm.RIPEMD160})
#: Key algorithms whose strength is their modulus/prime size, and the least size accepted.
SIZED_KEYS = frozenset({KeyAlgorithm.RSA, KeyAlgorithm.DSA, KeyAlgorithm.ELGAMAL})
MIN_KEY_BITS = 2048


def policy_problem(f: SignatureFacts) -> tuple[Reason, str] | None:
    """Why the algorithm policy refuses ``f`` (hash first, then key size), or None."""
    problems: list[tuple[Reason, str]] = []
    if f.hash_algorithm in WEAK_HASHES:
        problems.append((Reason.WEAK_HASH,
                         f"made with {f.hash_algorithm}, which is refused (no collision "
                         "resistance)"))
    if (f.key_algorithm in SIZED_KEYS and f.key_bits is not None
            and f.key_bits < MIN_KEY_BITS):
        problems.append((Reason.WEAK_KEY,
                         f"made by a {f.key_algorithm}-{f.key_bits} key; {f.key_algorithm} "
                         f"keys under {MIN_KEY_BITS} bits are refused"))
    if not problems:
        return None
    return problems[0][0], "; ".join(detail for _, detail in problems)


_CRYPTO_REASONS = {
    CryptoStatus.BAD: Reason.BAD_SIGNATURE,
    CryptoStatus.UNREADABLE: Reason.BAD_SIGNATURE,
    CryptoStatus.NO_PUBKEY: Reason.UNTRUSTED_KEY,
    CryptoStatus.EXPIRED_KEY: Reason.EXPIRED_KEY,
    CryptoStatus.REVOKED_KEY: Reason.REVOKED_KEY,
    CryptoStatus.EXPIRED_SIGNATURE: Reason.EXPIRED_SIGNATURE,
}

_FINGERPRINT_RE = re.compile(r"[0-9A-F]{40}|[0-9A-F]{64}")


def normalize_fingerprint(text: str) -> str:
    """``"57157a7f b4c2…"`` → ``"57157A7FB4C2…"``; a clear error if it is not a fingerprint."""
    fpr = "".join(text.split()).upper().removeprefix("0X")
    if _FINGERPRINT_RE.fullmatch(fpr) is None:
        raise RootseedError(f"not an OpenPGP fingerprint: {text!r}",
                            hint="use the full 40 (v4) or 64 (v5) hex digit fingerprint",
                            kind=ErrorKind.USAGE)
    return fpr


@dataclass(frozen=True)
class Verdict:
    """The decision about one signature."""

    name: str
    counted: bool
    reason: Reason | None
    detail: str
    signer: str | None  # primary fingerprint, when known
    signing_key: str | None  # the (sub)key that made the signature, when known
    user_id: str | None
    reference: str | None  # the docker reference the signature claims, when readable
    format: PayloadFormat | None = None  # atomic or StageX's legacy payload, when readable

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counted": self.counted,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "signer": self.signer,
            "signing_key": self.signing_key,
            "user_id": self.user_id,
            "reference": self.reference,
            "format": None if self.format is None else self.format.value,
        }


@dataclass(frozen=True)
class QuorumResult:
    """The outcome: ``passed`` iff at least ``quorum`` distinct trusted signers counted."""

    passed: bool
    quorum: int
    digest: str
    reference: str | None
    trusted: tuple[str, ...]
    valid_signers: tuple[str, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def rejected(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.counted)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "quorum": self.quorum,
            "valid": len(self.valid_signers),
            "digest": self.digest,
            "reference": self.reference,
            "trusted": list(self.trusted),
            "valid_signers": list(self.valid_signers),
            "signatures": [v.to_json() for v in self.verdicts],
        }


def _reference_matches(claimed: str, expected: str) -> bool:
    """Exact match if ``expected`` has a tag or digest; else any tag of the same repository."""
    want = payload_mod.parse_reference(expected)
    if want.tag is not None or want.digest is not None:
        return claimed == expected
    try:
        have = payload_mod.parse_reference(claimed)
    except payload_mod.PayloadError:
        return False
    return have.name == want.name


class QuorumPolicy:
    """``quorum`` distinct keys out of ``trusted`` (primary fingerprints) must sign."""

    __slots__ = ("_quorum", "_trusted")

    def __init__(self, trusted: Iterable[str], quorum: int) -> None:
        keys = frozenset(normalize_fingerprint(t) for t in trusted)
        if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1:
            raise RootseedError(f"quorum must be at least 1, got {quorum!r}",
                                hint="a quorum of 0 would trust anything; use --quorum 1 or more",
                                kind=ErrorKind.USAGE)
        if quorum > len(keys):
            raise RootseedError(
                f"quorum {quorum} can never be met: only {len(keys)} trusted "
                f"key{'s' if len(keys) != 1 else ''} in the keyring",
                hint="add the other maintainers' keys to the keyring or lower --quorum",
                kind=ErrorKind.QUORUM)
        self._trusted = keys
        self._quorum = quorum

    @property
    def trusted(self) -> frozenset[str]:
        return self._trusted

    @property
    def quorum(self) -> int:
        return self._quorum

    def evaluate(self, facts: Sequence[SignatureFacts], *, digest: str,
                 reference: str | None = None) -> QuorumResult:
        """Decide, signature by signature, in the order given (image signatures)."""
        payload_mod.check_manifest_digest(digest)
        if reference is not None:
            payload_mod.parse_reference(reference)

        def claim(f: SignatureFacts) -> _Claim:
            try:
                payload = payload_mod.parse(f.payload or b"")
            except payload_mod.WrongTypeError as e:
                return _Claim(Reason.WRONG_TYPE, e.message)
            except payload_mod.PayloadError as e:
                return _Claim(Reason.MALFORMED_PAYLOAD, e.message)
            got = _Claim(None, "valid", payload.docker_reference, payload.format)
            if payload.manifest_digest != digest:
                return got.refuse(Reason.WRONG_DIGEST,
                                  f"signs {payload.manifest_digest}, expected {digest}")
            if reference is not None and not _reference_matches(payload.docker_reference,
                                                                 reference):
                return got.refuse(Reason.WRONG_REFERENCE,
                                  f"signs {payload.docker_reference}, expected {reference}")
            if payload.format is PayloadFormat.LEGACY:
                return _Claim(None, "valid (legacy format)", payload.docker_reference,
                              payload.format)
            return got

        return self._decide(facts, digest, reference, claim)

    def evaluate_statement(self, facts: Sequence[SignatureFacts], *, digest: str,
                           statement: bytes) -> QuorumResult:
        """Decide over detached signatures of one provenance statement (its exact bytes).

        ``digest`` is the image the statement describes (the caller checks its subject).
        """
        payload_mod.check_manifest_digest(digest)

        def claim(f: SignatureFacts) -> _Claim:
            if f.payload != statement:
                return _Claim(Reason.WRONG_STATEMENT,
                              "signs other data than this provenance statement")
            return _Claim(None, "valid")

        return self._decide(facts, digest, None, claim)

    def _decide(self, facts: Sequence[SignatureFacts], digest: str, reference: str | None,
                claim: Callable[[SignatureFacts], _Claim]) -> QuorumResult:
        counted: list[str] = []
        verdicts = [self._judge(f, claim, counted) for f in facts]
        return QuorumResult(
            passed=len(counted) >= self.quorum, quorum=self.quorum, digest=digest,
            reference=reference, trusted=tuple(sorted(self.trusted)),
            valid_signers=tuple(counted), verdicts=tuple(verdicts))

    def _judge(self, f: SignatureFacts, claim: Callable[[SignatureFacts], _Claim],
               counted: list[str]) -> Verdict:
        signer = f.primary_fingerprint.upper() if f.primary_fingerprint else None

        def no(reason: Reason, detail: str, got: _Claim | None = None) -> Verdict:
            return Verdict(f.name, False, reason, detail, signer, f.signing_fingerprint,
                           f.user_id, None if got is None else got.reference,
                           None if got is None else got.format)

        weak = policy_problem(f)
        if weak is not None:
            return no(*weak)
        if f.status is not CryptoStatus.GOOD:
            return no(_CRYPTO_REASONS[f.status], f.detail)
        if signer is None or signer not in self.trusted:
            return no(Reason.UNTRUSTED_KEY, f"key {signer} is not in the trusted key list")
        got = claim(f)
        if got.reason is not None:
            return no(got.reason, got.detail, got)
        if signer in counted:
            return no(Reason.DUPLICATE_SIGNER,
                      f"key {signer} already counted; each key counts once", got)
        counted.append(signer)
        return Verdict(f.name, True, None, got.detail, signer, f.signing_fingerprint,
                       f.user_id, got.reference, got.format)


@dataclass(frozen=True)
class _Claim:
    """What one verified signature vouches for, and whether that is what was asked."""

    reason: Reason | None
    detail: str
    reference: str | None = None
    format: PayloadFormat | None = None

    def refuse(self, reason: Reason, detail: str) -> _Claim:
        return _Claim(reason, detail, self.reference, self.format)


def check_quorum(trusted: Iterable[str], facts: Sequence[SignatureFacts], *, digest: str,
                 quorum: int, reference: str | None = None) -> QuorumResult:
    """Functional form of :meth:`QuorumPolicy.evaluate`."""
    return QuorumPolicy(trusted, quorum).evaluate(facts, digest=digest, reference=reference)
