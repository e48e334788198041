"""The boundary to Sequoia (pysequoia): check signatures in-process against a keyring.

Every signature is verified by Sequoia's ``StandardPolicy`` (what pysequoia's ``verify``
uses), with no GnuPG home, agent or trust database involved. Nothing here decides
trust: :meth:`Keyring.check` and :meth:`Keyring.check_detached` return
:class:`~rootseed.trust.facts.SignatureFacts` for :mod:`rootseed.trust.quorum`, which also
applies the algorithm policy from the hash and key facts read here.

pysequoia reports every failure as one ``RuntimeError`` whose text is not an interface,
so the reason a signature failed is never taken from that text: it is derived from the
packets (the issuer, the hash algorithm, the key's algorithm and size, its expiry and
revocation), and what remains is "does not verify".

One rule is stricter than Sequoia alone: a signature by a key that has *since* expired or
been revoked is reported as such (Sequoia accepts a signature made while the key was
valid). GnuPG, and so skopeo through gpgme, refuse those too, so whatever counts here is
also what skopeo accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pysequoia
from pysequoia import packet as pgp

from rootseed.errors import ErrorKind, RootseedError
from rootseed.trust import packets
from rootseed.trust.facts import CryptoStatus, HashAlgorithm, KeyAlgorithm, SignatureFacts

#: Largest signature file we read (a real one is under 1 KiB; containers/image allows 4 MiB).
MAX_SIGNATURE = 1 << 20
#: Largest signed payload inside an image signature (a real one is ~250 bytes).
MAX_PAYLOAD = 1 << 20

#: What pysequoia raises for malformed input and failed checks.
_SEQUOIA_ERRORS = (RuntimeError, ValueError, TypeError, OverflowError)

# pysequoia's enums are not hashable: key by their integer (OpenPGP algorithm id).
_HASHES = {
    int(pgp.HashAlgorithm.MD5): HashAlgorithm.MD5,
    int(pgp.HashAlgorithm.SHA1): HashAlgorithm.SHA1,
    int(pgp.HashAlgorithm.RipeMD): HashAlgorithm.RIPEMD160,
    int(pgp.HashAlgorithm.SHA224): HashAlgorithm.SHA224,
    int(pgp.HashAlgorithm.SHA256): HashAlgorithm.SHA256,
    int(pgp.HashAlgorithm.SHA384): HashAlgorithm.SHA384,
    int(pgp.HashAlgorithm.SHA512): HashAlgorithm.SHA512,
    int(pgp.HashAlgorithm.SHA3_256): HashAlgorithm.SHA3_256,
    int(pgp.HashAlgorithm.SHA3_512): HashAlgorithm.SHA3_512,
}

_KEYS = {
    int(pgp.PublicKeyAlgorithm.RSAEncryptSign): KeyAlgorithm.RSA,
    int(pgp.PublicKeyAlgorithm.RSASign): KeyAlgorithm.RSA,
    int(pgp.PublicKeyAlgorithm.RSAEncrypt): KeyAlgorithm.RSA,
    int(pgp.PublicKeyAlgorithm.DSA): KeyAlgorithm.DSA,
    int(pgp.PublicKeyAlgorithm.ElGamalEncrypt): KeyAlgorithm.ELGAMAL,
    int(pgp.PublicKeyAlgorithm.ElGamalEncryptSign): KeyAlgorithm.ELGAMAL,
    int(pgp.PublicKeyAlgorithm.ECDSA): KeyAlgorithm.ECDSA,
    int(pgp.PublicKeyAlgorithm.EdDSA): KeyAlgorithm.EDDSA,
    int(pgp.PublicKeyAlgorithm.Ed25519): KeyAlgorithm.ED25519,
    int(pgp.PublicKeyAlgorithm.Ed448): KeyAlgorithm.ED448,
}

_KEY_TAGS = (pgp.Tag.PublicKey, pgp.Tag.PublicSubkey, pgp.Tag.SecretKey, pgp.Tag.SecretSubkey)
_PRIMARY_TAGS = (pgp.Tag.PublicKey, pgp.Tag.SecretKey)


def _key_bits(body: bytes, algorithm: KeyAlgorithm) -> int | None:
    """Size of an RSA modulus / DSA or ElGamal prime: the first MPI of the key material.

    Read from the key packet (RFC 9580 §5.5.2): version 4 puts the material at byte 6;
    versions 5 and 6 put a 4-byte material length first (material at byte 10). pysequoia
    does not expose key sizes, and the policy needs them.
    """
    if algorithm not in (KeyAlgorithm.RSA, KeyAlgorithm.DSA, KeyAlgorithm.ELGAMAL) or not body:
        return None
    start = {4: 6, 5: 10, 6: 10}.get(body[0])
    if start is None or len(body) < start + 2:
        return None
    return int.from_bytes(body[start:start + 2], "big")


@dataclass(frozen=True)
class _Key:
    """One primary key or subkey of a certificate in the keyring."""

    fingerprint: str  # upper-case hex
    primary: str  # the certificate's primary fingerprint
    algorithm: KeyAlgorithm
    bits: int | None
    expires: datetime | None
    revoked: bool

    @property
    def key_id(self) -> str:
        # v4: the low 64 bits of the fingerprint; v6 (64 hex digits): the high 64 bits
        return self.fingerprint[-16:] if len(self.fingerprint) == 40 else self.fingerprint[:16]


@dataclass
class _Seen:
    """A key packet of a certificate while its following signatures are read."""

    fingerprint: str
    algorithm: KeyAlgorithm
    bits: int | None
    created: datetime | None
    primary: bool
    expires: datetime | None
    revoked: bool
    bound_at: datetime | None = None  # creation time of the newest binding signature


def _cert_keys(cert: pysequoia.Cert) -> list[_Key]:
    """Every key of ``cert`` with its size, expiry and revocation.

    The primary key's expiry and revocation are Sequoia's (under its policy); a subkey's
    expiry is its newest binding signature's key validity period (capped by the
    primary's), and a subkey revocation signature marks it revoked: pysequoia exposes
    neither for subkeys, so they are read from the packets.
    """
    try:
        cert_expires = cert.expiration
    except _SEQUOIA_ERRORS:  # the policy refuses the certificate itself; judged elsewhere
        cert_expires = None
    revoked = cert.is_revoked
    seen: list[_Seen] = []
    for packet in pgp.PacketPile.from_bytes(bytes(cert)):
        if packet.tag in _KEY_TAGS:
            algorithm = (KeyAlgorithm.OTHER if packet.key_algorithm is None
                         else _KEYS.get(int(packet.key_algorithm), KeyAlgorithm.OTHER))
            seen.append(_Seen((packet.fingerprint or "").upper(), algorithm,
                              _key_bits(packet.body, algorithm), packet.key_created,
                              packet.tag in _PRIMARY_TAGS, cert_expires, revoked))
        elif packet.tag == pgp.Tag.Signature and seen and not seen[-1].primary:
            key = seen[-1]
            kind = packet.signature_type
            if kind == pgp.SignatureType.SubkeyRevocation:
                key.revoked = True
            elif kind == pgp.SignatureType.SubkeyBinding:
                at = packet.signature_created
                if key.bound_at is None or (at is not None and at > key.bound_at):
                    key.bound_at = at
                    period = packet.key_validity_period
                    own = (key.created + period
                           if period is not None and key.created is not None else None)
                    key.expires = min((t for t in (own, cert_expires) if t is not None),
                                      default=None)
    primary = cert.fingerprint.upper()
    return [_Key(k.fingerprint, primary, k.algorithm, k.bits, k.expires, k.revoked)
            for k in seen if k.fingerprint]


class Keyring:
    """The trusted maintainers' certificates, parsed once; checks signature files."""

    def __init__(self, data: bytes, *, source: str) -> None:
        self._source = source
        try:
            self._certs: list[pysequoia.Cert] = list(pysequoia.Cert.split_bytes(data))
            keys = [key for cert in self._certs for key in _cert_keys(cert)]
        except _SEQUOIA_ERRORS as e:
            raise RootseedError(
                f"keyring {source} is not an OpenPGP key file: {_first_line(e)}",
                hint="export the trusted maintainers' keys with: gpg --export FPR... > "
                     "keyring.gpg", kind=ErrorKind.SIGNATURE) from e
        if not self._certs:
            raise RootseedError(
                f"keyring {source} holds no usable OpenPGP public keys",
                hint="export the trusted maintainers' keys with: gpg --export FPR... > "
                     "keyring.gpg", kind=ErrorKind.SIGNATURE)
        self._by_primary = {c.fingerprint.upper(): c for c in self._certs}
        self._by_handle: dict[str, _Key] = {}
        for key in keys:
            self._by_handle.setdefault(key.fingerprint, key)
            self._by_handle.setdefault(key.key_id, key)
        self.fingerprints: tuple[str, ...] = tuple(sorted({c.fingerprint.upper()
                                                           for c in self._certs}))
        self._user_ids = {c.fingerprint.upper(): _user_id(c) for c in self._certs}

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RootseedError(f"cannot read keyring {path}: {e.strerror}",
                                hint="pass --keyring with an OpenPGP public key file "
                                     "(binary or armored; gpg --export)",
                                kind=ErrorKind.SIGNATURE) from e
        return cls(data, source=str(path))

    def _store_for(self, key: _Key) -> Callable[[Sequence[str]], list[pysequoia.Cert]]:
        """What Sequoia may verify with: only the certificate of the key the signature
        names (looked up first, by fingerprint or key id). Handing it the whole keyring
        made each check cost a pass over every certificate (200 signatures against 3,000
        keys took a minute)."""
        cert = self._by_primary.get(key.primary)
        certs = [] if cert is None else [cert]
        return lambda _handles: certs

    def check(self, data: bytes, *, name: str) -> SignatureFacts:
        """Verify one OpenPGP signed message (signature + its payload) against the keyring."""
        return self._check(data, None, name)

    def check_detached(self, signature: bytes, data: bytes, *, name: str) -> SignatureFacts:
        """Verify a detached signature over ``data``; on success the payload is ``data``."""
        return self._check(signature, data, name)

    def _check(self, blob: bytes, detached: bytes | None, name: str) -> SignatureFacts:
        def unreadable(detail: str) -> SignatureFacts:
            return SignatureFacts(name, CryptoStatus.UNREADABLE, detail)

        if len(blob) > MAX_SIGNATURE:
            return unreadable(f"larger than {MAX_SIGNATURE} bytes; not a signature")
        try:
            packets.check_bounded(blob, MAX_PAYLOAD)
            pile = list(pgp.PacketPile.from_bytes(blob))
        except packets.FramingError as e:
            return unreadable(f"not a readable OpenPGP message: {e}")
        except _SEQUOIA_ERRORS as e:
            return unreadable(f"not a readable OpenPGP message: {_first_line(e)}")
        tags = [p.tag for p in pile]
        if tags == [pgp.Tag.CompressedData]:
            return unreadable("compressed with an algorithm this Sequoia build cannot open "
                              "(e.g. BZip2); re-sign without it (gpg --compress-algo none)")
        problem = _structure_problem(tags, detached=detached is not None)
        if problem is not None:
            return unreadable(problem)
        [sig] = [p for p in pile if p.tag == pgp.Tag.Signature]
        hash_algorithm = (_HASHES.get(int(sig.hash_algorithm), HashAlgorithm.OTHER)
                          if sig.hash_algorithm is not None else None)
        issuer = (sig.issuer_fingerprint or sig.issuer_key_id or "").upper()
        key = self._by_handle.get(issuer)
        base = SignatureFacts(name, CryptoStatus.BAD, key_id=issuer or None,
                              hash_algorithm=hash_algorithm)
        if key is None:
            return replace(base, status=CryptoStatus.NO_PUBKEY,
                           detail=f"the signing key {issuer or '(not named)'} is not in the "
                                  "keyring")
        base = replace(base, key_algorithm=key.algorithm, key_bits=key.bits,
                       signing_fingerprint=key.fingerprint, primary_fingerprint=key.primary,
                       user_id=self._user_ids.get(key.primary))
        try:
            store = self._store_for(key)
            if detached is None:
                result = pysequoia.verify(bytes=blob, store=store)
            else:
                result = pysequoia.verify(bytes=detached, store=store,
                                          signature=pysequoia.Sig.from_bytes(blob))
            valid = list(result.valid_sigs)
        except _SEQUOIA_ERRORS:
            return self._failed(base, key, sig)
        if len(valid) != 1:
            return unreadable(f"{len(valid)} valid signatures in one file; exactly one is "
                              "expected")
        signing = str(valid[0].signing_key).upper()
        key = self._by_handle.get(signing, key)
        payload = detached if detached is not None else result.bytes
        if payload is None or len(payload) > MAX_PAYLOAD:
            return unreadable("the signed payload is missing or too large")
        good = replace(base, status=CryptoStatus.GOOD, detail="good signature (Sequoia, "
                       "StandardPolicy)", signing_fingerprint=signing,
                       primary_fingerprint=str(valid[0].certificate).upper(),
                       key_algorithm=key.algorithm, key_bits=key.bits, payload=payload)
        now = datetime.now(UTC)
        if key.revoked:
            return replace(good, status=CryptoStatus.REVOKED_KEY,
                           detail="the signing key has been revoked")
        if key.expires is not None and key.expires <= now:
            return replace(good, status=CryptoStatus.EXPIRED_KEY,
                           detail=f"the signing key expired on {key.expires:%Y-%m-%d}")
        return good

    @staticmethod
    def _failed(base: SignatureFacts, key: _Key, sig: pgp.Packet) -> SignatureFacts:
        """Why Sequoia refused a signature by a known key, from the packets alone."""
        now = datetime.now(UTC)
        created = sig.signature_created
        expiry = sig.signature_expiration_time
        if key.revoked:
            return replace(base, status=CryptoStatus.REVOKED_KEY,
                           detail="the signing key has been revoked")
        if expiry is not None and expiry <= now:
            return replace(base, status=CryptoStatus.EXPIRED_SIGNATURE,
                           detail=f"the signature expired on {expiry:%Y-%m-%d}")
        if key.expires is not None and created is not None and key.expires <= created:
            return replace(base, status=CryptoStatus.EXPIRED_KEY,
                           detail=f"the signing key had expired ({key.expires:%Y-%m-%d}) "
                                  "when it signed")
        return replace(base, detail="does not verify under Sequoia's StandardPolicy (the "
                                    "data or the signature was changed, or an algorithm "
                                    "is refused)")


def _structure_problem(tags: list[pgp.Tag], *, detached: bool) -> str | None:
    """Exactly one signature; for a signed message, one literal and at most one one-pass."""
    signatures = tags.count(pgp.Tag.Signature)
    if signatures != 1:
        return (f"{signatures} signatures in one file; exactly one is expected" if signatures
                else "no OpenPGP signature found")
    if detached:
        return None if tags == [pgp.Tag.Signature] else "not a detached OpenPGP signature"
    allowed = (pgp.Tag.Signature, pgp.Tag.Literal, pgp.Tag.OnePassSig, pgp.Tag.CompressedData)
    if (tags.count(pgp.Tag.Literal) != 1 or tags.count(pgp.Tag.OnePassSig) > 1
            or tags.count(pgp.Tag.CompressedData) > 1 or not all(t in allowed for t in tags)):
        return "not a signed OpenPGP message (one literal data packet and one signature)"
    return None


def _user_id(cert: pysequoia.Cert) -> str | None:
    try:
        ids = cert.user_ids
    except _SEQUOIA_ERRORS:
        return None
    return str(ids[0]) if ids else None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
