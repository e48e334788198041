"""The builder's content-addressed cache (under ``<cache>``).

* ``builds/<key>/`` — one finished stage: ``stage.json`` (the state later instructions and
  child stages need: env, workdir, user, shell, ...), ``rootfs/`` (a snapshot of the
  stage's root filesystem: the directory the stage ran in, moved here once its last
  instruction finished; read-only from then on) and, only for a stage that was a build's
  image, ``image/`` (its OCI layout). A child stage starts from a real copy of its base's
  ``rootfs/`` (never hardlinks into it) and ``COPY --from`` reads the snapshot directly,
  so no intermediate stage is ever packed, compressed or unpacked. The key chains the
  parent's key with every instruction and its inputs (see ``engine._key``).
* ``images/<manifest-hex>/rootfs`` — an image of another package unpacked once, reused
  read-only.
* ``work/<id>/`` — scratch space of one running build (removed afterwards; a killed
  build's leftovers are swept by the next build once their lock is free).
* ``locks/`` — file locks. Every entry appears by ``os.replace`` of a finished temp dir
  (and an entry's ``image/`` by ``os.replace`` too), so a build killed at any moment leaves
  no half entry, and two builds of one stage wait for each other instead of racing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rootseed.build.fsops import remove_tree
from rootseed.console import canonical_json
from rootseed.errors import RootseedError
from rootseed.fsutil import private_dir
from rootseed.oci import manifest_digest, unpack_image
from rootseed.oci.digest import hex_of

#: ``stage.json``'s ``format``: entries of another layout are misses (and get replaced).
ENTRY_FORMAT = 2


@dataclass(frozen=True)
class CachedStage:
    key: str
    rootfs: Path  # the stage's root filesystem snapshot (never modify it)
    state: dict[str, Any]
    layout: Path | None = None  # OCI image layout, once the stage was a build's image
    manifest_digest: str | None = None

    @property
    def entry(self) -> Path:
        return self.rootfs.parent


class BuildCache:
    def __init__(self, cache_dir: Path):
        self.dir = private_dir(cache_dir, "cache directory")
        self.builds = cache_dir / "builds"
        self.images = cache_dir / "images"
        self.locks = cache_dir / "locks"
        self.work_root = cache_dir / "work"
        self.logs = cache_dir / "logs"

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        self.locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.locks / f"{name}.lock")):
            yield

    # -- stage entries -----------------------------------------------------------------
    def lookup(self, key: str) -> CachedStage | None:
        entry = self.builds / key
        try:
            state = json.loads((entry / "stage.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # absent, unreadable, nested deep: a miss
            return None
        if not isinstance(state, dict) or state.get("format") != ENTRY_FORMAT:
            return None
        if not (entry / "rootfs").is_dir():
            return None
        found = CachedStage(key=key, rootfs=entry / "rootfs", state=state)
        try:
            digest = manifest_digest(entry / "image")
        except (OSError, ValueError, RootseedError, KeyError):
            return found  # no image (yet): a stage only ever used inside a build
        return dataclasses.replace(found, layout=entry / "image", manifest_digest=digest)

    def commit(self, tmp: Path, key: str, state: dict[str, Any], *, replace: bool = False
               ) -> CachedStage:
        """Publish a finished entry (``tmp/rootfs`` in place; ``tmp`` in a work dir of the
        same file system) under ``key``, atomically. Call with the stage's lock held."""
        (tmp / "stage.json").write_text(canonical_json({**state, "format": ENTRY_FORMAT}),
                                        encoding="utf-8")
        self.builds.mkdir(parents=True, exist_ok=True)
        final = self.builds / key
        if final.exists() and (replace or self.lookup(key) is None):
            old = tmp.parent / f"old-{secrets.token_hex(6)}"
            os.replace(final, old)  # broken or to be replaced: move aside, then publish
        if final.exists():
            remove_tree(tmp)  # an equal entry is already published: keep it
        else:
            os.replace(tmp, final)
        found = self.lookup(key)
        if found is None:
            raise RootseedError(f"cache entry {final} is unreadable right after writing it",
                                hint="check the disk and the cache directory's permissions")
        return found

    def ensure_image(self, stage: CachedStage, write: Callable[[Path, Path], str]
                     ) -> CachedStage:
        """``stage`` with its OCI layout: written once, by ``write(layout_dir, rootfs)``
        (which must write atomically, as :func:`rootseed.oci.write_image` does)."""
        if stage.layout is not None:
            return stage
        with self.lock(f"entry-image-{stage.key}"):
            found = self.lookup(stage.key)
            if found is not None and found.layout is not None:
                return found
            for leftover in stage.entry.glob(".image.*"):  # of a killed writer
                remove_tree(leftover)
            write(stage.entry / "image", stage.rootfs)
            found = self.lookup(stage.key)
        if found is None or found.layout is None:
            raise RootseedError(f"cache entry {stage.entry} has no readable image right "
                                "after writing it",
                                hint="check the disk and the cache directory's permissions")
        return found

    # -- unpacked images ---------------------------------------------------------------
    def rootfs(self, layout: Path, digest: str) -> Path:
        """The unpacked root filesystem of an image (unpacked once, then reused)."""
        hexd = hex_of(digest)
        target = self.images / hexd / "rootfs"
        if (self.images / hexd / "complete").exists():
            return target
        with self.lock(f"image-{hexd}"):
            if not (self.images / hexd / "complete").exists():
                if target.exists():
                    remove_tree(target)  # a leftover of a killed unpack
                unpack_image(layout, target)
                (self.images / hexd / "complete").write_text(digest + "\n")
        return target

    # -- work dirs ---------------------------------------------------------------------
    @contextmanager
    def workdir(self) -> Iterator[Path]:
        """A private scratch dir for one build, removed afterwards (even on errors)."""
        self.work_root.mkdir(parents=True, exist_ok=True)
        self.sweep()
        token = secrets.token_hex(8)
        path = self.work_root / token
        lock = FileLock(str(self.work_root / f"{token}.lock"))
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
                with FileLock(str(lockfile), timeout=0):
                    remove_tree(self.work_root / lockfile.stem)
                lockfile.unlink(missing_ok=True)
            except Timeout:
                continue


def copy_layout(src: Path, dest: Path, prepare: Callable[[Path], object] | None = None
                ) -> None:
    """Copy an image layout to ``dest`` atomically (temp dir + rename; never half).

    ``prepare`` may add files (provenance) to the copy before it takes the name.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.partial"
    try:
        shutil.copytree(src, tmp, symlinks=True)
        if prepare is not None:
            prepare(tmp)
        if dest.exists() or dest.is_symlink():
            old = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.old"
            os.replace(dest, old)
            os.replace(tmp, dest)
            remove_tree(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        remove_tree(tmp)
        raise
