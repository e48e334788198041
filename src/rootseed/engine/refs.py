"""Typed references to layers, and the cache's directory grammar.

A layer lives in one of a few places in the cache; a :class:`LayerRef` names it by kind
and name, and :class:`CacheLayout` is the one place that turns a reference (or a key)
into a path. Stage entries record their snapshot's layers as ``"<kind>:<name>"`` text
(``stage.json``); :meth:`LayerRef.parse` is the one reader of that text, and it refuses
anything that could name another path (the cache is hostile).

======== ================================ =====================================
kind     layer directory                  what made it
======== ================================ =====================================
action   ``actions/<key>/layer``          one action (overlay upper directory)
flat     ``actions/flat-<hex>/layer``     a deep stack flattened into one layer
image    ``images/<hex>/rootfs``          another package's image, unpacked
stage    ``builds/<key>/rootfs``          a whole stage's tree (copy executor)
work     (a running stage's scratch)      the copy executor's working tree
======== ================================ =====================================

:class:`~rootseed.engine.snapshots.LayerStore` resolves a reference to a verified layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rootseed.errors import RootseedError


class RefKind(StrEnum):
    ACTION = "action"
    FLAT = "flat"
    IMAGE = "image"
    STAGE = "stage"
    WORK = "work"


#: Kinds whose layers persist in the cache (a stage entry may name them).
STORED = frozenset({RefKind.ACTION, RefKind.FLAT, RefKind.IMAGE, RefKind.STAGE})


@dataclass(frozen=True)
class LayerRef:
    """Where a layer lives: its kind and its name (a hex key or digest)."""

    kind: RefKind
    name: str

    def __post_init__(self) -> None:
        if not self.name or not self.name.isascii() or not self.name.isalnum():
            raise RootseedError(f"internal: a layer name must be hex, not {self.name!r}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: object) -> LayerRef | None:
        """A reference recorded in a stage entry (None: not one a cache can hold)."""
        if not isinstance(text, str):
            return None
        kind, _, name = text.partition(":")
        if kind not in {k.value for k in STORED} or not name.isascii() or not name.isalnum():
            return None
        return cls(RefKind(kind), name)

    @classmethod
    def action(cls, key: str) -> LayerRef:
        return cls(RefKind.ACTION, key)

    @classmethod
    def flat(cls, digest_hex: str) -> LayerRef:
        return cls(RefKind.FLAT, digest_hex)

    @classmethod
    def image(cls, manifest_hex: str) -> LayerRef:
        return cls(RefKind.IMAGE, manifest_hex)

    @classmethod
    def stage(cls, key: str) -> LayerRef:
        return cls(RefKind.STAGE, key)

    @classmethod
    def work(cls, name: str) -> LayerRef:
        return cls(RefKind.WORK, name)


class CacheLayout:
    """The cache's directory grammar (see docs/architecture.md, "Caching")."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.actions = root / "actions"
        self.builds = root / "builds"
        self.images = root / "images"
        self.locks = root / "locks"
        self.work = root / "work"
        self.logs = root / "logs"
        self.seals = root / "seals"
        self.empty = root / "layers" / "empty"  # the layer that holds nothing
        self.views = root / "views"

    def action_entry(self, key: str) -> Path:
        return self.actions / key

    def flat_entry(self, digest_hex: str) -> Path:
        return self.actions / f"flat-{digest_hex}"

    def image_entry(self, manifest_hex: str) -> Path:
        return self.images / manifest_hex

    def stage_entry(self, key: str) -> Path:
        return self.builds / key

    def entry(self, ref: LayerRef) -> Path:
        """The cache entry directory holding ``ref``'s layer."""
        if ref.kind is RefKind.ACTION:
            return self.action_entry(ref.name)
        if ref.kind is RefKind.FLAT:
            return self.flat_entry(ref.name)
        if ref.kind is RefKind.IMAGE:
            return self.image_entry(ref.name)
        if ref.kind is RefKind.STAGE:
            return self.stage_entry(ref.name)
        raise RootseedError(f"internal: a {ref.kind} layer is not stored in the cache")

    def layer_dir(self, ref: LayerRef) -> Path:
        """``ref``'s layer directory."""
        inner = "rootfs" if ref.kind in (RefKind.IMAGE, RefKind.STAGE) else "layer"
        return self.entry(ref) / inner

    def action_ref(self, entry_name: str) -> LayerRef | None:
        """The reference of an entry directory's layer under ``actions/`` (None: not an
        entry, e.g. a temporary directory)."""
        if entry_name.startswith("flat-"):
            return LayerRef.parse(f"flat:{entry_name[5:]}")
        return LayerRef.parse(f"action:{entry_name}")
