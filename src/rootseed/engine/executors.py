"""The one place an executor is chosen (the builder asks here, once per snapshot mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rootseed.engine.copyexec import CopyExecutor
from rootseed.engine.executor import OverlayExecutor
from rootseed.engine.interface import Executor
from rootseed.engine.snapshots import LayerStore
from rootseed.errors import RootseedError
from rootseed.sandbox.overlay import OverlayUnavailable, probe

#: How snapshots are made: "auto" (overlay where the kernel allows it, else copies),
#: "overlay" (required) or "copy" (full copies per stage).
SNAPSHOT_MODES = ("auto", "overlay", "copy")


@dataclass(frozen=True)
class RemoteTarget:
    """A REAPI service to run RUN steps on (``--remote grpc://HOST:PORT``)."""

    endpoint: str
    instance: str = ""


def open_executor(mode: str, store: LayerStore, say: Callable[[str], None],
                  remote: RemoteTarget | None = None) -> Executor:
    """The one place an executor is chosen: overlay where the kernel allows it (required
    with ``mode`` "overlay"), else copies (``say`` tells why); with ``remote``, the
    overlay executor with RUN steps on that REAPI service (:mod:`rootseed.remote.executor`,
    imported only then)."""
    if mode not in SNAPSHOT_MODES:
        raise RootseedError(f"unknown snapshot mode {mode!r}",
                            hint="use " + ", ".join(SNAPSHOT_MODES))
    if remote is not None:
        if mode == "copy":
            raise RootseedError("--remote needs copy-on-write snapshots, not --snapshots copy",
                                hint="leave --snapshots at auto (or overlay)")
        from rootseed.remote.executor import open_remote

        return open_remote(probe(store.layout.work), store, remote.endpoint, remote.instance,
                           say)
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
