"""Deterministic OCI output: layer tars, image layouts (write, read, unpack), digests."""

from __future__ import annotations

from rootseed.oci.config import ImageConfig
from rootseed.oci.layer import Layer, write_layer
from rootseed.oci.layout import Image, manifest_digest, read_image, write_image
from rootseed.oci.unpack import unpack_image
from rootseed.oci.verified import BlobError, LayoutError, VerifiedImage, open_image

__all__ = ["BlobError", "Image", "ImageConfig", "Layer", "LayoutError", "VerifiedImage",
           "manifest_digest", "open_image", "read_image", "unpack_image", "write_image",
           "write_layer"]
