"""One error type for everything a person must read.

Every failure a user can cause or fix (a bad package.toml, a hash mismatch, a failing
build step, a bad signature) is raised as :class:`RootseedError` with a message that says
what went wrong and where, and a hint that says what to do. The CLI turns it into one
clear message and a non-zero exit code; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations


class RootseedError(Exception):
    """A failure explained for people: ``message`` (what, where) and ``hint`` (what to do)."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"

