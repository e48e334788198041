"""The trust decision: do at least N distinct trusted keys vouch for this manifest digest?

No I/O happens here. The input is what GnuPG found out about each signature
(:class:`~rootseed.trust.facts.SignatureFacts`), the trusted primary key fingerprints,
the expected manifest digest and (optionally) the expected docker reference. Counting is
over the trusted key list: an unknown key counts for nothing, a subkey counts for its
primary key, and each primary key counts once however many signatures it made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rootseed.errors import RootseedError
from rootseed.trust import payload as payload_mod
from rootseed.trust.facts import CryptoStatus, SignatureFacts


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
                            hint="use the full 40 (v4) or 64 (v5) hex digit fingerprint")
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
                                hint="a quorum of 0 would trust anything; use --quorum 1 or more")
        if quorum > len(keys):
            raise RootseedError(
                f"quorum {quorum} can never be met: only {len(keys)} trusted "
                f"key{'s' if len(keys) != 1 else ''} in the keyring",
                hint="add the other maintainers' keys to the keyring or lower --quorum")
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
        """Decide, signature by signature, in the order given."""
        payload_mod.check_manifest_digest(digest)
        if reference is not None:
            payload_mod.parse_reference(reference)
        counted: list[str] = []
        verdicts = [self._judge(f, digest, reference, counted) for f in facts]
        return QuorumResult(
            passed=len(counted) >= self.quorum, quorum=self.quorum, digest=digest,
            reference=reference, trusted=tuple(sorted(self.trusted)),
            valid_signers=tuple(counted), verdicts=tuple(verdicts))

    def _judge(self, f: SignatureFacts, digest: str, reference: str | None,
               counted: list[str]) -> Verdict:
        signer = f.primary_fingerprint.upper() if f.primary_fingerprint else None
        claimed: str | None = None

        def no(reason: Reason, detail: str) -> Verdict:
            return Verdict(f.name, False, reason, detail, signer, f.signing_fingerprint,
                           f.user_id, claimed)

        if f.status is not CryptoStatus.GOOD:
            return no(_CRYPTO_REASONS[f.status], f.detail)
        if signer is None or signer not in self.trusted:
            return no(Reason.UNTRUSTED_KEY, f"key {signer} is not in the trusted key list")
        try:
            claim = payload_mod.parse(f.payload or b"")
        except payload_mod.WrongTypeError as e:
            return no(Reason.WRONG_TYPE, e.message)
        except payload_mod.PayloadError as e:
            return no(Reason.MALFORMED_PAYLOAD, e.message)
        claimed = claim.docker_reference
        if claim.manifest_digest != digest:
            return no(Reason.WRONG_DIGEST,
                      f"signs {claim.manifest_digest}, expected {digest}")
        if reference is not None and not _reference_matches(claimed, reference):
            return no(Reason.WRONG_REFERENCE, f"signs {claimed}, expected {reference}")
        if signer in counted:
            return no(Reason.DUPLICATE_SIGNER,
                      f"key {signer} already counted; each key counts once")
        counted.append(signer)
        return Verdict(f.name, True, None, "valid", signer, f.signing_fingerprint,
                       f.user_id, claimed)


def check_quorum(trusted: Iterable[str], facts: Sequence[SignatureFacts], *, digest: str,
                 quorum: int, reference: str | None = None) -> QuorumResult:
    """Functional form of :meth:`QuorumPolicy.evaluate`."""
    return QuorumPolicy(trusted, quorum).evaluate(facts, digest=digest, reference=reference)
