"""What the package tree says each image is built from: the other side of ``trace``'s check.

The builder records, per image, the pinned sources, the Containerfile's sha256, the build
arguments and the sha256 of every file in the package directory (its build context).
:func:`tree_expectations` computes the same facts from the tree as it is now, the way the
builder computes them (:func:`rootseed.fsutil.hash_tree`, ``Package.build_args``), so
that ``trace`` can refuse provenance that was edited, or a tree that changed after the build.
"""

from __future__ import annotations

import hashlib
from functools import cache

from rootseed.errors import RootseedError
from rootseed.fsutil import hash_tree
from rootseed.provenance.trace import Expected, Pins
from rootseed.tree import Tree


def tree_expectations(tree: Tree) -> Pins:
    """Image name → :class:`Expected` (None for an image the tree does not define)."""

    @cache
    def of_package(name: str) -> Expected:
        package = tree.packages[name]
        try:
            containerfile = hashlib.sha256(package.containerfile.read_bytes()).hexdigest()
            context = hash_tree(package.directory)
        except OSError as e:
            raise RootseedError(f"{name}: cannot read the package directory "
                                f"{package.directory} to compare it with the provenance: "
                                f"{e.strerror or e}") from e
        return Expected(sources={s.file: (s.hash, s.seed) for s in package.sources},
                        containerfile_sha256=containerfile,
                        build_args=package.build_args(), context_files=context)

    def expected(image: str) -> Expected | None:
        name = tree.images.get(image)
        return None if name is None else of_package(name)

    return expected
