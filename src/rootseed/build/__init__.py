"""Execute a package's Containerfile in sandboxes and write a deterministic OCI image."""

from rootseed.build.engine import Builder, BuildOptions, BuildResult
from rootseed.build.record import BuildRecord, ParentImage, ResolvedSource

__all__ = ["BuildOptions", "BuildRecord", "BuildResult", "Builder", "ParentImage",
           "ResolvedSource"]
