"""Deterministic OCI output: layer tars, image layouts (write, read, unpack), digests."""

from __future__ import annotations

from rootseed.oci.config import ImageConfig
from rootseed.oci.layer import Layer, write_layer
from rootseed.oci.layout import Image, manifest_digest, read_image, write_image
from rootseed.oci.unpack import unpack_image

__all__ = ["Image", "ImageConfig", "Layer", "manifest_digest", "read_image", "unpack_image",
           "write_image", "write_layer"]
