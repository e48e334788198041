"""Typed layer references: the one reader of the refs a stage entry records (hostile
text: the cache may come from anywhere) and the one place a ref becomes a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootseed.engine.refs import CacheLayout, LayerRef, RefKind
from rootseed.errors import RootseedError

KEY = "ab" * 32


@pytest.mark.parametrize(("text", "kind", "path"), [
    (f"action:{KEY}", RefKind.ACTION, f"actions/{KEY}/layer"),
    (f"flat:{KEY}", RefKind.FLAT, f"actions/flat-{KEY}/layer"),
    (f"image:{KEY}", RefKind.IMAGE, f"images/{KEY}/rootfs"),
    (f"stage:{KEY}", RefKind.STAGE, f"builds/{KEY}/rootfs"),
])
def test_a_recorded_ref_names_one_layer_directory(text: str, kind: RefKind, path: str) -> None:
    ref = LayerRef.parse(text)
    assert ref is not None and ref.kind is kind and str(ref) == text
    assert CacheLayout(Path("/c")).layer_dir(ref) == Path("/c") / path


@pytest.mark.parametrize("text", [
    "action:../../etc", "action:", "flat:a/b", "image:..", f"work:{KEY}",  # work: never stored
    f"other:{KEY}", KEY, "action:ab cd", "action:\u00e9", 7, None, ["action", KEY],
])
def test_anything_else_is_no_ref(text: object) -> None:
    assert LayerRef.parse(text) is None


def test_a_ref_cannot_be_made_with_a_path_in_it() -> None:
    with pytest.raises(RootseedError):
        LayerRef.action("../x")


def test_entries_under_actions_map_back_to_their_refs() -> None:
    layout = CacheLayout(Path("/c"))
    assert layout.action_ref(KEY) == LayerRef.action(KEY)
    assert layout.action_ref(f"flat-{KEY}") == LayerRef.flat(KEY)
    assert layout.action_ref(".tmp-0123") is None
