"""``rootseed cache du`` and ``rootseed cache prune``."""

from __future__ import annotations

import click

from rootseed.cli.common import options
from rootseed.console import emit_json
from rootseed.engine.maintenance import prune, usage
from rootseed.settings import Settings


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


@click.group("cache")
def cache_group() -> None:
    """Inspect and clean the build cache (--cache-dir)."""


@cache_group.command("du")
@options("cache-dir", cache_must_exist=True)
def du_cmd(settings: Settings) -> None:
    """How much each part of the cache holds."""
    found = usage(settings.cache_dir)
    if settings.json:
        emit_json({"cache": str(settings.cache_dir), "total_bytes": found.total,
                   "areas": {name: {"entries": a.entries, "bytes": a.bytes}
                             for name, a in found.areas.items()}})
        return
    click.echo(f"cache {settings.cache_dir}")
    width = max(len(name) for name in (*found.areas, "total"))
    for name, a in found.areas.items():
        click.echo(f"  {name:<{width}} {a.entries:>6} entries {_human(a.bytes):>12}")
    click.echo(f"  {'total':<{width}} {'':>6}         {_human(found.total):>12}")


@cache_group.command("prune")
@click.option("--keep-days", type=click.FloatRange(min=0), default=None, metavar="N",
              help="Keep entries used within the last N days, remove the others.")
@click.option("--all", "all_", is_flag=True, help="Remove every entry (the same as "
              "--keep-days 0).")
@options("cache-dir", cache_must_exist=True)
def prune_cmd(keep_days: float | None, all_: bool, settings: Settings) -> None:
    """Remove cache entries not used within --keep-days N, or --all of them (whole
    entries, atomically). One of the two must be given: nothing is removed by default."""
    if (keep_days is None) == (not all_):
        raise click.UsageError("say what to remove: --keep-days N (entries not used within N "
                               "days) or --all (everything)" if keep_days is None else
                               "give --keep-days N or --all, not both")
    result = prune(settings.cache_dir, 0.0 if all_ else float(keep_days or 0))
    if settings.json:
        emit_json({"removed": result.removed, "bytes": result.bytes})
        return
    removed = ", ".join(f"{n} {area}" for area, n in sorted(result.removed.items())) or "nothing"
    click.echo(f"removed {removed} ({_human(result.bytes)})")


COMMANDS = [cache_group]
