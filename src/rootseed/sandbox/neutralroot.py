"""Give the sandbox a root whose ``/proc/self/mountinfo`` line names no host path.

A bind mount's line in ``mountinfo`` shows the mounted directory's path inside its file
system (``/home/alice/.cache/rootseed/work/…/rootfs``), whatever path it was bound through:
the kernel prints the dentry path from the file system's root. So instead of binding the
root filesystem directly, the step's root is an overlay mount made in a private user and
mount namespace, with the root filesystem as its *upper* directory and an empty lower
directory, all named by paths relative to a scratch directory: ``mountinfo`` then shows
``overlay / overlay rw,lowerdir=./lower,upperdir=../rootfs,workdir=./work``. With nothing
in the lower directory, every read and write goes straight to the root filesystem, so the
result is the same directory tree as with a bind.

Flow: :func:`wrap` turns the bwrap command line into
``unshare --user --map-root-user --mount -- python -m rootseed.sandbox.neutralroot SCRATCH
ROOTFS -- bwrap … --bind ./mnt / …``; this module's ``main`` (inside those namespaces)
mounts the overlay on ``SCRATCH/mnt`` and ``exec``-s bwrap, so the process id stays the
one rootseed started (``--die-with-parent`` and the step timeout still apply). Where the
overlay cannot be mounted (no ``unshare``; a file system that cannot be an overlay's upper
directory, such as an overlay itself), the step runs with the plain bind, as before, and
the log says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

#: What the root bind's source is in the bwrap command line; replaced by the real root
#: filesystem when the overlay cannot be mounted.
MOUNT_POINT = "./mnt"


@dataclass(frozen=True)
class Scratch:
    """The overlay's lower, work and mount directories, beside the root filesystem."""

    path: Path

    @classmethod
    def create(cls, rootfs: Path) -> Scratch:
        path = rootfs.parent / f".sandbox-{secrets.token_hex(6)}"
        path.mkdir(mode=0o700)
        for name in ("lower", "work", "mnt"):
            (path / name).mkdir(mode=0o700)
        return cls(path)

    def remove(self) -> None:
        # The kernel leaves work/work with mode 000 behind; make everything removable.
        for dirpath, dirnames, _ in os.walk(self.path):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(self.path, ignore_errors=True)


def wrap(argv: list[str], scratch: Scratch, rootfs: Path) -> list[str] | None:
    """The command line that runs ``argv`` (a bwrap command binding MOUNT_POINT at /)
    inside the overlay namespaces, or None if ``unshare`` is not installed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    if any(c in rootfs.name for c in ",:\\=") or rootfs.parent != scratch.path.parent:
        return None  # not expressible as an overlay option
    # Run as a script (stdlib only), not as a module of the package: no package import cost.
    return [unshare, "--user", "--map-root-user", "--mount", "--", sys.executable, "-I",
            "-S", __file__, str(scratch.path), str(rootfs), "--", *argv]


def _mount_overlay(upper_rel: str) -> str | None:
    """Mount the overlay on ./mnt (cwd: the scratch dir); None or the reason it failed."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    options = f"lowerdir=./lower,upperdir={upper_rel},workdir=./work".encode()
    if libc.mount(b"overlay", MOUNT_POINT.encode(), b"overlay", 0, options) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def main(args: list[str]) -> int:
    scratch, rootfs, sep, *argv = args
    if sep != "--" or not argv:
        print("usage: neutralroot SCRATCH ROOTFS -- BWRAP-ARGV...", file=sys.stderr)
        return 2
    os.chdir(scratch)
    upper = os.path.relpath(rootfs, scratch)
    problem = _mount_overlay(upper)
    if problem is not None:
        print(f"rootseed: no overlay for a neutral sandbox root here ({problem}); binding "
              "the root filesystem directly", file=sys.stderr)
        argv = [rootfs if a == MOUNT_POINT else a for a in argv]
    os.execv(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
