"""Paths inside a root filesystem, seen from the host without escaping it.

Symlinks are followed as the sandboxed process would see them (an absolute target is
relative to the root), so a hostile ``/bin/sh -> /etc/shadow`` never makes rootseed look at
the host's files.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError

_MAX_SYMLINKS = 40


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(root: Path, path: str, *, follow_last: bool = True) -> Path:
    """The host path for ``path`` inside ``root``, resolving symlinks as the sandboxed
    process would (never leaving ``root``); missing components are kept as written."""
    todo = deque(split(path))
    done: list[str] = []
    links = 0
    while todo:
        part = todo.popleft()
        if part == "..":
            if done:
                done.pop()
            continue
        host = root.joinpath(*done, part)
        if (todo or follow_last) and host.is_symlink():
            links += 1
            if links > _MAX_SYMLINKS:
                raise RootseedError(f"too many levels of symlinks resolving {path} in the image")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            todo.extendleft(reversed(split(target)))
            continue
        done.append(part)
    return root.joinpath(*done)


def resolve_in_root(root: Path, path: str) -> Path | None:
    """The host path ``path`` (inside ``root``) finally names, or None if it does not exist."""
    try:
        host = resolve(root, path)
    except RootseedError:  # a symlink loop names nothing
        return None
    return host if os.path.lexists(host) else None


def find_command(root: Path, argv0: str, path_var: str, cwd: str = "/") -> Path | None:
    """Where ``argv0`` is inside ``root``, searched as execvp would (``path_var`` = $PATH).

    A relative name (``./x/tool``, or an empty/relative PATH entry) is relative to ``cwd``.
    """
    candidates = [argv0] if "/" in argv0 else [
        f"{d or '.'}/{argv0}" for d in path_var.split(":")]
    for cand in candidates:
        host = resolve_in_root(root, cand if cand.startswith("/") else f"{cwd.rstrip('/')}/{cand}")
        if host is not None and host.is_file():
            return host
    return None


@dataclass(frozen=True)
class Stub:
    """A mount point bwrap will create in the root filesystem (a directory or empty file)."""

    path: Path
    is_dir: bool


def plan_stubs(root: Path, mounts: Iterable[tuple[str, bool]],
               covered: Iterable[str] = ()) -> list[Stub]:
    """The mount points bwrap will have to create inside ``root``, in creation order.

    ``mounts`` are (destination inside, destination is a directory). Destinations below a
    path in ``covered`` (e.g. ``/tmp``, a tmpfs) are created in that mount, not in ``root``.
    A symlink on the way is refused: bwrap would resolve it outside the root.
    """
    covered = [c.rstrip("/") + "/" for c in covered]
    stubs: list[Stub] = []
    planned: set[Path] = set()
    for dest, is_dir in mounts:
        if any(dest.startswith(c) for c in covered):
            continue
        parts = split(dest)
        if ".." in parts:
            raise RootseedError(f"sandbox mount point {dest!r} contains '..'")
        for i, part in enumerate(parts):
            host = root.joinpath(*parts[:i], part)
            last = i == len(parts) - 1
            if host in planned:
                continue
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                planned.add(host)
                stubs.append(Stub(host, is_dir=is_dir or not last))
                continue
            if stat.S_ISLNK(st.st_mode):
                raise RootseedError(
                    f"cannot mount {dest} in the sandbox: /{'/'.join(parts[:i + 1])} is a "
                    f"symlink in the root filesystem {root}",
                    hint="replace the symlink by a directory in the image",
                    kind=ErrorKind.REFUSED)
    return stubs


def remove_stubs(stubs: Iterable[Stub]) -> None:
    """Remove the stubs again (deepest first), but only those still empty."""
    for stub in reversed(list(stubs)):
        try:
            st = os.lstat(stub.path)
        except FileNotFoundError:
            continue
        try:
            if stub.is_dir and stat.S_ISDIR(st.st_mode):
                os.rmdir(stub.path)
            elif not stub.is_dir and stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(stub.path)
        except OSError:
            pass  # not empty any more: it is content now, leave it
