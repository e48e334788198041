"""The overlay namespace started only when something is mounted (a warm build needs none).

Choosing between the overlay and the copy executor (``--snapshots auto``) needs a probe: a
holder process in a user + mount namespace and one real overlay mount
(:func:`rootseed.sandbox.overlay.probe`). A warm rebuild runs no step and reads no stage's
tree (every stage and its image are cache hits), so starting that process costs it more
than anything it does. So when this cache has seen a probe pass on this very boot of the
kernel (:func:`passed_before`, a record under the seal key), the builder takes overlay
and starts the namespace (with the same probe) at the first mount: :class:`LazyNamespace`.
Otherwise the probe runs at once, as before, and its success is remembered.

Nothing is checked less: the probe still runs before any mount, and a snapshot's layers
are verified when a lookup resolves them (not when they are mounted). If overlay stopped
working since (a sysctl changed during this boot), the first mount fails with the probe's
error and the memo is dropped, so the next build falls back to copies as ``auto`` does.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rootseed import safefs
from rootseed.engine.maintenance import touch
from rootseed.engine.records import Kind, Records
from rootseed.sandbox.overlay import OverlayNamespace, OverlayUnavailable, probe

#: The record's name (one per cache).
_NAME = "overlay-probe"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _where(scratch: Path) -> dict[str, object]:
    """What a passing probe holds for: this boot of the kernel, this user, this directory
    (its file system)."""
    try:
        boot = _BOOT_ID.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        boot = ""
    return {"boot": boot, "uid": os.getuid(), "kernel": os.uname().release,
            "scratch": str(scratch)}


def _memo(cache: Path) -> Path:
    return cache / f"{_NAME}.json"


def passed_before(cache: Path, scratch: Path, records: Records) -> bool:
    """This cache holds a record, under the key, of a probe that passed in ``scratch`` on
    this boot, as this user."""
    where = _where(scratch)
    if not where["boot"]:
        return False
    found = records.read(cache, _memo(cache), Kind.PROBE, _NAME).record
    if found is None or {k: found.get(k) for k in where} != where:
        return False
    touch(_memo(cache))  # used: `cache prune` keeps it
    return True


def remember(cache: Path, scratch: Path, records: Records) -> None:
    """Record that the probe passed (only a memo: failing to write it changes nothing)."""
    with contextlib.suppress(OSError, safefs.UnsafePath):
        records.write(cache, _memo(cache), Kind.PROBE, _NAME, _where(scratch))


def forget(cache: Path) -> None:
    with contextlib.suppress(OSError, safefs.UnsafePath):
        safefs.remove(cache, _memo(cache))


def probed(cache: Path, scratch: Path, records: Records) -> OverlayNamespace:
    """:func:`probe` now; a pass is remembered, a failure forgets an earlier pass."""
    try:
        ns = probe(scratch)
    except OverlayUnavailable:
        forget(cache)
        raise
    remember(cache, scratch, records)
    return ns


class LazyNamespace(OverlayNamespace):
    """An :class:`OverlayNamespace` whose holder process (and probe) starts at the first
    request that needs it; ``close`` before that ends nothing."""

    def __init__(self, start: Callable[[], OverlayNamespace]) -> None:  # no super(): lazy
        self._start = start
        self._ns: OverlayNamespace | None = None
        self._starting = threading.Lock()

    @property
    def started(self) -> bool:
        return self._ns is not None

    def _get(self) -> OverlayNamespace:
        with self._starting:
            if self._ns is None:
                self._ns = self._start()
            return self._ns

    def mount(self, target: Path, lower: Sequence[Path], upper: Path | None = None,
              work: Path | None = None) -> None:
        self._get().mount(target, lower, upper, work)

    def umount(self, target: Path) -> None:
        self._get().umount(target)

    def view(self, path: Path) -> Path:
        return self._get().view(path)

    def enter(self) -> list[str]:
        return self._get().enter()

    def close(self) -> None:
        with self._starting:
            ns, self._ns = self._ns, None
        if ns is not None:
            ns.close()
