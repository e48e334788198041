"""Write an image as BuildKit's OCI exporter does (``type=oci,rewrite-timestamp=true,
force-compression=true``), as a layout directory and, on request, an ``oci-archive`` tar.

What goes in (:class:`ExportRequest`) is plain data: the image's stage chain (for the
config and history), one :class:`LayerDiff` per layer the chain's instructions made, and
the base image when the chain starts from one. Each new layer is the tar of its diff
(:mod:`.diff`, :mod:`.tar`), compressed by Go's ``compress/gzip`` (:mod:`rootseed.oci.gogzip`);
a base image's layers are its own blobs, reused as they are (never recompressed), as
BuildKit reuses blobs that are already gzip with the rewritten-timestamp annotation.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from rootseed.errors import RootseedError
from rootseed.oci import gogzip
from rootseed.oci.buildkit import documents as docs
from rootseed.oci.buildkit.diff import RUN_MOUNT_POINTS, Entry, layer_entries
from rootseed.oci.buildkit.history import Step, stage_history
from rootseed.oci.buildkit.tar import Header, Kind, TarWriter
from rootseed.oci.config import created_at
from rootseed.oci.digest import HashingWriter, hex_of, sha256_bytes
from rootseed.oci.layout import replace_layout
from rootseed.oci.verified import open_image
from rootseed.plan import ImageRef, PlannedCmd, PlannedShell, StagePlan

#: Annotation keys StageX's ``src/targets.py`` passes to the exporter.
SOURCE = "containerd.io/distribution.source.docker.io"
VERSION = "org.opencontainers.image.version"
CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class LayerDiff:
    """One layer to write: the layer directory (an overlayfs upper directory) over the
    root filesystem below it (a read-only view; None: empty), and the mount points runc
    would have created (for a RUN: those of :data:`RUN_MOUNT_POINTS` that no earlier
    RUN of the image made already; see :func:`run_mount_points`)."""

    upper: Path
    lower: Path | None
    mount_points: tuple[str, ...] = ()


def run_mount_points(made: set[str]) -> tuple[str, ...]:
    """The mount points a RUN adds given those earlier RUNs made (``made`` is updated):
    rootseed's sandbox removes its own, so they are not in the lower snapshot."""
    new = tuple(m for m in RUN_MOUNT_POINTS if m not in made)
    made.update(new)
    return new


@dataclass(frozen=True)
class ExportRequest:
    chain: Sequence[StagePlan]  # the image's stage and the stages it is FROM, base first
    layers: Sequence[LayerDiff]  # one per history entry with a layer, in order
    image_name: str  # e.g. "stagex/bootstrap-stage0:latest" (outer index.json only)
    annotations: Mapping[str, str]  # the manifest's
    base: Path | None = None  # the base image's layout when the chain starts FROM one
    epoch: int = 1

    @property
    def target(self) -> StagePlan:
        return self.chain[-1]


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    diff_id: str


def stagex_annotations(package: str, version: str | None, namespace: str = "stagex",
                       epoch: int = 1) -> dict[str, str]:
    """The manifest annotations StageX's ``src/targets.py`` asks for."""
    return {SOURCE: f"{namespace}/{package}", VERSION: version or "latest",
            CREATED: created_at(epoch)}


def write_layer_tar(entries: Iterable[Entry], out: BinaryIO) -> None:
    writer = TarWriter(out)
    for entry in entries:
        if entry.source is None:
            writer.add(entry.header)
            continue
        fd = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            writer.add(entry.header, f)
    writer.close()


def _gzip_blob(blobs: Path, tar_path: Path, diff_id: str) -> Blob:
    partial = blobs / ".blob.partial"
    with open(tar_path, "rb") as src, open(partial, "wb") as raw:
        out = HashingWriter(raw)
        gogzip.gzip_file(src, out)  # type: ignore[arg-type]
    blob = Blob(out.digest, out.size, diff_id)
    os.replace(partial, blobs / hex_of(blob.digest))
    return blob


def write_layer(blobs: Path, layer: LayerDiff, epoch: int) -> Blob:
    """Write one layer's gzip blob into ``blobs``; its digests and size."""
    entries = layer_entries(layer.upper, layer.lower, epoch=epoch,
                            mount_points=layer.mount_points)
    tar_path = blobs / ".layer.tar"
    try:
        with open(tar_path, "wb") as raw:
            hashed = HashingWriter(raw)
            write_layer_tar(entries, hashed)  # type: ignore[arg-type]
        return _gzip_blob(blobs, tar_path, hashed.digest)
    finally:
        tar_path.unlink(missing_ok=True)


def _reuse(blob: Path, dest: Path) -> None:
    """A base image's blob, as it is: a hard link where the file system allows (blobs are
    read-only and content-addressed; every reader re-hashes them), else a copy."""
    try:
        os.link(blob, dest, follow_symlinks=False)
    except OSError:
        shutil.copyfile(blob, dest, follow_symlinks=False)


def _put(blobs: Path, data: bytes) -> str:
    digest = sha256_bytes(data)
    path = blobs / hex_of(digest)
    path.write_bytes(data)
    return digest


def _run_config(request: ExportRequest, base_config: Mapping[str, Any]) -> docs.RunConfig:
    final = request.target.final
    env = tuple(f"{k}={v}" for k, v in final.env)
    shell: tuple[str, ...] = tuple(base_config.get("Shell") or ())
    args_escaped = bool(base_config.get("ArgsEscaped"))
    for stage in request.chain:
        for step in stage.steps:
            if isinstance(step, PlannedShell):
                shell = step.argv
            elif isinstance(step, PlannedCmd):
                args_escaped = True
    return docs.RunConfig(env=env, working_dir=final.workdir or docs.DEFAULT_WORKDIR,
                          user=final.user, entrypoint=final.entrypoint, cmd=final.cmd,
                          labels=dict(final.labels), args_escaped=args_escaped, shell=shell)


def layer_steps(chain: Sequence[StagePlan], epoch: int = 1) -> list[Step]:
    """The history of ``chain``'s image (see :mod:`.history`)."""
    return stage_history(chain, created_at(epoch))


def _write(tmp: Path, request: ExportRequest) -> str:
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    created = created_at(request.epoch)
    steps = layer_steps(request.chain, request.epoch)
    wanted = sum(1 for s in steps if s.layer)
    if wanted != len(request.layers):
        raise RootseedError(f"the image has {wanted} layer-making instructions but "
                            f"{len(request.layers)} layers were given",
                            hint="this is a bug in rootseed's exporter wiring")
    history: list[docs.HistoryEntry] = []
    layers: list[docs.Descriptor] = []
    diff_ids: list[str] = []
    base_config: dict[str, Any] = {}
    if request.base is not None:
        base = open_image(request.base)
        base_config = base.config_json.get("config") or {}
        for item in base.config_json.get("history") or []:
            history.append(docs.HistoryEntry(
                created_by=str(item.get("created_by", "")),
                empty_layer=bool(item.get("empty_layer")), created=item.get("created"),
                comment=str(item.get("comment", ""))))
        for descriptor, parent, diff_id in zip(base.manifest["layers"], base.layers,
                                               base.diff_ids, strict=True):
            _reuse(parent.path, blobs / hex_of(parent.digest))
            layers.append(docs.Descriptor(docs.LAYER_GZIP, parent.digest, parent.size,
                                          dict(descriptor.get("annotations") or {})))
            diff_ids.append(diff_id)
    history += [s.entry for s in steps]
    for layer in request.layers:
        blob = write_layer(blobs, layer, request.epoch)
        layers.append(docs.Descriptor(docs.LAYER_GZIP, blob.digest, blob.size,
                                      {docs.REWRITTEN: str(request.epoch)}))
        diff_ids.append(blob.diff_id)
    platform = request.target.platform
    config = docs.config_json(platform, _run_config(request, base_config), history,
                              diff_ids, created)
    config_desc = docs.Descriptor(docs.CONFIG, _put(blobs, config), len(config))
    manifest = docs.manifest_json(config_desc, layers, request.annotations)
    manifest_desc = docs.Descriptor(docs.MANIFEST, _put(blobs, manifest), len(manifest))
    index = docs.image_index_json(manifest_desc, platform)
    index_desc = docs.Descriptor(docs.INDEX, _put(blobs, index), len(index))
    outer = docs.outer_index_json(index_desc, docs.normalize_name(request.image_name), created)
    (tmp / "index.json").write_bytes(outer)
    (tmp / "oci-layout").write_bytes(docs.LAYOUT)
    for blob_path in blobs.iterdir():
        if os.lstat(blob_path).st_nlink == 1:  # a linked base blob is 0444 already
            os.chmod(blob_path, 0o444)
    os.chmod(tmp / "oci-layout", 0o444)
    os.chmod(tmp / "index.json", 0o644)
    return manifest_desc.digest


def write_layout(layout_dir: Path, request: ExportRequest) -> str:
    """Write the image as an OCI layout at ``layout_dir`` (replaced as a whole,
    atomically); returns the manifest digest (the one StageX publishes)."""
    return replace_layout(layout_dir, lambda tmp: _write(tmp, request))


def write_archive(layout_dir: Path, out: BinaryIO, image_name: str | None = None) -> None:
    """The layout as the ``oci-archive`` tar BuildKit writes (``tar=true``): ``blobs/``,
    ``blobs/sha256/``, the blobs by name, ``index.json``, ``oci-layout``; mtime 0, blobs
    and ``oci-layout`` 0444, ``index.json`` 0644, Go's tar headers. ``image_name``
    renames the image in ``index.json`` (BuildKit's ``name=``; digests do not change)."""
    image = open_image(layout_dir)  # every blob the index names, verified
    index_json = (layout_dir / "index.json").read_bytes()
    if image_name is not None:
        entry = image.index_entry
        index_json = docs.outer_index_json(
            docs.Descriptor(str(entry.get("mediaType", docs.INDEX)), str(entry["digest"]),
                            int(entry["size"])),
            docs.normalize_name(image_name),
            str((entry.get("annotations") or {}).get(CREATED, created_at(1))))
    names = {image.config_blob.digest, image.manifest_digest,
             *(b.digest for b in image.layers)}
    if image.image_index is not None:
        names.add(image.image_index.digest)
    writer = TarWriter(out)
    for name in (b"blobs/", b"blobs/sha256/"):
        writer.add(Header(name=name, kind=Kind.DIR, mode=0o755, mtime=0))
    for digest in sorted(names):
        path = layout_dir / "blobs" / "sha256" / hex_of(digest)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            writer.add(Header(name=f"blobs/sha256/{hex_of(digest)}".encode(), kind=Kind.FILE,
                              mode=0o444, mtime=0, size=size), f)
    for file, mode in (("index.json", 0o644), ("oci-layout", 0o444)):
        data = index_json if file == "index.json" else (layout_dir / file).read_bytes()
        writer.add(Header(name=file.encode(), kind=Kind.FILE, mode=mode, mtime=0,
                          size=len(data)), io.BytesIO(data))
    writer.close()


def base_image(chain: Sequence[StagePlan]) -> ImageRef | None:
    """The image the chain starts from (None: scratch)."""
    base = chain[0].base
    return base if isinstance(base, ImageRef) else None
