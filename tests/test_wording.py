"""Counted nouns agree with their number."""

from __future__ import annotations

from rootseed.wording import count


def test_count() -> None:
    assert count(1, "tool") == "1 tool"
    assert count(0, "tool") == "0 tools"
    assert count(20, "tool") == "20 tools"
    assert count(1, "trusted key") == "1 trusted key"
    assert count(2, "entry", "entries") == "2 entries"
