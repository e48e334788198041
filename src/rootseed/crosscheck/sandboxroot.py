"""A fresh sandbox root that sees a cached stage's files read-only.

Instead of copying a stage's root filesystem to run something on it, a new, empty root
gets the stage's top-level directories bound read-only at their own paths (its top-level
symlinks are recreated inside the root, so they resolve in the sandbox, never on the
host); what the command writes goes to a directory of the new root.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

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


def stage_binds(root: Path, stage_rootfs: Path, skip: Collection[str] = ()
                ) -> tuple[list[tuple[Path, str]], set[str]]:
    """The stage's top-level directories, read-only at their own paths; its top-level
    symlinks are recreated in ``root`` (so they resolve inside the sandbox, never on the
    host). Returns the binds and the names taken."""
    binds: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for entry in sorted(stage_rootfs.iterdir()):
        if entry.name in skip:
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), root / entry.name)
            taken.add(entry.name)
        elif entry.is_dir():
            (root / entry.name).mkdir(exist_ok=True)
            binds.append((entry, f"/{entry.name}"))
            taken.add(entry.name)
    return binds, taken
