"""Run-wide settings shared by every command (frozen: nothing changes them mid-run)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs


def default_tree() -> Path:
    """The tree shipped inside the rootseed package (``rootseed/data/packages``)."""
    from rootseed import shipped

    return shipped.packages()


def default_cache_dir() -> Path:
    """``$ROOTSEED_CACHE_DIR`` or the XDG cache dir (``~/.cache/rootseed``)."""
    env = os.environ.get("ROOTSEED_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("rootseed"))


def default_jobs() -> int:
    """Parallel jobs without ``--jobs``: one per CPU."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    tree: Path = field(default_factory=default_tree)
    mirrors: tuple[Path, ...] = ()
    cache_dir: Path = field(default_factory=default_cache_dir)
    out: Path = Path("out")
    offline: bool = False
    jobs: int = field(default_factory=default_jobs)
    json: bool = False
    debug: bool = False
