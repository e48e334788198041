"""The image exporter of today's images: the stage's whole tree as one squashed layer.

A package image is the result of one build and nothing reuses its lower layers, so the
default exporter writes one layer holding the stage's whole tree (see
:func:`rootseed.oci.write_image`); the tar writer is :func:`rootseed.oci.layer.write_tar`,
the one rootseed has. Another exporter (BuildKit's layers, one per instruction)
implements :class:`~rootseed.engine.interface.ImageExporter` beside this one.
"""

from __future__ import annotations

from pathlib import Path

from rootseed.engine.interface import ImageRequest
from rootseed.engine.snapshots import Snapshot
from rootseed.engine.stage import StageState
from rootseed.oci import ImageConfig, write_image
from rootseed.plan import Platform

#: BuildKit's ``rewrite-timestamp`` with SOURCE_DATE_EPOCH=1: every image says it was
#: made at the same second, so the bytes do not depend on when they were built.
CREATED = "1970-01-01T00:00:01Z"
EPOCH = 1


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


class SquashedExporter:
    """One layer holding the stage's whole tree (the images rootseed has always made)."""

    name = "image"

    def export(self, request: ImageRequest, layout_dir: Path) -> str:
        return write_image(layout_dir, request.rootfs, request.config, request.annotations,
                           epoch=request.epoch)
