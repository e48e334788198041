"""The builder's content-addressed cache (under ``<cache>``).

* ``builds/<key>/`` — one finished stage: ``stage.json`` (the state later instructions and
  child stages need: env, workdir, user, shell, ...), ``rootfs/`` (a snapshot of the
  stage's root filesystem: the directory the stage ran in, moved here once its last
  instruction finished; read-only from then on) and, only for a stage that was a build's
  image, ``image/`` (its OCI layout). A child stage starts from a real copy of its base's
  ``rootfs/`` (never hardlinks into it) and ``COPY --from`` reads the snapshot directly,
  so no intermediate stage is ever packed, compressed or unpacked. The key chains the
  parent's key with every instruction and its inputs (see ``engine._key``).
  With copy-on-write snapshots (overlayfs, see ``executor``), a stage entry holds no
  ``rootfs/`` but the list of layers of its snapshot (``stage.json`` ``snapshot``), each
  one an action's result under ``actions/<key>/layer`` (see ``snapshots``).
* ``images/<manifest-hex>/rootfs`` — an image of another package unpacked once, reused
  read-only.

Everything here is untrusted input: snapshots, layers and unpacked images are checked
against the content digest recorded when they were written before they are used (once
per process each); a mismatch is reported and the entry rebuilt, never used. The records
themselves carry a MAC under the seal key (:mod:`.records`), and every file here is
opened through :mod:`rootseed.safefs` (no link followed, bounded reads).
* ``builds/<key>/image.json`` — the manifest digest of ``image/`` when it was written
  (signed, as the other records): a layout of another digest there is never published.
* ``work/<id>/`` — scratch space of one running build (removed afterwards; a killed
  build's leftovers are swept by the next build once their lock is free).
* ``locks/`` — file locks. Every entry appears by ``os.replace`` of a finished temp dir
  (and an entry's ``image/`` by ``os.replace`` too), so a build killed at any moment leaves
  no half entry, and two builds of one stage wait for each other instead of racing.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rootseed import safefs
from rootseed.engine.fsops import remove_tree
from rootseed.engine.layers import layer_digest
from rootseed.engine.maintenance import touch
from rootseed.engine.records import Kind
from rootseed.engine.refs import CacheLayout, LayerRef
from rootseed.engine.snapshots import Layer, LayerStore, Snapshot, Verifier
from rootseed.engine.verify import seal_layout
from rootseed.errors import RootseedError
from rootseed.filelocks import FileLock, Timeout
from rootseed.fsutil import private_dir
from rootseed.oci import manifest_digest, unpack_image
from rootseed.oci.digest import hex_of

#: ``stage.json``'s ``format``: entries of another layout are misses (and get replaced).
ENTRY_FORMAT = 2
#: ``stage.json``'s ``format`` of an entry whose snapshot is a stack of layers.
LAYERED_FORMAT = 3


@dataclass(frozen=True)
class CachedStage:
    key: str
    state: dict[str, Any]
    entry: Path  # builds/<key>/
    layout: Path | None = None  # OCI image layout, once the stage was a build's image
    manifest_digest: str | None = None
    snapshot: Snapshot | None = None  # its layers, for an entry made on overlay
    tree: Path | None = None  # the whole tree, for an entry made by copying
    viewer: Viewer | None = None  # shows ``snapshot``

    @property
    def rootfs(self) -> Path:
        """The stage's root filesystem (a directory, or a read-only view of its snapshot
        mounted when first asked for: a warm build that only publishes the stage's image
        mounts nothing): read only."""
        if self.tree is not None:
            return self.tree
        assert self.snapshot is not None and self.viewer is not None
        return self.viewer.view(self.snapshot)


class Viewer(Protocol):
    """What shows a stage entry's snapshot (an executor, see engine/interface.py)."""

    @property
    def layered(self) -> bool: ...

    def view(self, snapshot: Snapshot) -> Path: ...


class BuildCache:
    def __init__(self, cache_dir: Path, verifier: Verifier | None = None):
        self.dir = private_dir(cache_dir, "cache directory")
        self.verifier = verifier or Verifier()
        self.layout = CacheLayout(cache_dir)
        self.store = LayerStore(self.layout, self.verifier)
        self.builds = self.layout.builds
        self.images = self.layout.images
        self.locks = self.layout.locks
        self.work_root = self.layout.work
        self.logs = self.layout.logs
        for area in (self.builds, self.images, self.locks, self.work_root, self.logs):
            safefs.ensure_dir(self.dir, area)  # a link planted in place of one is refused

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with FileLock(self.locks / f"{name}.lock", root=self.dir):
            yield

    # -- stage entries -----------------------------------------------------------------
    def lookup(self, key: str, viewer: Viewer) -> CachedStage | None:
        """The stage entry ``key`` as ``viewer`` can use it: a list of layers for a
        layered executor, a whole tree otherwise (None: a miss)."""
        entry = self.layout.stage_entry(key)
        read = self.verifier.records.read(self.dir, entry / "stage.json", Kind.STAGE, key)
        state = read.record
        if state is None:  # absent (a miss), or unreadable or forged (reported: rebuilt)
            if (problem := read.problem()) is not None:
                self.verifier.report(f"cache entry stage {key[:16]} ({entry}): {problem}: "
                                     "not used; rebuilding it")
            return None
        if state.get("format") == LAYERED_FORMAT:
            found = self._layered(key, entry, state, viewer)
            if found is None:
                return None
        elif state.get("format") == ENTRY_FORMAT and not viewer.layered:
            rootfs = entry / "rootfs"
            content = state.get("content")
            if not safefs.is_dir(rootfs) or not isinstance(content, str):
                return None
            if not self.verifier.check(rootfs, content, f"stage {key[:16]}"):
                return None
            found = CachedStage(key=key, tree=rootfs, state=state, entry=entry)
        else:
            return None
        touch(entry / "stage.json")
        digest = self._image_digest(key, entry)
        if digest is None:
            return found  # no image (yet): a stage only ever used inside a build
        return dataclasses.replace(found, layout=entry / "image", manifest_digest=digest)

    def _image_digest(self, key: str, entry: Path, name: str = "image") -> str | None:
        """The manifest digest of the layout ``entry/name`` if it is the one this user's
        rootseed recorded when it wrote it (``name.json``), else None (written again)."""
        if not safefs.is_dir(entry / name):
            return None
        ident = key if name == "image" else f"{key}:{name}"
        read = self.verifier.records.read(self.dir, entry / f"{name}.json", Kind.IMAGE, ident)
        recorded = None if read.record is None else read.record.get("manifest")
        try:
            digest = manifest_digest(entry / name)
        except (OSError, ValueError, RootseedError, KeyError) as e:
            self.verifier.report(f"cached image {entry / name}: "
                                 f"{getattr(e, 'message', e)}; writing it again")
            return None
        if digest != recorded:
            why = read.problem() or ("another digest" if read.record is not None
                                     else "no record of it")
            self.verifier.report(f"cached image {entry / name} is not the one rootseed "
                                 f"wrote there ({why}): not used; writing it again")
            return None
        return digest

    def _layered(self, key: str, entry: Path, state: dict[str, Any], viewer: Viewer
                 ) -> CachedStage | None:
        if not viewer.layered:
            return None  # made on overlay; this builder copies: a miss
        data = state.get("snapshot")
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            return None
        layers: list[Layer] = []
        for item in data["layers"]:
            if not isinstance(item, dict):
                return None
            ref = LayerRef.parse(item.get("ref"))
            layer = None if ref is None else self.store.resolve(ref, str(item.get("digest", "")))
            if layer is None:
                return None
            layers.append(layer)
        snapshot = Snapshot(str(data.get("digest", "")), tuple(layers))
        return CachedStage(key=key, state=state, entry=entry, snapshot=snapshot,
                           viewer=viewer)

    def commit_snapshot(self, tmp: Path, key: str, state: dict[str, Any],
                        snapshot: Snapshot, viewer: Viewer, *, replace: bool = False
                        ) -> CachedStage:
        """Publish a layered stage entry (``tmp``: an empty dir in a work dir)."""
        return self._publish(tmp, key, {**state, "format": LAYERED_FORMAT,
                                        "snapshot": snapshot.to_json()}, viewer, replace)

    def commit(self, tmp: Path, key: str, state: dict[str, Any], viewer: Viewer, *,
               replace: bool = False) -> CachedStage:
        """Publish a finished entry (``tmp/rootfs`` in place; ``tmp`` in a work dir of the
        same file system) under ``key``, atomically. Call with the stage's lock held."""
        content = layer_digest(tmp / "rootfs")  # recorded now, checked before each reuse
        found = self._publish(tmp, key, {**state, "format": ENTRY_FORMAT, "content": content},
                              viewer, replace)
        self.verifier.trust(found.rootfs, content)
        return found

    def _publish(self, tmp: Path, key: str, state: dict[str, Any], viewer: Viewer,
                 replace: bool) -> CachedStage:
        (tmp / "stage.json").write_bytes(self.verifier.records.encode(Kind.STAGE, key, state))
        safefs.ensure_dir(self.dir, self.builds)
        final = self.builds / key
        if final.exists() and (replace or self.lookup(key, viewer) is None):
            old = tmp.parent / f"old-{secrets.token_hex(6)}"
            os.replace(final, old)  # broken or to be replaced: move aside, then publish
        if final.exists():
            remove_tree(tmp)  # an equal entry is already published: keep it
        else:
            os.replace(tmp, final)
        if "content" in state:
            self.verifier.trust(final / "rootfs", state["content"])
        found = self.lookup(key, viewer)
        if found is None:
            raise RootseedError(f"cache entry {final} is unreadable right after writing it",
                                hint="check the disk and the cache directory's permissions")
        return found

    @contextmanager
    def image_slot(self, stage: CachedStage, viewer: Viewer, *, name: str = "image",
                   replace: bool = False) -> Iterator[Path | None]:
        """Where ``stage``'s image layout ``name`` is to be written (None: it is there
        already), with the entry's image lock held; the layout written there (atomically,
        as every exporter writes) is sealed after the block. ``replace``: a damaged
        layout is moved out of the way first."""
        with self.lock(f"entry-image-{stage.key}"):
            target = stage.entry / name
            if replace and target.exists():
                old = stage.entry / f".{name}.old.{secrets.token_hex(6)}"
                os.replace(target, old)
                remove_tree(old)
            if self._image(stage, viewer, name) is not None:
                yield None
                return
            for leftover in stage.entry.glob(f".{name}.*"):  # of a killed writer
                remove_tree(leftover)
            yield target
            if target.is_dir():
                ident = stage.key if name == "image" else f"{stage.key}:{name}"
                self.verifier.records.write(self.dir, stage.entry / f"{name}.json",
                                            Kind.IMAGE, ident,
                                            {"manifest": manifest_digest(target)})
                seal_layout(target, self.dir / "seals")

    def with_image(self, stage: CachedStage, viewer: Viewer, *, name: str = "image"
                   ) -> CachedStage:
        """``stage`` with its image layout ``name`` (written by :meth:`image_slot`)."""
        found = self._image(stage, viewer, name)
        if found is None:
            raise RootseedError(f"cache entry {stage.entry} has no readable image right "
                                "after writing it",
                                hint="check the disk and the cache directory's permissions")
        return found

    def _image(self, stage: CachedStage, viewer: Viewer, name: str) -> CachedStage | None:
        """``stage`` (an entry this process has just looked up or written: its record and
        layers are not read again) with its image layout ``name``, checked now."""
        digest = self._image_digest(stage.key, stage.entry, name)
        if digest is None:
            return None
        return dataclasses.replace(stage, layout=stage.entry / name, manifest_digest=digest)

    # -- unpacked images ---------------------------------------------------------------
    def rootfs(self, layout: Path, digest: str) -> Path:
        """The unpacked root filesystem of an image (unpacked once, then reused)."""
        return self.image_layer(layout, digest).path

    def image_layer(self, layout: Path, digest: str) -> Layer:
        """The unpacked image as a verified layer (unpacked again when damaged)."""
        hexd = hex_of(digest)
        target = self.layout.layer_dir(LayerRef.image(hexd))
        complete = self.layout.image_entry(hexd) / "complete.json"
        found = self._unpacked(target, complete, hexd)
        if found is not None:
            return found
        with self.lock(f"image-{hexd}"):
            found = self._unpacked(target, complete, hexd)
            if found is not None:
                return found
            safefs.remove(self.dir, complete)
            safefs.remove(self.dir, self.images / hexd / "complete")  # older layout
            safefs.remove(self.dir, target)  # a leftover of a killed unpack, or damaged
            safefs.ensure_dir(self.dir, target.parent)
            unpack_image(layout, target)
            content = layer_digest(target)
            self.verifier.records.write(self.dir, complete, Kind.UNPACKED, hexd,
                                        {"manifest": digest, "content": content})
            self.verifier.trust(target, content)
        return Layer(target, content, LayerRef.image(hexd))

    def _unpacked(self, target: Path, complete: Path, hexd: str) -> Layer | None:
        read = self.verifier.records.read(self.dir, complete, Kind.UNPACKED, hexd)
        if read.record is None or not isinstance(read.record.get("content"), str):
            if (problem := read.problem()) is not None:
                self.verifier.report(f"cache entry unpacked image {hexd[:16]} ({target}): "
                                     f"{problem}: not used; unpacking it again")
            return None
        content = read.record["content"]
        if not self.verifier.check(target, content, f"unpacked image {hexd[:16]}"):
            return None
        touch(complete)
        return Layer(target, content, LayerRef.image(hexd))

    # -- work dirs ---------------------------------------------------------------------
    @contextmanager
    def workdir(self) -> Iterator[Path]:
        """A private scratch dir for one build, removed afterwards (even on errors)."""
        safefs.ensure_dir(self.dir, self.work_root)
        self.sweep()
        token = secrets.token_hex(8)
        path = self.work_root / token
        lock = FileLock(self.work_root / f"{token}.lock", root=self.dir)
        with lock:
            path.mkdir()
            try:
                yield path
            finally:
                remove_tree(path)
        (self.work_root / f"{token}.lock").unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove work dirs and temp entries of builds that no longer run."""
        for lockfile in self.work_root.glob("*.lock"):
            try:
                with FileLock(lockfile, timeout=0, root=self.dir):
                    safefs.remove(self.dir, self.work_root / lockfile.stem)
                lockfile.unlink(missing_ok=True)
            except Timeout:
                continue
