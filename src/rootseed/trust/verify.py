"""Verify images and their provenance against a signature store: store + Sequoia + quorum.

:class:`ImageVerifier` parses the keyring once for many images, so ``rootseed verify``
and the provenance ``trace``/``report`` hooks share one code path.

Provenance signatures
---------------------
``rootseed sign`` also signs the image's ``provenance.json``: a *detached*, binary OpenPGP
signature over the file's exact bytes, stored beside the image signatures as
``<registry>/<stage>-<name>@sha256=<manifest hex>/provenance-<N>`` (N = 1, 2, …, read up
to the first gap like ``signature-N``). A detached signature was chosen over a DSSE
envelope so that the statement stays the plain file ``trace`` and other in-toto tools
read, the keys, the policy and the quorum are exactly those of the image signatures, and
gpg (``gpg --verify provenance-1 provenance.json``) can check it without other tools.
What binds a provenance signature to its image is the statement itself: its one subject
is the image's manifest digest, which ``trace`` recomputes from the layout, and the
signature sits in that digest's directory. A provenance signature counts only if it
verifies over the statement's exact bytes; an image signature (a signed message whose
payload is the "atomic container signature" JSON) is never mistaken for one, nor the
other way round, because neither payload parses as the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rootseed.trust import store
from rootseed.trust.facts import CryptoStatus, SignatureFacts
from rootseed.trust.quorum import QuorumPolicy, QuorumResult
from rootseed.trust.sequoia import Keyring


@dataclass(frozen=True)
class Checked:
    """A quorum result and the numbered files past a gap that were not counted."""

    result: QuorumResult
    ignored: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.result.passed

    @property
    def line(self) -> str:
        return status_line(self.result, self.ignored)


def _facts(listing: store.Listing, *, keyring: Keyring,
           detached: bytes | None) -> list[SignatureFacts]:
    facts: list[SignatureFacts] = []
    for stored in listing.files:
        if stored.data is None:
            facts.append(SignatureFacts(stored.name, CryptoStatus.UNREADABLE,
                                        stored.problem or "unreadable"))
        elif detached is None:
            facts.append(keyring.check(stored.data, name=stored.name))
        else:
            facts.append(keyring.check_detached(stored.data, detached, name=stored.name))
    return facts


class ImageVerifier:
    """Check ``<signatures>/<registry>/<name>@sha256=…`` against a keyring and a quorum."""

    def __init__(self, keyring: Path, *, signatures: Path, registry: str, quorum: int) -> None:
        self._keyring = Keyring.from_file(keyring)
        self._signatures = signatures
        self._registry = registry
        self._policy = QuorumPolicy(self._keyring.fingerprints, quorum)

    def __enter__(self) -> ImageVerifier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def directory(self, name: str, digest: str) -> Path:
        return store.signature_dir(self._signatures, self._registry, name, digest)

    def check_image(self, name: str, digest: str, *, tag: str | None = None) -> Checked:
        """The quorum on image ``name`` at ``digest`` (any tag unless ``tag``)."""
        reference = f"{self._registry}/{name}" + (f":{tag}" if tag is not None else "")
        listing = store.read_signatures(self.directory(name, digest), store.Kind.IMAGE)
        facts = _facts(listing, keyring=self._keyring, detached=None)
        return Checked(self._policy.evaluate(facts, digest=digest, reference=reference),
                       listing.ignored)

    def check(self, name: str, digest: str, *, tag: str | None = None) -> QuorumResult:
        """:meth:`check_image`'s quorum result alone."""
        return self.check_image(name, digest, tag=tag).result

    def check_provenance(self, name: str, digest: str, statement: bytes) -> Checked:
        """The quorum of detached ``provenance-N`` signatures over ``statement``'s bytes."""
        listing = store.read_signatures(self.directory(name, digest), store.Kind.PROVENANCE)
        facts = _facts(listing, keyring=self._keyring, detached=statement)
        return Checked(self._policy.evaluate_statement(facts, digest=digest,
                                                       statement=statement),
                       listing.ignored)

    def status(self, name: str, digest: str) -> str:
        """One line for the provenance quorum hook: ``quorum 2/2 met``, or why not.

        e.g. ``quorum 0/2 NOT met: no signatures`` or
        ``quorum 1/2 NOT met: signature-2 wrong-digest``.
        """
        return self.check_image(name, digest).line

    # The trace hook (rootseed.provenance.trace.SignatureCheck).
    def image(self, package: str, digest: str) -> Checked:
        return self.check_image(package, digest)

    def provenance(self, package: str, digest: str, statement: bytes) -> Checked:
        return self.check_provenance(package, digest, statement)


def status_line(result: QuorumResult, ignored: Sequence[str] = ()) -> str:
    """``quorum <valid>/<required> met`` or ``… NOT met: <why>`` (no host paths)."""
    head = f"quorum {len(result.valid_signers)}/{result.quorum}"
    gap = (f" ({', '.join(ignored)} after a gap in the numbering: not counted)"
           if ignored else "")
    if result.passed:
        return f"{head} met{gap}"
    if not result.verdicts:
        why = "no signatures"
    else:
        why = "; ".join(f"{v.name} {v.reason.value}" for v in result.rejected
                        if v.reason is not None)
        if not why:
            n = len(result.valid_signers)
            why = f"only {n} distinct trusted signer{'s' if n != 1 else ''}"
    return f"{head} NOT met: {why}{gap}"
