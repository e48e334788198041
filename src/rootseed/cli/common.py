"""Options every command accepts, gathered into one :class:`Settings`."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from rootseed.errors import RootseedError
from rootseed.fetch import Fetcher
from rootseed.settings import Settings, default_cache_dir, default_tree
from rootseed.tree import Tree

F = TypeVar("F", bound=Callable[..., Any])

_COMMON: list[Callable[[F], F]] = [
    click.option("--tree", "tree", type=click.Path(path_type=Path, file_okay=False),
                 default=None, help="Package tree root (default: the tree shipped with rootseed)."),
    click.option("--mirror", "mirrors", type=click.Path(path_type=Path, file_okay=False),
                 multiple=True, help="Local mirror directory, searched by file name first "
                 "(repeatable)."),
    click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                 help="Cache directory (default: $ROOTSEED_CACHE_DIR or ~/.cache/rootseed)."),
    click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("out"),
                 show_default=True, help="Output directory for OCI image layouts."),
    click.option("--offline", is_flag=True, help="Use local mirrors and the cache only."),
    click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                 help="Parallel jobs (default: number of CPUs)."),
    click.option("--json", "json_out", is_flag=True, help="Machine-readable output on stdout."),
    click.option("--debug", is_flag=True, help="Show exact commands and tracebacks."),
]


def common_options(func: F) -> F:
    """Add the common options; the command receives them as one ``settings`` argument."""

    @functools.wraps(func)
    def wrapper(*args: Any, tree: Path | None, mirrors: tuple[Path, ...],
                cache_dir: Path | None, out: Path, offline: bool, jobs: int | None,
                json_out: bool, debug: bool, **kwargs: Any) -> Any:
        if out.is_symlink():
            # rootseed makes out/ private (0700) and replaces entries in it: a link
            # planted in a checkout must not turn a host directory into that
            raise RootseedError(f"output directory {out} is a symbolic link (to "
                                f"{os.readlink(out)})",
                                hint=f"pass the directory itself: --out {out.resolve()}")
        defaults = Settings()
        settings = Settings(
            tree=(tree or default_tree()).resolve(),
            mirrors=tuple(m.resolve() for m in mirrors),
            cache_dir=(cache_dir or default_cache_dir()).resolve(),
            out=out.resolve(),
            offline=offline,
            jobs=jobs or defaults.jobs,
            json=json_out,
            debug=debug,
        )
        ctx = click.get_current_context()
        ctx.meta["rootseed.debug"] = debug
        return func(*args, settings=settings, **kwargs)

    for option in reversed(_COMMON):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def load_tree(settings: Settings, build_args: Mapping[str, str] | None = None) -> Tree:
    return Tree.load(settings.tree, build_args=build_args)


def make_fetcher(settings: Settings, tree: Tree) -> Fetcher:
    return Fetcher(settings.cache_dir, settings.mirrors, offline=settings.offline,
                   progress=not settings.json, base_dir=tree.root)


def build_arg_values(values: tuple[str, ...]) -> dict[str, str]:
    """``--build-arg KEY=VALUE`` options (``build``, ``check``) → a mapping."""
    args: dict[str, str] = {}
    for value in values:
        key, eq, val = value.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}",
                                     param_hint="--build-arg")
        args[key] = val
    return args
