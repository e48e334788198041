"""The engine as the rest of rootseed uses it.

``crosscheck``, ``challenge`` and ``bootstrap`` import the engine from here and from
nowhere else (``tests/test_import_cycles.py`` keeps it so): a :class:`Builder` builds,
plans, and hands out what they read (a stage's tree, an image's tree, scratch space, the
log directory, a package's verified sources); the file operations are the engine's own,
for trees of their own. Nothing here exposes the cache, the fetcher or the executors.
"""

from __future__ import annotations

from rootseed.engine.digests import check_digests, read_digests
from rootseed.engine.engine import Builder, BuildOptions, BuildResult, StageTree
from rootseed.engine.executors import RemoteTarget
from rootseed.engine.extract import extract_archive
from rootseed.engine.fsops import clean, copy_tree, makedirs
from rootseed.engine.records import Kind, Records

__all__ = ["BuildOptions", "BuildResult", "Builder", "Kind", "Records", "RemoteTarget",
           "StageTree",
           "check_digests", "clean", "copy_tree", "extract_archive", "makedirs",
           "read_digests"]
