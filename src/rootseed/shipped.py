"""The data that ships inside the rootseed package, found with :mod:`importlib.resources`.

``rootseed/data/`` holds rootseed's own package tree (``packages/``), the offline example
tree (``examples/``), rootseed's own hex0 seed source (``seeds/``) and the recorded manifest
digests of both trees (``digests/``, beside the trees, where every command looks for them).
Nothing here depends on where a source checkout lives: an installed wheel finds the same
files in its own site-packages.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from rootseed.errors import RootseedError


def data_dir(name: str) -> Path:
    """``rootseed/data/<name>`` as a real directory (trees are read with ordinary paths)."""
    resource = files("rootseed").joinpath("data", name)
    # A tree is walked, unpacked into sandboxes and hashed with ordinary file APIs; a zipped
    # install would hand us a Traversable that is not a path, so say so instead of failing
    # later in a confusing place.
    if not isinstance(resource, Path) or not resource.is_dir():
        raise RootseedError(
            f"rootseed's shipped data {name}/ is missing from the installed package "
            f"({resource})",
            hint="install rootseed from its wheel or a source checkout (not a zip archive), "
                 "or pass --tree DIR")
    return resource


def packages() -> Path:
    """rootseed's own package tree (namespace ``rootseed``): ``bootstrap/stage0``."""
    return data_dir("packages")


def examples() -> Path:
    """The offline example tree built from rootseed's own 180-byte seed."""
    return data_dir("examples")


def seeds() -> Path:
    """rootseed's own seed sources (``x86/hex0.hex0``)."""
    return data_dir("seeds")


def digests() -> Path:
    """The recorded manifest digests of the shipped trees (``<stage>.txt``)."""
    return data_dir("digests")
