"""The one place an executor is chosen (the builder asks here, once per snapshot mode)."""

from __future__ import annotations

from collections.abc import Callable

from rootseed.engine.copyexec import CopyExecutor
from rootseed.engine.executor import OverlayExecutor
from rootseed.engine.interface import Executor
from rootseed.engine.snapshots import LayerStore
from rootseed.errors import RootseedError
from rootseed.sandbox.overlay import OverlayUnavailable, probe

#: How snapshots are made: "auto" (overlay where the kernel allows it, else copies),
#: "overlay" (required) or "copy" (full copies per stage).
SNAPSHOT_MODES = ("auto", "overlay", "copy")


def open_executor(mode: str, store: LayerStore, say: Callable[[str], None]) -> Executor:
    """The one place an executor is chosen: overlay where the kernel allows it (required
    with ``mode`` "overlay"), else copies (``say`` tells why)."""
    if mode not in SNAPSHOT_MODES:
        raise RootseedError(f"unknown snapshot mode {mode!r}",
                            hint="use " + ", ".join(SNAPSHOT_MODES))
    if mode == "copy":
        return CopyExecutor(store.layout)
    try:
        ns = probe(store.layout.work)
    except OverlayUnavailable as e:
        if mode == "overlay":
            raise
        say(f"copy-on-write snapshots are not available here ({e.message}); copying whole "
            "snapshots per stage instead (slower; a failed stage starts again from its "
            "first step)")
        return CopyExecutor(store.layout)
    return OverlayExecutor(ns, store)
