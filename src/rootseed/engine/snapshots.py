"""Snapshots as stacks of layers, and the cache of actions that made them.

A :class:`Snapshot` is a root filesystem as a stack of layer directories (bottom first):
an unpacked parent image, then one layer per action that changed something. Its
``digest`` chains the layers' content digests, so equal contents give equal digests
whatever made them. An action's result is the layer it added (its diff); the cache keeps
it under ``<cache>/actions/<key>/``:

* ``layer/`` — the layer (overlayfs upper-directory format, see :mod:`.layers`);
* ``action.json`` — the key, the layer's content digest recorded when it was written,
  and whether it is empty.

The cache is untrusted input (issue #12): before a layer is used, its content is hashed
again and compared with the recorded digest, once per process and entry. A mismatch is
reported and the entry treated as missing (the action runs again and replaces it).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rootseed.console import canonical_json
from rootseed.engine import seal
from rootseed.engine.fsops import remove_tree
from rootseed.engine.layers import finish_layer, is_empty, layer_digest
from rootseed.engine.maintenance import touch
from rootseed.errors import ErrorKind, RootseedError

ACTION_FORMAT = 1
#: Flatten a stack deeper than this into one layer (the kernel takes 500 lower layers).
MAX_LAYERS = 400


@dataclass(frozen=True)
class Layer:
    path: Path  # a layer directory (read only once written)
    digest: str  # its content digest (layers.layer_digest), verified before use
    ref: str  # where it lives in the cache: "action:<key>", "image:<hex>", "flat:<hex>"


@dataclass(frozen=True)
class Snapshot:
    digest: str  # "sha256:<hex>" chaining the layer digests (or naming the base)
    layers: tuple[Layer, ...] = ()  # bottom first

    @staticmethod
    def base(name: str, layers: tuple[Layer, ...] = ()) -> Snapshot:
        """A starting point: "scratch", or "image:<manifest digest>" with its layer."""
        return Snapshot("sha256:" + hashlib.sha256(f"base\0{name}".encode()).hexdigest(),
                        layers)

    def push(self, layer: Layer) -> Snapshot:
        chained = hashlib.sha256(f"{self.digest}\0{layer.digest}".encode()).hexdigest()
        return Snapshot("sha256:" + chained, (*self.layers, layer))

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest,
                "layers": [{"ref": x.ref, "digest": x.digest} for x in self.layers]}


class CacheDamaged(RootseedError):
    """A cache entry does not match the digest recorded when it was written."""

    kind = ErrorKind.CACHE


@dataclass(frozen=True)
class ActionResult:
    key: str
    layer: Layer
    empty: bool  # the action changed nothing: the snapshot stays as it was


class Verifier:
    """Checks cache entries against their recorded digests, once per process each.

    ``report`` receives one message per damaged entry (the builder prints it).
    """

    def __init__(self, report: Callable[[str], None] | None = None) -> None:
        self._ok: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.report = report or (lambda _m: None)
        self.seconds = 0.0  # time spent checking (shown by the benchmarks)
        self.full_checks = 0  # entries whose content was hashed again
        self.sealed_checks = 0  # entries a valid seal vouched for
        self._key = seal.load_key()

    def check(self, path: Path, recorded: str, what: str) -> bool:
        token = (str(path), recorded)
        with self._lock:
            if token in self._ok:
                return True
        start = time.perf_counter()
        if seal.sealed(path, recorded, self._key):
            with self._lock:
                self.seconds += time.perf_counter() - start
                self.sealed_checks += 1
                self._ok.add(token)
            return True
        try:
            actual = layer_digest(path)
            if actual == recorded:
                seal.seal(path, recorded, self._key)
        except (OSError, RootseedError) as e:
            actual = f"unreadable ({e})"
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - start
                self.full_checks += 1
        if actual != recorded:
            self.report(f"cache entry {what} ({path}) does not match the digest recorded when "
                        f"it was written ({recorded}, now {actual}): not used; rebuilding it")
            return False
        with self._lock:
            self._ok.add(token)
        return True

    def trust(self, path: Path, digest: str) -> None:
        """``path`` was hashed to ``digest`` by this process just now (and is sealed)."""
        seal.seal(path, digest, self._key)
        with self._lock:
            self._ok.add((str(path), digest))

    def forget(self, path: Path) -> None:
        with self._lock:
            self._ok = {t for t in self._ok if t[0] != str(path)}


class ActionCache:
    """``<cache>/actions/<key>/``: one finished action each (see the module docstring)."""

    def __init__(self, root: Path, verifier: Verifier,
                 on_replace: Callable[[Path], None] | None = None) -> None:
        self.root = root
        self.verifier = verifier
        #: told about a layer directory that is about to be replaced (views drop it)
        self.on_replace = on_replace or (lambda _p: None)

    def _entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str, *, entry: str | None = None) -> ActionResult | None:
        """``key``'s result, its layer verified; None when absent or damaged (reported)."""
        entry_dir = self._entry(entry or key)
        try:
            meta = json.loads((entry_dir / "action.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (not isinstance(meta, dict) or meta.get("format") != ACTION_FORMAT
                or meta.get("key") != key or not isinstance(meta.get("digest"), str)):
            self.verifier.report(f"cache entry action {key[:16]} has an unreadable record: "
                                 "not used; rebuilding it")
            return None
        layer = entry_dir / "layer"
        if not self.verifier.check(layer, meta["digest"], f"action {key[:16]}"):
            return None
        touch(entry_dir / "action.json")
        return ActionResult(key, Layer(layer, meta["digest"], f"action:{key}"),
                            bool(meta.get("empty")))

    def lookup_flat(self, name: str) -> Layer | None:
        """The flattened layer of the snapshot with digest hex ``name``, verified."""
        found = self.lookup(name, entry=f"flat-{name}")
        return None if found is None else Layer(found.layer.path, found.layer.digest,
                                                f"flat:{name}")

    def layer(self, ref: str, digest: str) -> Layer | None:
        """A layer named in a stage entry ("action:<key>" or "flat:<hex>"), verified."""
        kind, _, name = ref.partition(":")
        if kind not in ("action", "flat") or not name.isalnum():
            return None
        path = self.root / (name if kind == "action" else f"flat-{name}") / "layer"
        if not path.is_dir():
            return None  # pruned: a miss, not damage
        if not self.verifier.check(path, digest, ref[:23]):
            return None
        touch(path.parent / "action.json")
        return Layer(path, digest, ref)

    def new_dir(self) -> Path:
        """A fresh directory for one action's upper layer + overlay work dir."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        tmp.mkdir()
        return tmp

    def commit(self, tmp: Path, key: str, *, name: str | None = None) -> ActionResult:
        """Publish ``tmp/layer`` (an overlay upper dir, finished here) as ``key``'s result
        atomically; an existing entry (broken or to be replaced) is moved aside first."""
        layer = tmp / "layer"
        finish_layer(layer)
        digest = layer_digest(layer)
        empty = is_empty(layer)
        (tmp / "action.json").write_text(canonical_json(
            {"format": ACTION_FORMAT, "key": key, "digest": digest, "empty": empty}),
            encoding="utf-8")
        work = tmp / "work"
        if work.exists():
            remove_tree(work)
        final = self.root / (name or key)
        ref = f"flat:{key}" if name is not None else f"action:{key}"
        current = self.lookup(key, entry=name)
        if current is not None and current.layer.digest == digest:
            # the same result is already published (and may be mounted): keep it
            remove_tree(tmp)
            return ActionResult(key, Layer(final / "layer", digest, ref), empty)
        if final.exists():
            old = self.root / f".old-{secrets.token_hex(6)}"
            os.replace(final, old)
            self.verifier.forget(final / "layer")
            self.on_replace(final / "layer")
            remove_tree(old)
        os.replace(tmp, final)
        self.verifier.trust(final / "layer", digest)
        return ActionResult(key, Layer(final / "layer", digest, ref), empty)
