"""BuildKit's image format for StageX trees (an :class:`~rootseed.engine.interface.ImageExporter`).

The builder's own exporter (:class:`rootseed.engine.export.SquashedExporter`: rootseed's
format, one squashed layer) serves rootseed's trees; :func:`choose_exporter` picks, per
package:

* :class:`BuildKitExporter` — the bytes BuildKit v0.26.3 writes with StageX's export
  options (:mod:`rootseed.oci.buildkit`): one layer per instruction that makes one, taken
  from the action layers the layered executor keeps, and the base image's own blobs. It
  is the default for StageX trees (namespace ``stagex``: a StageX checkout, which has no
  ``rootseed.toml``), so their digests are StageX's published ones.

A stage entry records its actions in order (``stage.json`` ``actions``: each
instruction's layer ref, digest and whether it was empty), its base stage's first
(:func:`stage_actions`); the exporter matches them with the image's history.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rootseed.engine.cache import CachedStage
from rootseed.engine.executor import OverlayExecutor
from rootseed.engine.export import class_layout_name, layout_name
from rootseed.engine.interface import Executor, ImageExporter, ImageRequest
from rootseed.engine.refs import LayerRef
from rootseed.engine.snapshots import Layer, LayerStore, Snapshot
from rootseed.errors import RootseedError
from rootseed.oci.buildkit.documents import normalize_name
from rootseed.oci.buildkit.export import (
    ExportRequest,
    LayerDiff,
    layer_steps,
    run_mount_points,
    stagex_annotations,
    write_layout,
)
from rootseed.oci.verified import MAX_JSON
from rootseed.plan import ImageRef, Plan, PlannedRun, StagePlan, StageRef
from rootseed.tree import Package

#: Trees in this namespace get BuildKit's image format (StageX's own namespace).
BUILDKIT_NAMESPACE = "stagex"


class ExportError(RootseedError):
    """The image cannot be written in the format its tree asks for."""


def stage_actions(stage: StagePlan, needed: Mapping[int, CachedStage],
                  results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The actions of ``stage``'s chain in order: its base stage's, then its own."""
    found: list[dict[str, Any]] = []
    if isinstance(stage.base, StageRef):
        base = needed[stage.base.index].state.get("actions")
        found += base if isinstance(base, list) else []
    return found + [{**r, "stage": stage.index} for r in results]


def stage_chain(plan: Plan, target: StagePlan) -> list[StagePlan]:
    """``target`` and the stages it is built FROM, base first."""
    chain = [target]
    while isinstance(chain[0].base, StageRef):
        chain.insert(0, plan.get(chain[0].base.index))
    return chain


class BuildKitExporter:
    """BuildKit's layers from the layered executor's action layers (one stage entry's:
    ``final``, whose ``stage.json`` lists its actions)."""

    #: cached apart from rootseed's own layout, under a digest of this module's code
    #: (:func:`rootseed.engine.export.layout_name`)
    name = "buildkit"

    def __init__(self, namespace: str, package: Package, plan: Plan,
                 parents: Mapping[str, Path], executor: OverlayExecutor, store: LayerStore,
                 final: CachedStage) -> None:
        self.namespace = namespace
        self.package = package
        self.plan = plan
        self.parents = parents
        self.executor = executor
        self.store = store
        self.final = final

    def request(self) -> ExportRequest:
        chain = stage_chain(self.plan, self.plan.target_stage)
        root = chain[0].base
        base = self.parents[root.reference] if isinstance(root, ImageRef) else None
        actions = self.final.state.get("actions")
        snapshot = self.final.snapshot
        if not isinstance(actions, list) or snapshot is None:
            raise ExportError(f"{self.package.name}: the cached stage records no layers",
                              hint="build again with --no-cache")
        by_step = {(a.get("stage"), a.get("step")): a for a in actions if isinstance(a, dict)}
        stack = list(snapshot.layers)
        below = 1 if base is not None else 0  # the unpacked base image
        layers: list[LayerDiff] = []
        made: set[str] = set()  # runc's mount points earlier RUN layers have
        for step in layer_steps(chain, 1):
            if not step.planned.changes_files:
                continue
            action = by_step.get((step.stage, step.number))
            if action is None:
                raise ExportError(f"{self.package.name}: no recorded layer for step "
                                  f"{step.number} of stage {step.stage}",
                                  hint="build again with --no-cache")
            if step.layer:
                upper = self._upper(action)
                lower = self._view(stack[:below])
                points = run_mount_points(made) if isinstance(step.planned, PlannedRun) \
                    else ()
                layers.append(LayerDiff(upper, lower, points))
            if not action.get("empty"):
                if below >= len(stack) or str(stack[below].ref) != action.get("ref"):
                    raise ExportError(f"{self.package.name}: the snapshot's layers do not "
                                      "follow its instructions (flattened?)",
                                      hint="BuildKit's format needs one layer per "
                                           "instruction; build again with --no-cache")
                below += 1
        return ExportRequest(chain=chain, layers=layers, image_name=self._name(), base=base,
                             annotations=stagex_annotations(self.package.name,
                                                            self.package.version or None,
                                                            self.namespace))

    def _upper(self, action: Mapping[str, Any]) -> Path:
        if action.get("empty"):
            return self.executor.empty
        ref = LayerRef.parse(action.get("ref"))
        found = None if ref is None else self.store.resolve(ref, str(action.get("digest")))
        if found is None:
            raise ExportError(f"{self.package.name}: the layer {action.get('ref')} is "
                              "missing or damaged in the cache",
                              hint="build again with --no-cache")
        return found.path

    def _view(self, layers: Sequence[Layer]) -> Path | None:
        if not layers:
            return None
        digest = hashlib.sha256("\0".join(f"{x.ref}\0{x.digest}" for x in layers).encode())
        return self.executor.view(Snapshot("sha256:" + digest.hexdigest(), tuple(layers)))

    def export(self, request: ImageRequest, layout_dir: Path) -> str:
        return write_layout(layout_dir, self.request())

    def _name(self) -> str:
        return f"{self.namespace}/{self.package.name}:{self.package.version or 'latest'}"

    def fits(self) -> bool:
        """Whether the stage entry's cached image names this package (see :func:`fits`)."""
        final = self.final
        if final.layout is None:
            return True
        # index.json only (the layout was just checked against its seal): cheap
        try:
            fd = os.open(final.layout / "index.json", os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                index = json.loads(f.read(MAX_JSON))
            named = index["manifests"][0]["annotations"]["io.containerd.image.name"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return False
        return bool(named == normalize_name(self._name()))


def fits(exporter: ImageExporter) -> bool:
    """Whether the cached image of the stage entry ``exporter`` was made for is the one it
    would write: a stage entry is shared by every package whose target stage has its key,
    and BuildKit's format names the package in the image (rootseed's names only the
    version, part of the key)."""
    return not isinstance(exporter, BuildKitExporter) or exporter.fits()


def choose_exporter(default: ImageExporter, namespace: str, package: Package, plan: Plan,
                    parents: Mapping[str, Path], executor: Executor | None,
                    store: LayerStore, final: CachedStage,
                    warn: Callable[[str], None]) -> ImageExporter:
    """BuildKit's format for a StageX tree on layered snapshots, else ``default``."""
    if namespace != BUILDKIT_NAMESPACE:
        return default
    if not isinstance(executor, OverlayExecutor):
        warn(f"{package.name}: copy-on-write snapshots are off, so the image is written "
             "in rootseed's squashed format, not BuildKit's: its digest will not be "
             "StageX's published one")
        return default
    return BuildKitExporter(namespace, package, plan, parents, executor, store, final)


def chosen_layout_name(default: ImageExporter, namespace: str,
                       executor: Executor | None) -> str:
    """The layout name (engine/export.py ``layout_name``) of the exporter
    :func:`choose_exporter` picks, known before the stage is built (a shared image is
    recorded under it)."""
    if namespace != BUILDKIT_NAMESPACE or not isinstance(executor, OverlayExecutor):
        return layout_name(default)
    return class_layout_name(BuildKitExporter, BuildKitExporter.name)
