"""Typed build failures, so the scheduler tells them apart by type, never by text.

A failing step raises its own :class:`~rootseed.errors.RootseedError`; everything it
takes down with it raises one of these, and the builder reports the first real cause.
"""

from __future__ import annotations

from rootseed.errors import RootseedError


class Knock(RootseedError):
    """A consequence of another failure (never the cause to report)."""


class Cancelled(Knock):
    """A stage or step stopped because another one failed."""


class DependencyFailed(Knock):
    """Not built because something it needs (a stage, a package) failed."""
