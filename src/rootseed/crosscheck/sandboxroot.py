"""A fresh sandbox root that sees a cached stage's files read-only.

Instead of copying a stage's root filesystem to run something on it, a new, empty root
gets the stage's top-level directories bound read-only at their own paths (its top-level
symlinks are recreated inside the root, so they resolve in the sandbox, never on the
host); what the command writes goes to a directory of the new root.

A stage kept as an overlay view lives in the builder's mount namespace
(:attr:`~rootseed.engine.api.StageTree.entered`): the sandbox is then started in that
namespace and binds the view's directories from there, so the stage is never copied.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from rootseed.engine.api import StageTree
from rootseed.sandbox.spec import EnteredRoot

#: top-level host entries that hold the compilers' run time (all under /usr on Debian 12)
_RUNTIME = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")


def host_runtime(root: Path, taken: Collection[str] = ()) -> list[tuple[Path, str]]:
    """Read-only binds of the host's ``/usr`` (and of top-level run-time directories that
    are not symlinks into it); the symlinks (``/lib64 -> usr/lib64``) are recreated in
    ``root``. Names in ``taken`` (the stage's own top-level entries) are left alone."""
    binds: list[tuple[Path, str]] = []
    if "usr" not in taken:
        binds.append((Path("/usr"), "/usr"))
    for name in _RUNTIME:
        host = Path("/") / name
        if name in taken or not os.path.lexists(host):
            continue
        if host.is_symlink():
            os.symlink(os.readlink(host), root / name)
        elif host.is_dir():
            binds.append((host, f"/{name}"))
    return binds


def bind_source(stage: StageTree, path: Path) -> Path:
    """``path`` (inside ``stage.rootfs``, as this process reads it) as a sandbox started
    in :func:`entered_root`'s namespace binds it."""
    if stage.entered is None:
        return path
    return stage.entered.path / path.relative_to(stage.rootfs)


def entered_root(stage: StageTree, root: Path) -> EnteredRoot | None:
    """How a sandbox whose root is the new directory ``root`` starts so that it can bind
    ``stage``'s files: in the namespace the stage is mounted in (``root``, a plain
    directory, has the same path there), or as usual (None)."""
    return None if stage.entered is None else EnteredRoot(stage.entered.enter, root)


def stage_binds(root: Path, stage: StageTree, skip: Collection[str] = ()
                ) -> tuple[list[tuple[Path, str]], set[str]]:
    """The stage's top-level directories, read-only at their own paths; its top-level
    symlinks are recreated in ``root`` (so they resolve inside the sandbox, never on the
    host). Returns the binds and the names taken."""
    binds: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for entry in sorted(stage.rootfs.iterdir()):
        if entry.name in skip:
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), root / entry.name)
            taken.add(entry.name)
        elif entry.is_dir():
            (root / entry.name).mkdir(exist_ok=True)
            binds.append((bind_source(stage, entry), f"/{entry.name}"))
            taken.add(entry.name)
    return binds, taken
