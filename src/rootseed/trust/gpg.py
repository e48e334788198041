"""The boundary to GnuPG: sign a payload, and check signature files against a keyring.

Everything here runs the ``gpg`` program with ``--batch`` and reads its machine-readable
status lines (``--status-file``; see GnuPG's ``doc/DETAILS``), never its human messages.
Checking happens in a throwaway GNUPGHOME that holds only the given public keys, so the
user's own keyring, trust database and configuration play no part in a verification.
Nothing here decides trust: :meth:`Keyring.check` returns
:class:`~rootseed.trust.facts.SignatureFacts` for :mod:`rootseed.trust.quorum`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rootseed.errors import RootseedError
from rootseed.trust.facts import CryptoStatus, SignatureFacts

#: Largest signed payload we accept (a real one is ~250 bytes); guards against
#: compression bombs in hostile signature files.
MAX_PAYLOAD = 1 << 20

_COMMON = ["--batch", "--no-tty", "--no-greeting", "--no-auto-key-retrieve",
           "--no-auto-check-trustdb"]


def gpg_program() -> str:
    """The ``gpg`` executable, or a clear error if GnuPG is not installed."""
    path = shutil.which("gpg")
    if path is None:
        raise RootseedError("GnuPG (gpg) is not installed or not on PATH",
                            hint="install it (Debian: apt-get install gnupg)")
    return path


@dataclass(frozen=True)
class _Run:
    returncode: int
    stdout: bytes
    stderr: str
    status: tuple[tuple[str, str], ...]  # (keyword, rest of line)

    def first(self, keyword: str) -> str | None:
        return next((rest for kw, rest in self.status if kw == keyword), None)

    def count(self, keyword: str) -> int:
        return sum(1 for kw, _ in self.status if kw == keyword)

    def stderr_tail(self, lines: int = 3) -> str:
        text = [line.removeprefix("gpg: ").strip() for line in self.stderr.splitlines()]
        return "; ".join([t for t in text if t][-lines:])


def _run(args: list[str], *, homedir: Path | None, stdin: bytes | None = None) -> _Run:
    env = dict(os.environ, LC_ALL="C", LANGUAGE="C")
    home_args: list[str] = []
    if homedir is not None:
        env.pop("GNUPGHOME", None)
        home_args = ["--homedir", str(homedir)]
    with tempfile.TemporaryDirectory(prefix="rootseed-gpg-status-") as tmp:
        status_file = Path(tmp) / "status"
        argv = [gpg_program(), *home_args, *_COMMON, "--status-file", str(status_file), *args]
        try:
            proc = subprocess.run(argv, input=stdin if stdin is not None else b"",
                                  capture_output=True, env=env, check=False)
        except OSError as e:
            raise RootseedError(f"cannot run gpg: {e}",
                                hint="check that GnuPG is installed and runnable") from e
        raw = status_file.read_bytes().decode("utf-8", "replace") if status_file.exists() else ""
    status: list[tuple[str, str]] = []
    for line in raw.splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, _, rest = line[len("[GNUPG:] "):].partition(" ")
            status.append((keyword, rest))
    return _Run(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"),
                tuple(status))


def _unescape(text: str) -> str:
    """Undo the ``%XX`` escaping GnuPG applies to user IDs in status lines."""
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m[1], 16)), text)


def _home_hint(gnupghome: Path | None) -> str:
    where = f"--homedir {gnupghome} " if gnupghome is not None else ""
    return where


def sign(payload: bytes, key: str, *, gnupghome: Path | None = None) -> bytes:
    """Sign ``payload`` with ``key``: a binary (not armored) OpenPGP signed message.

    ``key`` is anything ``gpg --local-user`` accepts; a fingerprint with a trailing ``!``
    forces that exact (sub)key. ``gnupghome`` defaults to GnuPG's own default.
    """
    run = _run(["--no-armor", "--compress-algo", "none", "--local-user", key,
                "--output", "-", "--sign"], homedir=gnupghome, stdin=payload)
    if run.returncode != 0 or run.first("SIG_CREATED") is None or not run.stdout:
        raise RootseedError(
            f"gpg could not sign with key {key}: {run.stderr_tail() or f'exit {run.returncode}'}",
            hint=f"check that the secret key is available: gpg {_home_hint(gnupghome)}"
                 f"--list-secret-keys {key.rstrip('!')}")
    if not run.stdout[0] & 0x80:
        raise RootseedError("gpg produced an armored or unknown signature format, not binary "
                            "OpenPGP", hint="remove 'armor' from gpg.conf for this key's home")
    return run.stdout


def export_public_key(key: str, *, gnupghome: Path | None = None) -> bytes:
    """The public key (primary and subkeys) for ``key``, as binary OpenPGP."""
    run = _run(["--export", key.rstrip("!")], homedir=gnupghome)
    if run.returncode != 0 or not run.stdout:
        raise RootseedError(
            f"no public key {key} in the GnuPG home{'' if gnupghome is None else f' {gnupghome}'}",
            hint=f"list keys with: gpg {_home_hint(gnupghome)}--list-keys")
    return run.stdout


class Keyring:
    """A throwaway GNUPGHOME holding only the public keys from ``data``.

    Use as a context manager; the directory (and any agent GnuPG started in it) is
    removed on exit. :attr:`fingerprints` are the primary key fingerprints it holds.
    """

    def __init__(self, data: bytes, *, source: str) -> None:
        self._data = data
        self._source = source
        self._home: Path | None = None
        self._counter = 0
        self.fingerprints: tuple[str, ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            return cls(path.read_bytes(), source=str(path))
        except OSError as e:
            raise RootseedError(f"cannot read keyring {path}: {e.strerror}",
                                hint="pass --keyring with an OpenPGP public key file "
                                     "(binary or armored; gpg --export)") from e

    def __enter__(self) -> Keyring:
        self._home = Path(tempfile.mkdtemp(prefix="rootseed-gnupg-"))
        self._home.chmod(0o700)
        try:
            self._import()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        home, self._home = self._home, None
        if home is None:
            return
        if any(p.name.startswith("S.") for p in home.iterdir()):
            gpgconf = shutil.which("gpgconf")
            if gpgconf is not None:
                subprocess.run([gpgconf, "--homedir", str(home), "--kill", "all"],
                               capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)

    @property
    def home(self) -> Path:
        if self._home is None:
            raise RuntimeError("Keyring used outside its 'with' block")
        return self._home

    def _import(self) -> None:
        run = _run(["--import"], homedir=self.home, stdin=self._data)
        listing = _run(["--with-colons", "--fixed-list-mode", "--list-keys"], homedir=self.home)
        primaries: list[str] = []
        expect_primary = False
        for line in listing.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if fields[0] == "pub":
                expect_primary = True
            elif fields[0] == "fpr" and expect_primary and len(fields) > 9:
                primaries.append(fields[9].upper())
                expect_primary = False
        if not primaries:
            raise RootseedError(
                f"keyring {self._source} holds no usable OpenPGP public keys"
                + (f" ({run.stderr_tail()})" if run.stderr_tail() else ""),
                hint="export the trusted maintainers' keys with: gpg --export FPR... > keyring.gpg")
        self.fingerprints = tuple(sorted(set(primaries)))

    def check_file(self, path: Path) -> SignatureFacts:
        """Check one signature file (see :meth:`check`); its name is the file name."""
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RootseedError(f"cannot read signature {path}: {e.strerror}") from e
        return self.check(data, name=path.name)

    def check(self, data: bytes, *, name: str) -> SignatureFacts:
        """Verify one OpenPGP signed message against this keyring; report the facts."""
        self._counter += 1
        sig = self.home / f"check-{self._counter}.sig"
        out = self.home / f"check-{self._counter}.out"
        sig.write_bytes(data)
        run = _run(["--trust-model", "always", "--max-output", str(MAX_PAYLOAD),
                    "--output", str(out), "--decrypt", str(sig)], homedir=self.home)
        payload = out.read_bytes() if out.exists() else None
        for path in (sig, out):
            path.unlink(missing_ok=True)
        return _facts(name, run, payload)


def _facts(name: str, run: _Run, payload: bytes | None) -> SignatureFacts:
    """Turn one ``gpg --decrypt`` run into facts (GnuPG ``doc/DETAILS`` status keywords)."""
    signatures = run.count("NEWSIG")
    if signatures == 0:
        tail = run.stderr_tail()
        return SignatureFacts(name, CryptoStatus.UNREADABLE,
                              "no OpenPGP signature found" + (f" ({tail})" if tail else ""))
    if signatures > 1:
        return SignatureFacts(name, CryptoStatus.UNREADABLE,
                              f"{signatures} signatures in one file; exactly one is expected")

    errsig = run.first("ERRSIG")
    if errsig is not None:
        f = errsig.split(" ")
        key_id = f[0] if f and f[0] else None
        fpr = f[6].upper() if len(f) > 6 and f[6] not in ("", "-") else None
        if (len(f) > 5 and f[5] == "9") or run.first("NO_PUBKEY") is not None:
            return SignatureFacts(name, CryptoStatus.NO_PUBKEY,
                                  "ERRSIG/NO_PUBKEY: the signing key is not in the keyring",
                                  key_id=key_id, signing_fingerprint=fpr)
        rc = f[5] if len(f) > 5 else "?"
        return SignatureFacts(name, CryptoStatus.UNREADABLE,
                              f"ERRSIG: cannot check the signature (gpg error code {rc})",
                              key_id=key_id, signing_fingerprint=fpr)

    validsig = run.first("VALIDSIG")
    signing = primary = None
    if validsig is not None:
        v = validsig.split(" ")
        signing = v[0].upper()
        primary = v[9].upper() if len(v) > 9 and v[9] else signing

    outcomes = (
        ("BADSIG", CryptoStatus.BAD, "BADSIG: the signature does not match the signed data"),
        ("REVKEYSIG", CryptoStatus.REVOKED_KEY, "REVKEYSIG: the signing key has been revoked"),
        ("EXPKEYSIG", CryptoStatus.EXPIRED_KEY, "EXPKEYSIG: the signing key has expired"),
        ("EXPSIG", CryptoStatus.EXPIRED_SIGNATURE, "EXPSIG: the signature has expired"),
    )
    for keyword, status, detail in outcomes:
        rest = run.first(keyword)
        if rest is not None:
            key_id, _, uid = rest.partition(" ")
            valid_crypto = status is not CryptoStatus.BAD
            return SignatureFacts(
                name, status, detail, key_id=key_id or None,
                signing_fingerprint=signing if valid_crypto else None,
                primary_fingerprint=primary if valid_crypto else None,
                user_id=_unescape(uid) or None,
                payload=payload if valid_crypto else None)

    goodsig = run.first("GOODSIG")
    if goodsig is not None and validsig is not None and run.returncode == 0:
        key_id, _, uid = goodsig.partition(" ")
        return SignatureFacts(name, CryptoStatus.GOOD, "GOODSIG", key_id=key_id,
                              signing_fingerprint=signing, primary_fingerprint=primary,
                              user_id=_unescape(uid) or None, payload=payload or b"")
    tail = run.stderr_tail()
    return SignatureFacts(name, CryptoStatus.UNREADABLE,
                          f"gpg could not verify the signature (exit {run.returncode}"
                          + (f": {tail})" if tail else ")"))
