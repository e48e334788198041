"""Verify images against a signature store: the glue of store + gpg + quorum.

:class:`ImageVerifier` keeps one throwaway keyring open for many images, so callers such
as ``rootseed verify`` and the provenance ``trace``/``report`` quorum hook
(``QuorumStatus``: ``(package, digest) -> str | None``) share one code path.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rootseed.trust import store
from rootseed.trust.gpg import Keyring
from rootseed.trust.quorum import QuorumPolicy, QuorumResult


class ImageVerifier:
    """Check ``<signatures>/<registry>/<name>@sha256=…`` against a keyring and a quorum."""

    def __init__(self, keyring: Path, *, signatures: Path, registry: str, quorum: int) -> None:
        self._keyring = Keyring.from_file(keyring)
        self._signatures = signatures
        self._registry = registry
        self._quorum = quorum
        self._policy: QuorumPolicy | None = None

    def __enter__(self) -> ImageVerifier:
        self._keyring.__enter__()
        try:
            self._policy = QuorumPolicy(self._keyring.fingerprints, self._quorum)
        except BaseException:
            self._keyring.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._keyring.close()

    def directory(self, name: str, digest: str) -> Path:
        return store.signature_dir(self._signatures, self._registry, name, digest)

    def check(self, name: str, digest: str, *, tag: str | None = None) -> QuorumResult:
        """The quorum result for image ``name`` at ``digest`` (any tag unless ``tag``)."""
        if self._policy is None:
            raise RuntimeError("ImageVerifier used outside its 'with' block")
        reference = f"{self._registry}/{name}" + (f":{tag}" if tag is not None else "")
        files = store.list_signatures(self.directory(name, digest))
        facts = [self._keyring.check_file(f) for f in files]
        return self._policy.evaluate(facts, digest=digest, reference=reference)

    def status(self, name: str, digest: str) -> str:
        """One line for the provenance quorum hook: ``quorum 2/2 met``, or why not.

        e.g. ``quorum 0/2 NOT met: no signatures`` or
        ``quorum 1/2 NOT met: signature-2 wrong-digest``.
        """
        return status_line(self.check(name, digest))


def status_line(result: QuorumResult) -> str:
    """``quorum <valid>/<required> met`` or ``… NOT met: <why>`` (no host paths)."""
    head = f"quorum {len(result.valid_signers)}/{result.quorum}"
    if result.passed:
        return f"{head} met"
    if not result.verdicts:
        why = "no signatures"
    else:
        why = "; ".join(f"{v.name} {v.reason.value}" for v in result.rejected
                        if v.reason is not None)
        if not why:
            n = len(result.valid_signers)
            why = f"only {n} distinct trusted signer{'s' if n != 1 else ''}"
    return f"{head} NOT met: {why}"
