"""One error type for everything a person must read, with a kind for machines.

Every failure a user can cause or fix (a bad package.toml, a hash mismatch, a failing
build step, a bad signature) is raised as :class:`RootseedError` with a message that says
what went wrong and where, and a hint that says what to do. The CLI turns it into one
clear message and a non-zero exit code; tracebacks appear only with ``--debug``.

What a program (``--json``) or a test needs is the error's :class:`ErrorKind` and its
fields (package, file, line, step), never its English: each subclass has a kind, and an
error that passes through a layer that knows more (the engine knows the package and the
Containerfile line) keeps its type and gains the fields (:meth:`RootseedError.at`).
"""

from __future__ import annotations

import enum
from typing import Any, Self


class ErrorKind(enum.StrEnum):
    """What went wrong, in words that stay the same (``--json`` prints the value)."""

    #: not classified further
    ERROR = "error"
    #: a command line that cannot be carried out (an unknown package, bad options)
    USAGE = "usage"
    #: the package tree: a package.toml, a namespace, a dependency that is not there
    TREE = "tree"
    #: a Containerfile that does not parse
    CONTAINERFILE = "containerfile"
    #: a Containerfile that does not plan (an unknown stage, a bad platform, a cycle)
    PLAN = "plan"
    #: a source that cannot be fetched or does not match its pinned hash
    FETCH = "fetch"
    #: an archive that cannot be unpacked safely
    ARCHIVE = "archive"
    #: an instruction that cannot be applied to the image (a COPY source missing, ...)
    STEP = "step"
    #: a RUN step that exited non-zero
    STEP_FAILED = "step-failed"
    #: a RUN step that ran past its time limit
    STEP_TIMEOUT = "step-timeout"
    #: a RUN step that went past one of its other limits (``limit`` in ``--json`` says which)
    STEP_LIMIT = "step-limit"
    #: stopped because something else failed (or Ctrl-C): a consequence, never the cause
    CANCELLED = "cancelled"
    #: not built because something it needs failed
    DEPENDENCY_FAILED = "dependency-failed"
    #: the remote execution service (or its worker) failed, refused or cannot be reached
    REMOTE = "remote"
    #: the sandbox (bubblewrap, overlay snapshots) could not be set up
    SANDBOX = "sandbox"
    #: the cache is damaged or cannot be used
    CACHE = "cache"
    #: an OCI image layout that does not read back as it should
    LAYOUT = "layout"
    #: writing an image to the output directory failed
    PUBLISH = "publish"
    #: a digest differs from the recorded (published) one
    DIGEST_MISMATCH = "digest-mismatch"
    #: a signature or a keyring that cannot be used
    SIGNATURE = "signature"
    #: fewer valid signatures than the policy asks for
    QUORUM = "quorum"
    #: a provenance record that is missing, unreadable or does not match
    PROVENANCE = "provenance"
    #: hostile input refused (a link out of a tree, a FIFO, a special file)
    REFUSED = "refused"
    #: a crosscheck that cannot be run
    CROSSCHECK = "crosscheck"
    #: one of the seed tools (hex0, M1, ...) rejected its input
    TOOL = "tool"


#: The fields an error can carry besides its message (all optional).
FIELDS = ("package", "file", "line", "step")


class RootseedError(Exception):
    """A failure explained for people: ``message`` (what, where) and ``hint`` (what to do);
    for machines: ``kind`` and the fields ``package``, ``file``, ``line``, ``step``."""

    exit_code: int = 1
    #: the kind of every error of this class, unless one is given when it is raised
    kind: ErrorKind = ErrorKind.ERROR

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None,
                 kind: ErrorKind | None = None, package: str | None = None,
                 file: str | None = None, line: int | None = None, step: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        if kind is not None:
            self.kind = kind
        self.package = package
        self.file = file
        self.line = line
        self.step = step

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"

    def at(self, where: str | None = None, *, package: str | None = None,
           file: str | None = None, line: int | None = None, step: str | None = None) -> Self:
        """This very error (its type, kind and traceback kept), said to have happened at
        ``where`` (put before the message, e.g. ``"pkg: file:3: RUN"``); fields it does not
        know yet are set. For ``raise e.at(...)`` where a layer knows more than the raiser."""
        if where:
            self.message = f"{where}: {self.message}"
            self.args = (self.message, *self.args[1:])
        for name, value in (("package", package), ("file", file), ("line", line),
                            ("step", step)):
            if value is not None and getattr(self, name) is None:
                setattr(self, name, value)
        return self

    def as_json(self) -> dict[str, Any]:
        """``{"kind", "message", "hint", "exit_code"}`` and the fields that are known."""
        data: dict[str, Any] = {"kind": self.kind.value, "message": self.message,
                                "hint": self.hint, "exit_code": self.exit_code}
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

