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
reported and the entry treated as missing (the action runs again and replaces it). The
record is believed only with a valid MAC under the seal key (:mod:`.records`, #20).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rootseed import safefs
from rootseed.engine import seal
from rootseed.engine.fsops import remove_tree
from rootseed.engine.layers import finish_layer, is_empty, layer_digest
from rootseed.engine.maintenance import touch
from rootseed.engine.records import Kind, Records
from rootseed.engine.refs import STORED, CacheLayout, LayerRef, RefKind
from rootseed.errors import ErrorKind, RootseedError

ACTION_FORMAT = 1
#: Flatten a stack deeper than this into one layer (the kernel takes 500 lower layers).
MAX_LAYERS = 400


@dataclass(frozen=True)
class Layer:
    path: Path  # a layer directory (read only once written)
    digest: str  # its content digest (layers.layer_digest), verified before use
    ref: LayerRef  # where it lives (see engine/refs.py)


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
                "layers": [{"ref": str(x.ref), "digest": x.digest} for x in self.layers]}

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
        #: signs and checks the records that say what an entry holds
        self.records = Records(self._key)

    def check(self, path: Path, recorded: str, what: str) -> bool:
        token = (str(path), recorded)
        with self._lock:
            if token in self._ok:
                return True
        if not safefs.is_dir(path):  # a link planted in place of the entry's directory
            self.report(f"cache entry {what} ({path}) is not a directory of the cache "
                        "itself (a link?): not used; rebuilding it")
            return False
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


class LayerStore:
    """Resolves typed references to verified layers (see :class:`.snapshots.Verifier`)."""

    def __init__(self, layout: CacheLayout, verifier: Verifier) -> None:
        self.layout = layout
        self.verifier = verifier

    def resolve(self, ref: LayerRef, digest: str) -> Layer | None:
        """``ref``'s layer if it is there and still has ``digest`` (None: pruned, a miss;
        or damaged, reported by the verifier)."""
        if ref.kind not in STORED:
            return None
        path = self.layout.layer_dir(ref)
        if not safefs.is_dir(path.parent) or not path.is_dir():
            return None  # pruned (or a link in its place): a miss
        if not self.verifier.check(path, digest, str(ref)[:23]):
            return None
        if ref.kind in (RefKind.ACTION, RefKind.FLAT):
            touch(path.parent / "action.json")
        return Layer(path, digest, ref)


class ActionCache:
    """``<cache>/actions/<key>/``: one finished action each (see the module docstring)."""

    def __init__(self, layout: CacheLayout, verifier: Verifier,
                 on_replace: Callable[[Path], None] | None = None) -> None:
        self.layout = layout
        self.root = layout.actions
        self.verifier = verifier
        safefs.ensure_dir(self.root.parent, self.root)  # never a link to somewhere else
        #: told about a layer directory that is about to be replaced (views drop it)
        self.on_replace = on_replace or (lambda _p: None)
        self._publishing = threading.Lock()

    def lookup(self, key: str, *, ref: LayerRef | None = None) -> ActionResult | None:
        """``key``'s result (stored as ``ref``, by default ``action:<key>``), its layer
        verified; None when absent or damaged (reported)."""
        ref = ref or LayerRef.action(key)
        entry_dir = self.layout.entry(ref)
        read = self.verifier.records.read(self.root, entry_dir / "action.json", Kind.ACTION,
                                          entry_dir.name)
        meta = read.record
        if read.record is None and read.problem() is None:
            return None  # absent: a plain miss
        if (meta is None or meta.get("format") != ACTION_FORMAT
                or meta.get("key") != key or not isinstance(meta.get("digest"), str)):
            self.verifier.report(f"cache entry action {key[:16]}: "
                                 f"{read.problem() or 'its record is unreadable'}: "
                                 "not used; rebuilding it")
            return None
        layer = entry_dir / "layer"
        if not self.verifier.check(layer, meta["digest"], f"action {key[:16]}"):
            return None
        touch(entry_dir / "action.json")
        return ActionResult(key, Layer(layer, meta["digest"], ref), bool(meta.get("empty")))

    def lookup_flat(self, name: str) -> Layer | None:
        """The flattened layer of the snapshot with digest hex ``name``, verified."""
        found = self.lookup(name, ref=LayerRef.flat(name))
        return None if found is None else found.layer

    def new_dir(self) -> Path:
        """A fresh directory for one action's upper layer + overlay work dir."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        tmp.mkdir()
        return tmp

    def commit(self, tmp: Path, key: str, *, ref: LayerRef | None = None) -> ActionResult:
        """Publish ``tmp/layer`` (an overlay upper dir, finished here) as ``key``'s result
        (stored as ``ref``, by default ``action:<key>``) atomically; an existing entry
        (broken or to be replaced) is moved aside first."""
        ref = ref or LayerRef.action(key)
        final = self.layout.entry(ref)
        layer = tmp / "layer"
        finish_layer(layer)
        digest = layer_digest(layer)
        empty = is_empty(layer)
        (tmp / "action.json").write_bytes(self.verifier.records.encode(
            Kind.ACTION, final.name,
            {"format": ACTION_FORMAT, "key": key, "digest": digest, "empty": empty}))
        work = tmp / "work"
        if work.exists():
            remove_tree(work)
        # Two stages of one build can run the same action at once (the same step over the
        # same parent, e.g. a WORKDIR), and so can two builds on one cache: one lock
        # orders this process's publishers, and a rename that finds the entry published
        # by another process in the meantime looks again instead of failing.
        with self._publishing:
            while True:
                current = self.lookup(key, ref=ref)
                if current is not None and current.layer.digest == digest:
                    # the same result is already published (and may be mounted): keep it
                    remove_tree(tmp)
                    return ActionResult(key, Layer(final / "layer", digest, ref), empty)
                if final.is_symlink() or final.exists():  # a dangling link too
                    old = self.root / f".old-{secrets.token_hex(6)}"
                    os.replace(final, old)
                    self.verifier.forget(final / "layer")
                    self.on_replace(final / "layer")
                    remove_tree(old)
                try:
                    os.rename(tmp, final)
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    continue  # published by another process since the look: look again
                break
        self.verifier.trust(final / "layer", digest)
        return ActionResult(key, Layer(final / "layer", digest, ref), empty)
