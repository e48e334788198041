"""The planner (pure: no I/O except :func:`plan_package` reading the Containerfile)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rootseed.containerfile.model import Containerfile
from rootseed.errors import RootseedError
from rootseed.plan.model import ImageSettings, Plan, Platform

if TYPE_CHECKING:
    from rootseed.tree.model import Package

#: The platform of a package without ``platforms`` (StageX's Makefile: PLATFORM := linux/amd64).
DEFAULT_PLATFORM = Platform("linux", "amd64")


class PlanError(RootseedError):
    """A Containerfile that cannot be planned; the message names file:line."""


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` → :class:`Platform` (a :class:`PlanError` otherwise)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlanError(f"invalid platform {text!r}",
                        hint="write os/arch[/variant], e.g. linux/386")
    return Platform(*parts)


def package_platform(package: Package) -> Platform:
    """The platform a package is built for: the first of its ``platforms`` (StageX builds
    each; rootseed the first), else :data:`DEFAULT_PLATFORM`."""
    return parse_platform(package.platforms[0]) if package.platforms else DEFAULT_PLATFORM


def plan(containerfile: Containerfile, *, build_args: Mapping[str, str] | None = None,
         platform: Platform = DEFAULT_PLATFORM, target: str | None = None,
         base_images: Mapping[str, ImageSettings] | None = None,
         all_stages: bool = False) -> Plan:
    """Plan ``containerfile`` for ``target`` (default: its last stage) as BuildKit would.

    ``build_args`` are the ``--build-arg`` values (StageX's package args merged with the
    user's, the user's winning). ``platform`` is both the target and the build platform
    (``TARGETPLATFORM``/``BUILDPLATFORM`` and friends). ``base_images`` maps an image
    reference (as written after expansion) to its configuration: a stage ``FROM`` it
    starts with its ENV/WORKDIR/USER; an image not given starts like scratch (what the
    dependency scan, which has no images yet, uses). With ``all_stages`` every stage is
    planned, not only those the target needs (for ``check``).

    Raises :class:`PlanError` (file:line, what, a hint) for what BuildKit rejects:
    a failing ``${X:?}``, an unknown ``--target``, ``--from`` with a variable, a base
    name that expands to nothing, a stage cycle.
    """
    raise NotImplementedError  # filled in by the next commit


def plan_package(package: Package, *, build_args: Mapping[str, str] | None = None,
                 target: str | None = None, display: str | None = None,
                 base_images: Mapping[str, ImageSettings] | None = None,
                 all_stages: bool = False) -> Plan:
    """Plan a tree package: its Containerfile with StageX's build args
    (:meth:`Package.build_args`) overridden by ``build_args`` (``--build-arg``), for
    :func:`package_platform`. See :func:`plan` for the rest."""
    raise NotImplementedError  # filled in by the next commit
