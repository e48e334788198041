"""Options every command accepts, gathered into one :class:`Settings`."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from rootseed.errors import ErrorKind, RootseedError
from rootseed.fetch import Fetcher
from rootseed.settings import Settings, default_cache_dir, default_jobs, default_tree
from rootseed.tree import Tree

F = TypeVar("F", bound=Callable[..., Any])

#: Every option a command may share, by name: (parameter declarations, click settings).
#: A command shows only those that mean something for it (``options(...)``); it still
#: accepts the others, hidden and without effect, so one set of options can be passed to
#: every command (scripts, CI).
_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "tree": (("--tree", "tree"), dict(
        type=click.Path(path_type=Path, file_okay=False), default=None,
        help="Package tree root (default: the tree shipped with rootseed).")),
    "mirror": (("--mirror", "mirrors"), dict(
        type=click.Path(path_type=Path, file_okay=False, exists=True), multiple=True,
        help="Local mirror directory, searched by file name first (repeatable; must "
             "exist).")),
    "cache-dir": (("--cache-dir",), dict(
        type=click.Path(path_type=Path, file_okay=False), default=None,
        help="Cache directory (default: $ROOTSEED_CACHE_DIR or ~/.cache/rootseed).")),
    "out": (("--out",), dict(
        type=click.Path(path_type=Path, file_okay=False), default=Path("out"),
        show_default=True, help="Output directory for OCI image layouts.")),
    "offline": (("--offline",), dict(is_flag=True,
                                     help="Use local mirrors and the cache only.")),
    "jobs": (("--jobs", "-j"), dict(type=click.IntRange(min=1), default=None,
                                    help="Parallel jobs (default: number of CPUs).")),
    "json": (("--json", "json_out"), dict(is_flag=True,
                                          help="Machine-readable output on stdout.")),
    "debug": (("--debug",), dict(is_flag=True, help="Show exact commands and tracebacks.")),
}
#: What a command that builds needs (build, digests, bootstrap, challenge, crosscheck).
BUILDING = ("tree", "mirror", "cache-dir", "out", "offline", "jobs", "json", "debug")


def options(*names: str, cache_must_exist: bool = False) -> Callable[[F], F]:
    """Add the named shared options (``--json`` and ``--debug`` always); the command
    receives them as one ``settings`` argument. ``cache_must_exist``: the command only
    reads the cache, so a --cache-dir that does not exist is a mistake (said up front)."""
    shown = {*names, "json", "debug"}
    unknown = set(names) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"unknown shared options {sorted(unknown)}")

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            shared = {k: kwargs.pop(k) for k in ("tree", "mirrors", "cache_dir", "out",
                                                 "offline", "jobs", "json_out", "debug")
                      if k in kwargs}
            settings = _settings(**shared, cache_must_exist=cache_must_exist)
            ctx = click.get_current_context()
            ctx.meta["rootseed.debug"] = settings.debug
            return func(*args, settings=settings, **kwargs)

        for name in reversed(_OPTIONS):
            decls, settings = _OPTIONS[name]
            wrapper = click.option(*decls, **settings, hidden=name not in shown)(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def common_options(func: F) -> F:
    """Every shared option (the commands that build)."""
    return options(*BUILDING)(func)


def _settings(*, tree: Path | None = None, mirrors: tuple[Path, ...] = (),
              cache_dir: Path | None = None, out: Path = Path("out"), offline: bool = False,
              jobs: int | None = None, json_out: bool = False, debug: bool = False,
              cache_must_exist: bool = False) -> Settings:
    if out.is_symlink():
        # rootseed makes out/ private (0700) and replaces entries in it: a link
        # planted in a checkout must not turn a host directory into that
        raise RootseedError(f"output directory {out} is a symbolic link (to "
                            f"{os.readlink(out)})",
                            hint=f"pass the directory itself: --out {out.resolve()}",
                            kind=ErrorKind.REFUSED)
    if cache_must_exist and cache_dir is not None and not cache_dir.is_dir():
        raise RootseedError(f"cache directory {cache_dir} does not exist",
                            hint="pass the --cache-dir your builds used (without it: "
                                 f"{default_cache_dir()})", kind=ErrorKind.USAGE)
    return Settings(
        tree=(tree or default_tree()).resolve(),
        mirrors=tuple(m.resolve() for m in mirrors),
        cache_dir=(cache_dir or default_cache_dir()).resolve(),
        out=out.resolve(),
        offline=offline,
        jobs=jobs or default_jobs(),
        json=json_out,
        debug=debug,
    )


def require_sandbox() -> None:
    """Bubblewrap must be there before anything is fetched or built (one message up
    front, not at the first RUN step minutes later)."""
    from rootseed.sandbox.bwrap import find_bwrap

    find_bwrap()


def load_tree(settings: Settings, build_args: Mapping[str, str] | None = None, *,
              only: Iterable[str] | None = None) -> Tree:
    """The tree of ``--tree``; ``only``: the packages the command builds (the rest of the
    tree is not planned, see :meth:`Tree.load`)."""
    return Tree.load(settings.tree, build_args=build_args, only=only)


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
