"""The one place an executor is chosen (the builder asks here, once per snapshot mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rootseed.engine import lazyoverlay
from rootseed.engine.copyexec import CopyExecutor
from rootseed.engine.executor import OverlayExecutor
from rootseed.engine.interface import Executor
from rootseed.engine.snapshots import LayerStore
from rootseed.errors import RootseedError
from rootseed.sandbox.overlay import OverlayNamespace, OverlayUnavailable, probe

#: How snapshots are made: "auto" (overlay where the kernel allows it, else copies),
#: "overlay" (required) or "copy" (full copies per stage).
SNAPSHOT_MODES = ("auto", "overlay", "copy")


class RemoteTarget(Protocol):
    """A REAPI service to run RUN steps on (``--remote grpc://HOST:PORT``): implemented
    by :class:`rootseed.remote.executor.RemoteService`, which the command line makes. The
    engine never imports :mod:`rootseed.remote` (it would be a cycle): the target opens
    its executor itself. Equal targets share one executor."""

    @property
    def endpoint(self) -> str: ...

    @property
    def instance(self) -> str: ...

    def open(self, ns: OverlayNamespace, store: LayerStore,
             say: Callable[[str], None]) -> Executor:
        """The overlay executor with RUN steps on this service (one error, before anything
        runs, when it does not answer)."""
        ...


def open_executor(mode: str, store: LayerStore, say: Callable[[str], None],
                  remote: RemoteTarget | None = None) -> Executor:
    """The one place an executor is chosen: overlay where the kernel allows it (required
    with ``mode`` "overlay"), else copies (``say`` tells why); with ``remote``, the
    overlay executor with RUN steps on that REAPI service
    (:mod:`rootseed.remote.executor`)."""
    if mode not in SNAPSHOT_MODES:
        raise RootseedError(f"unknown snapshot mode {mode!r}",
                            hint="use " + ", ".join(SNAPSHOT_MODES))
    if remote is not None:
        if mode == "copy":
            raise RootseedError("--remote needs copy-on-write snapshots, not --snapshots copy",
                                hint="leave --snapshots at auto (or overlay)")
        return remote.open(probe(store.layout.work), store, say)
    if mode == "copy":
        return CopyExecutor(store.layout)
    cache, scratch, records = store.layout.root, store.layout.work, store.verifier.records
    if lazyoverlay.passed_before(cache, scratch, records):  # started when first needed
        return OverlayExecutor(lazyoverlay.LazyNamespace(
            lambda: lazyoverlay.probed(cache, scratch, records)), store)
    try:
        ns = lazyoverlay.probed(cache, scratch, records)
    except OverlayUnavailable as e:
        if mode == "overlay":
            raise
        say(f"copy-on-write snapshots are not available here ({e.message}); copying whole "
            "snapshots per stage instead (slower; a failed stage starts again from its "
            "first step)")
        return CopyExecutor(store.layout)
    return OverlayExecutor(ns, store)
