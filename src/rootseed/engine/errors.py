"""Typed build failures, so the scheduler tells them apart by type, never by text.

A failing step raises its own :class:`~rootseed.errors.RootseedError`; everything it
takes down with it raises one of these, and the builder reports the first real cause.
"""

from __future__ import annotations

from rootseed.errors import ErrorKind, RootseedError


class Knock(RootseedError):
    """A consequence of another failure (never the cause to report)."""

    kind = ErrorKind.CANCELLED


class Cancelled(Knock):
    """A stage or step stopped because another one failed."""


class DependencyFailed(Knock):
    """Not built because something it needs (a stage, a package) failed: ``dependency``
    names that (the task key of the scheduler that decided it)."""

    kind = ErrorKind.DEPENDENCY_FAILED

    def __init__(self, message: str, *, dependency: object, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.dependency = dependency


class PublishError(RootseedError):
    """An image written to the output directory did not read back as what was built."""

    kind = ErrorKind.PUBLISH
