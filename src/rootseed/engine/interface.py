"""The interfaces new backends implement (see docs/architecture.md, "Parts").

* :class:`Executor` — runs an action (:mod:`rootseed.engine.ops`) on a snapshot and
  returns a :class:`LayerResult`. Implementations: the overlay executor
  (:mod:`rootseed.engine.executor`) and the copy executor (:mod:`rootseed.engine.copyexec`);
  :func:`rootseed.engine.executors.open_executor` chooses one.
* :class:`ImageExporter` — writes a finished stage as an OCI image layout:
  :class:`rootseed.engine.export.SquashedExporter` (one layer) and
  :class:`rootseed.engine.export_buildkit.BuildKitExporter` (BuildKit's bytes).
* :class:`SharedImages` — a cache of finished images shared by builders (an executor
  may offer one: the remote executor's is the REAPI service's action cache,
  :mod:`rootseed.remote.images`); the engine keeps what it takes from there apart
  (:mod:`rootseed.engine.shared`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rootseed.engine.ops import Op
from rootseed.engine.snapshots import Layer, Snapshot
from rootseed.oci.config import ImageConfig
from rootseed.sandbox.spec import EnteredRoot


@dataclass(frozen=True)
class LayerResult:
    """What an action made: the snapshot after it, and the layer it added (None: the
    executor changes a stage's tree in place and has no layer per action)."""

    snapshot: Snapshot
    layer: Layer | None
    empty: bool = False  # the action changed nothing
    #: where the result came from, when the executor says (a remote one: its worker, and
    #: whether the service's action cache served it), for step events and the record
    origin: Mapping[str, object] | None = None


class Executor(Protocol):
    """Runs actions on snapshots (BuildKit's Executor with its snapshotter; REAPI's
    Execute). Implementations are thread-safe: stages run side by side."""

    #: True: each action's layer is cached under its key (a failed stage resumes at the
    #: failing step) and a stage entry lists its snapshot's layers; False: a stage's
    #: actions change one tree in place, cached as a whole per stage.
    layered: bool

    def cached(self, snapshot: Snapshot, key: str) -> LayerResult | None:
        """The cached result of action ``key`` on ``snapshot`` (None: run it)."""
        ...

    def execute(self, snapshot: Snapshot, op: Op, key: str, *, work: Path,
                stop: threading.Event | None = None) -> LayerResult:
        """Run ``op`` on ``snapshot`` (never changed: a copy-on-write executor) and
        return the result, cached as ``key`` by a layered executor. ``work`` is the
        stage's private scratch directory; ``stop`` ends a running step early."""
        ...

    def view(self, snapshot: Snapshot) -> Path:
        """``snapshot``'s tree as a read-only host path (``COPY --from``, images)."""
        ...

    def entered(self, snapshot: Snapshot) -> EnteredRoot | None:
        """Where a sandbox can bind :meth:`view`'s tree: None when the view is a plain
        host directory (bind it as it is); else the mount namespace to start the
        sandbox in and the tree's path there (an overlay view is mounted in the
        executor's own namespace, which a sandbox started outside it cannot see)."""
        ...

    def keep(self, snapshot: Snapshot, entry: Path) -> None:
        """Make a stage's final ``snapshot`` outlive the build, in the new cache entry
        directory ``entry`` (a layered executor's layers are in the cache already)."""
        ...

    def shared_images(self) -> SharedImages | None:
        """The cache of whole images this executor shares with other builders (None:
        none, e.g. a local executor)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ImageIdent:
    """What a shared image is recorded under: the target stage's cache key (a pure
    function of the plan and its inputs, engine/planner.py), the layout's name (which
    exporter wrote it, engine/export.py ``layout_name``) and the package (BuildKit's
    format names it in the image)."""

    key: str
    layout: str
    package: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "layout": self.layout, "package": self.package}


class SharedImages(Protocol):
    """Finished images shared by builders (BuildKit's ``--cache-from``/``--cache-to``
    with the image's own layers). A record there is an untrusted claim that an image is
    the one its ident would build: the blobs are verified by digest, the claim itself is
    attributed (docs/trust-model.md)."""

    #: where the images are shared, for messages and records (e.g. the service's URL)
    where: str

    def record(self, ident: ImageIdent) -> str | None:
        """What is recorded for ``ident`` now, as a fingerprint (equal fingerprints: the
        same files), without reading the image. None: no record."""
        ...

    def fetch(self, ident: ImageIdent, dest: Path) -> dict[str, object] | None:
        """Write the image recorded for ``ident`` into the empty directory ``dest`` as
        the files of an OCI layout, each verified by its digest on the way in; its
        origin (who recorded it, and where; ``record``: the record's fingerprint). None:
        no record."""
        ...

    def store(self, ident: ImageIdent, layout: Path, files: list[str]) -> None:
        """Record ``files`` (relative, see engine/publish.py ``layout_files``) of the
        layout this builder made as ``ident``'s image."""
        ...


@dataclass(frozen=True)
class ImageRequest:
    """A finished stage to export as an image."""

    rootfs: Path  # the stage's whole tree, read only (an overlay view, or a directory)
    #: its layers, bottom first, when the executor keeps them (None: a tree without
    #: layers, made by the copy executor)
    snapshot: Snapshot | None
    config: ImageConfig
    annotations: Mapping[str, str]
    epoch: int  # SOURCE_DATE_EPOCH: mtimes are clamped to it


class ImageExporter(Protocol):
    """Writes an image layout (BuildKit's Exporter). The builder holds one; its image
    of a stage is cached in the stage's entry under :attr:`name`."""

    #: a short name (lower-case letters, digits, "-"): the stage entry caches this
    #: exporter's layout in ``image-<name>-<digest of its code>``
    #: (:func:`rootseed.engine.export.layout_name`)
    name: str

    def export(self, request: ImageRequest, layout_dir: Path) -> str:
        """Write ``request`` as an OCI image layout at ``layout_dir`` atomically (a
        failure leaves nothing there); the manifest digest, ``sha256:<hex>``."""
        ...
