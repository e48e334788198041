"""The image exporter of today's images: the stage's whole tree as one squashed layer.

A package image is the result of one build and nothing reuses its lower layers, so the
default exporter writes one layer holding the stage's whole tree (see
:func:`rootseed.oci.write_image`); the tar writer is :func:`rootseed.oci.layer.write_tar`,
the one rootseed has. Another exporter (BuildKit's layers, one per instruction)
implements :class:`~rootseed.engine.interface.ImageExporter` beside this one.
"""

from __future__ import annotations

import re
from pathlib import Path

from rootseed.engine.actions import code_digest
from rootseed.engine.interface import ImageExporter, ImageRequest
from rootseed.engine.snapshots import Snapshot
from rootseed.engine.stage import StageState
from rootseed.errors import RootseedError
from rootseed.oci import ImageConfig, write_image
from rootseed.plan import Platform

#: BuildKit's ``rewrite-timestamp`` with SOURCE_DATE_EPOCH=1: every image says it was
#: made at the same second, so the bytes do not depend on when they were built.
CREATED = "1970-01-01T00:00:01Z"
EPOCH = 1
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def image_config(state: StageState, platform: Platform) -> ImageConfig:
    """The OCI image configuration of a stage that ended in ``state``."""
    return ImageConfig(
        architecture=platform.architecture, os=platform.os,
        env=tuple(f"{k}={v}" for k, v in state.env), entrypoint=state.entrypoint,
        cmd=state.cmd, working_dir=state.workdir, user=state.user, labels=state.labels)


def image_request(rootfs: Path, snapshot: Snapshot | None, state: StageState,
                  platform: Platform, version: str) -> ImageRequest:
    """What an exporter needs of a stage that ended in ``state``: its tree, its image
    configuration and the annotations every rootseed image carries."""
    return ImageRequest(
        rootfs=rootfs, snapshot=snapshot,
        config=image_config(state, platform),
        annotations={"org.opencontainers.image.created": CREATED,
                     "org.opencontainers.image.ref.name": version},
        epoch=EPOCH)


def layout_name(exporter: ImageExporter) -> str:
    """The stage entry's directory that caches ``exporter``'s layout: ``image`` for the
    squashed exporter (its code is in every cache key, see ``builder_digest``); another
    exporter's is named with a digest of its own code as well, so a changed exporter
    never reuses a layout an older one wrote."""
    if isinstance(exporter, SquashedExporter):
        return "image"
    return class_layout_name(type(exporter), exporter.name)


def class_layout_name(kind: type[object], name: str) -> str:
    """:func:`layout_name` of an exporter other than the squashed one, by its class and
    name (known before there is a stage to export)."""
    if not _NAME.fullmatch(name):
        raise RootseedError(f"internal: an exporter name must be lower-case letters, digits "
                            f"and '-', not {name!r}")
    code = code_digest(kind.__module__).removeprefix("sha256:")
    return f"image-{name}-{code[:16]}"


class SquashedExporter:
    """One layer holding the stage's whole tree (the images rootseed has always made)."""

    name = "image"

    def export(self, request: ImageRequest, layout_dir: Path) -> str:
        return write_image(layout_dir, request.rootfs, request.config, request.annotations,
                           epoch=request.epoch)
