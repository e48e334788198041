"""``rootseed bootstrap``: the main job: stage0 from the 181-byte seed, proven."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from rootseed.bootstrap import BootstrapReport, bootstrap
from rootseed.cli.common import common_options, require_sandbox
from rootseed.cli.remote_options import remote_options, remote_target
from rootseed.cli.step_limits import step_limit_options
from rootseed.console import Working, emit_json, out
from rootseed.engine.engine import Builder, BuildOptions, BuildResult
from rootseed.errors import RootseedError
from rootseed.settings import Settings
from rootseed.wording import count


def render(report: BootstrapReport) -> None:
    # short titles: a panel's title is cut to the panel's width (80 columns)
    title = "rootseed bootstrap --demo" if report.demo else "rootseed bootstrap"
    seed = report.seed
    # Derived from this build: the programs its RUN steps ran and the images they made.
    lines = [("[bold]demo[/]   rootseed's own seed (shipped examples, no download)"
              if report.demo else "[bold]what[/]   stage0 from the 181-byte hex0 seed"),
             f"[bold]chain[/]  {escape(report.chain.text())}"]
    if seed:
        lines.append(f"[bold]seed[/]   {seed['file']}  sha256:{seed['sha256']}")
    lines.append(f"[bold]image[/]  {report.package}  {report.manifest_digest}"
                 + ("  (cached)" if report.cached else ""))
    out.print(Panel("\n".join(lines), title=title, expand=out.is_terminal))
    table = Table(title=f"{count(len(report.tools), 'tool')} in /bin")
    for col, justify in (("tool", "left"), ("sha256", "left"), ("bytes", "right"),
                         ("pinned", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in report.tools:
        table.add_row(t.path, t.sha256, str(t.size), "[green]✓[/]" if t.expected else "[red]✗[/]")
    out.print(table)
    out.print("[bold]verified[/]")
    for line in report.verified:
        out.print(f"  [green]✓[/] {line}")
    for check in report.checks:
        mark = "[green]✓[/]" if check.get("identical") else "[red]✗[/]"
        out.print(f"  {mark} crosscheck: {check.get('summary', check)}", markup=True)
    if report.recorded_digest is None and not report.demo:
        out.print("  [yellow]•[/] no recorded digest beside the tree (digests/) to compare with")
    out.print(f"[bold]elapsed[/] {report.seconds:.1f} s")


@click.command("bootstrap")
@click.option("--demo", is_flag=True,
              help="Build rootseed's own seed chain from the shipped examples (offline, seconds) "
                   "instead of the upstream stage0.")
@click.option("--no-cache", is_flag=True,
              help="Rebuild and re-run the crosscheck even if the cache has them.")
@step_limit_options
@remote_options
@common_options
def bootstrap_cmd(demo: bool, no_cache: bool, remote: str | None, instance: str,
                  remote_fresh: bool, settings: Settings) -> None:
    """Build stage0 from the 181-byte hex0 seed and verify every output.

    Fetches the pinned sources (or finds them with --mirror DIR), builds bootstrap-stage0
    hermetically, checks the 20 tools against their pinned sha256 and prints the chain.
    """
    from rootseed.crosscheck.ahead import Ahead, Starter
    from rootseed.crosscheck.run import DdcOptions

    target = remote_target(remote, instance, remote_fresh)
    # the checks share the build's builder, so its executor (local or remote) too
    options = BuildOptions(jobs=settings.jobs, debug=settings.debug, progress=False,
                           remote=target)
    starters: list[Starter] = []

    def events(builder: Builder, name: str) -> Callable[[dict[str, Any]], None] | None:
        # The checks start while the chain builds (crosscheck.ahead): the DDC compilers
        # in the core the chain's sequential head leaves idle, each stage's replays as
        # soon as it is built. A package with dependencies is checked after, as before,
        # and so is a --no-cache build (a stage's old cache entry stays visible until the
        # rebuilt one replaces it).
        if no_cache or builder.tree.order([name]) != [name]:
            return None
        starters.append(Starter(name, lambda: Ahead(builder, name, options=options,
                                                    ddc=DdcOptions())))
        return starters[0].on_event

    def crosscheck(builder: Builder, result: BuildResult) -> list[dict[str, Any]]:
        from rootseed.crosscheck import crosscheck as replay
        from rootseed.crosscheck.compilers import find_compilers
        from rootseed.crosscheck.memo import recall, recall_report, remember, remember_report
        from rootseed.crosscheck.run import report_bytes, save_report_bytes

        ahead = starters[0].started() if starters else None
        compilers = [f"{c.label} {c.path}" for c in find_compilers()[0]]
        if not no_cache and (lines := recall(settings.cache_dir, result.record, compilers)):
            if ahead is not None:
                ahead.close()
            kept = settings.out / result.package / "crosscheck.json"
            data = recall_report(settings.cache_dir, result.record, compilers)
            if data is not None and not kept.is_file():  # out/ written anew: put it back
                save_report_bytes(settings.out, result.package, data)
            return lines
        with Working("crosscheck: replaying the chain with the Python tools and "
                     "diverse double-compiling…") as status:
            full = ahead.finish() if ahead is not None else replay(
                builder, result.package, with_deps=True, ddc=DdcOptions(), options=options,
                progress=lambda s: status.update(f"crosscheck: {s}"))
        data = report_bytes(full)
        save_report_bytes(settings.out, result.package, data)  # for `rootseed report`
        lines = full.bootstrap_lines()
        remember(settings.cache_dir, result.record, lines, compilers)
        if full.ok:
            remember_report(settings.cache_dir, result.record, data, compilers)
        return lines

    require_sandbox()
    try:
        report = bootstrap(settings, demo=demo, no_cache=no_cache, crosscheck=crosscheck,
                           events=events, remote=target)
    finally:  # a failed build: stop the checks it started (a no-op once finished)
        for starter in starters:
            if (ahead := starter.started()) is not None:
                ahead.close()
    if settings.json:
        emit_json(report.as_dict())
    else:
        render(report)
    failed = [c for c in report.checks if not c.get("identical")]
    if failed:
        raise RootseedError(
            f"{report.package}: the crosscheck failed: "
            + "; ".join(str(c.get("summary")) for c in failed),
            hint=f"`rootseed crosscheck {report.package}` shows every artifact; a difference "
                 "means the chain's binary and the independent Python tool disagree")


COMMANDS = [bootstrap_cmd]
