"""Which images a package's Containerfile refers to: the one place the tree asks.

Today this reads the parser's references expanded with the global ARGs; when the
planner (:mod:`rootseed.plan`) lands, it reads the plan of every stage instead. Callers
get (reference, line) pairs either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from rootseed.containerfile import Containerfile


def image_references(containerfile: Containerfile, build_args: Mapping[str, str]
                     ) -> list[tuple[str, int]]:
    """Every FROM and ``COPY --from`` operand of any stage that names an image (not a
    stage, ``scratch`` or a named context), expanded, with its line, in file order."""
    return containerfile.image_reference_lines(dict(build_args))
