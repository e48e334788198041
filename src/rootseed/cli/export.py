"""``rootseed export PKG --oci-archive FILE``: a built image as one tar."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from rootseed.cli.common import common_options
from rootseed.console import emit_json, out
from rootseed.oci.buildkit.export import write_archive
from rootseed.oci.verified import LayoutError, open_image
from rootseed.settings import Settings


@click.command("export")
@click.argument("package")
@click.option("--oci-archive", "archive", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Write the image here as an oci-archive tar (what "
              "BuildKit's type=oci,tar=true writes; skopeo reads it as oci-archive:FILE).")
@click.option("--name", default=None, metavar="NAME",
              help="Image name in the archive's index.json (BuildKit's name=; the digests "
                   "do not change). Default: the name the build gave it.")
@common_options
def export_cmd(package: str, archive: Path, name: str | None, settings: Settings) -> None:
    """Write the built image of PACKAGE (out/PACKAGE) as an oci-archive tar."""
    layout = settings.out / package
    try:
        digest = open_image(layout).manifest_digest
    except LayoutError as e:
        e.hint = f"run `rootseed build {package}` first (same --out)"
        raise e.at(f"{package}: no readable image at {layout}", package=package) from None
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", dir=archive.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write_archive(layout, f, image_name=name)
        os.replace(tmp, archive)
    except BaseException:
        os.unlink(tmp)
        raise
    if settings.json:
        emit_json({"package": package, "archive": str(archive), "manifest_digest": digest})
    else:
        out.print(f"{package}: {digest} → {archive}", markup=False)


COMMANDS = [export_cmd]
