"""Counted nouns for people: "1 tool", "2 tools"."""

from __future__ import annotations


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes (``plural`` defaults to singular + "s")."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
