"""What the OpenPGP layer found out about one signature file: plain data, no behaviour.

:mod:`rootseed.trust.sequoia` produces these; :mod:`rootseed.trust.quorum` decides from them
(including the algorithm policy: the hash and key facts below are judged there, not here).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CryptoStatus(StrEnum):
    """The cryptographic outcome of checking one signature file."""

    #: A good signature by a key in the keyring, neither expired nor revoked.
    GOOD = "good"
    #: The signature does not match the signed data.
    BAD = "bad"
    #: The signing key is not in the keyring.
    NO_PUBKEY = "no-pubkey"
    #: Good signature, but the signing key has expired (now, or when it signed).
    EXPIRED_KEY = "expired-key"
    #: The signing key (or the subkey that signed) has been revoked.
    REVOKED_KEY = "revoked-key"
    #: The signature itself has expired.
    EXPIRED_SIGNATURE = "expired-signature"
    #: Not exactly one checkable OpenPGP signature (garbage, truncated, several, too large).
    UNREADABLE = "unreadable"


class HashAlgorithm(StrEnum):
    """The hash algorithm a signature was made with (RFC 9580 §9.5 names)."""

    MD5 = "MD5"
    SHA1 = "SHA-1"
    RIPEMD160 = "RIPEMD-160"
    SHA224 = "SHA-224"
    SHA256 = "SHA-256"
    SHA384 = "SHA-384"
    SHA512 = "SHA-512"
    SHA3_256 = "SHA3-256"
    SHA3_512 = "SHA3-512"
    OTHER = "other"


class KeyAlgorithm(StrEnum):
    """The public-key algorithm of the key that made a signature."""

    RSA = "RSA"
    DSA = "DSA"
    ELGAMAL = "ElGamal"
    ECDSA = "ECDSA"
    EDDSA = "EdDSA"
    ED25519 = "Ed25519"
    ED448 = "Ed448"
    OTHER = "other"


@dataclass(frozen=True)
class SignatureFacts:
    """One signature file as the OpenPGP layer saw it.

    ``primary_fingerprint`` is the certificate (primary key) the signing (sub)key belongs
    to; ``payload`` is the signed data, present whenever the signature verified
    cryptographically (also for an expired or revoked key). ``hash_algorithm``,
    ``key_algorithm`` and ``key_bits`` (modulus/prime size for RSA, DSA and ElGamal) are
    read from the packets whenever they are known, whatever the status.
    """

    name: str
    status: CryptoStatus
    detail: str = ""
    key_id: str | None = None
    signing_fingerprint: str | None = None
    primary_fingerprint: str | None = None
    user_id: str | None = None
    payload: bytes | None = None
    hash_algorithm: HashAlgorithm | None = None
    key_algorithm: KeyAlgorithm | None = None
    key_bits: int | None = None
