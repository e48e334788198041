"""What GnuPG found out about one signature file: plain data, no behaviour.

:mod:`rootseed.trust.gpg` produces these; :mod:`rootseed.trust.quorum` decides from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CryptoStatus(StrEnum):
    """The cryptographic outcome of checking one signature file."""

    #: A good signature by a key in the keyring, neither expired nor revoked.
    GOOD = "good"
    #: The signature does not match the signed data (BADSIG).
    BAD = "bad"
    #: The signing key is not in the keyring (ERRSIG rc=9 / NO_PUBKEY).
    NO_PUBKEY = "no-pubkey"
    #: Good signature, but the signing key has expired (EXPKEYSIG).
    EXPIRED_KEY = "expired-key"
    #: Good signature, but the signing key has been revoked (REVKEYSIG).
    REVOKED_KEY = "revoked-key"
    #: Good signature, but the signature itself has expired (EXPSIG).
    EXPIRED_SIGNATURE = "expired-signature"
    #: Not exactly one checkable OpenPGP signature (garbage, truncated, several, ERRSIG).
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class SignatureFacts:
    """One signature file as GnuPG saw it.

    ``primary_fingerprint`` is VALIDSIG's last field (the primary key of the signing
    (sub)key); ``payload`` is the signed data, present whenever the signature verified
    cryptographically (also for an expired or revoked key).
    """

    name: str
    status: CryptoStatus
    detail: str = ""
    key_id: str | None = None
    signing_fingerprint: str | None = None
    primary_fingerprint: str | None = None
    user_id: str | None = None
    payload: bytes | None = None
