"""The boundary to GnuPG, used for signing only: the maintainers' secret keys live there.

Everything here runs the ``gpg`` program with ``--batch`` and reads its machine-readable
status lines (``--status-file``; see GnuPG's ``doc/DETAILS``), never its human messages.
Verification does not use GnuPG (its answer depends on the user's home, agent and trust
database, and its policy accepts SHA-1): :mod:`rootseed.trust.sequoia` checks signatures
in-process, including the ones made here before they are stored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rootseed.errors import RootseedError

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


def _home_hint(gnupghome: Path | None) -> str:
    where = f"--homedir {gnupghome} " if gnupghome is not None else ""
    return where


def sign(payload: bytes, key: str, *, gnupghome: Path | None = None,
         detached: bool = False) -> bytes:
    """Sign ``payload`` with ``key``: a binary (not armored) OpenPGP signed message, or
    with ``detached`` a binary detached signature.

    ``key`` is anything ``gpg --local-user`` accepts; a fingerprint with a trailing ``!``
    forces that exact (sub)key. ``gnupghome`` defaults to GnuPG's own default.
    """
    mode = "--detach-sign" if detached else "--sign"
    run = _run(["--no-armor", "--compress-algo", "none", "--local-user", key,
                "--output", "-", mode], homedir=gnupghome, stdin=payload)
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
