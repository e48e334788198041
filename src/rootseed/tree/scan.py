"""Which images a package's Containerfile refers to: the one place the tree asks.

The answer comes from the one planner (:mod:`rootseed.plan`): every stage planned with
StageX's build args and the user's ``--build-arg`` values, as the builder plans it.
"""

from __future__ import annotations

from collections.abc import Mapping

from rootseed.containerfile import Containerfile
from rootseed.plan import plan_package
from rootseed.tree.model import Package


def image_references(package: Package, containerfile: Containerfile,
                     build_args: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """Every FROM and ``COPY --from`` operand of any stage that names an image (not a
    stage, ``scratch`` or a named context), expanded, with its line, in file order.
    Raises the planner's error (a :class:`~rootseed.errors.RootseedError`) when the file
    cannot be planned."""
    planned = plan_package(package, build_args=build_args, all_stages=True,
                           containerfile=containerfile)
    return [(ref.reference, line) for ref, line in planned.images()]
