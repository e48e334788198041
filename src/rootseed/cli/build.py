"""``rootseed build`` and ``rootseed digests``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rootseed.cli.common import (
    build_arg_values,
    common_options,
    load_tree,
    make_fetcher,
    require_sandbox,
)
from rootseed.cli.remote_options import remote_options, remote_target
from rootseed.cli.step_limits import step_limit_options
from rootseed.cli.step_timeout import step_timeout_option
from rootseed.console import emit_json, err, out
from rootseed.engine.digests import (
    RecordedDigestsDiffer,
    check_digests,
    read_digests,
    write_digests,
)
from rootseed.engine.engine import SNAPSHOT_MODES, Builder, BuildOptions, BuildResult, NoCacheFrom
from rootseed.engine.executors import RemoteTarget
from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT
from rootseed.settings import Settings
from rootseed.tree import Tree

if TYPE_CHECKING:
    from rootseed.engine.whole import PackageOutcome, WholeReport


def _event_line(event: dict[str, Any]) -> None:
    """``--json``: one JSON line per step event on stderr (stdout keeps the result)."""
    sys.stderr.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stderr.flush()


def _run(settings: Settings, tree: Tree, names: list[str], target: str | None,
         build_args: dict[str, str], no_cache: bool, no_cache_from: str | None = None,
         snapshots: str = "auto",
         step_timeout: float | None = DEFAULT_STEP_TIMEOUT,
         remote: RemoteTarget | None = None) -> list[BuildResult]:
    for name in names:
        tree.get(name)  # a mistyped name is said first
    require_sandbox()
    options = BuildOptions(target=target, build_args=build_args, no_cache=no_cache,
                           jobs=settings.jobs, debug=settings.debug, progress=not settings.json,
                           no_cache_from=None if no_cache_from is None
                           else NoCacheFrom.parse(no_cache_from),
                           snapshots=snapshots,
                           events=_event_line if settings.json else None,
                           step_timeout=step_timeout, remote=remote)
    with Builder(tree, cache_dir=settings.cache_dir, out=settings.out,
                 fetcher=make_fetcher(settings, tree)) as builder:
        return builder.build(names, options)


def _digests_dir(tree: Tree, given: Path | None) -> Path:
    return given.resolve() if given is not None else tree.root.parent / "digests"


def _result_json(r: BuildResult) -> dict[str, object]:
    return {"package": r.package, "image": str(r.image), "manifest_digest": r.manifest_digest,
            "cached": r.cached, "stages_built": list(r.stages_built),
            "stages_cached": list(r.stages_cached),
            **({"shared": dict(r.shared)} if r.shared is not None else {})}


def _image_digests(results: list[BuildResult]) -> dict[str, str]:
    """Image name → manifest digest of every image built."""
    return {name: digest for r in results for name, (_, digest) in r.images().items()}


def _image_stages(tree: Tree, results: list[BuildResult]) -> dict[str, str]:
    """Image name → the stage (digests/<stage>.txt) of the package that built it."""
    return {name: tree.get(r.package).stage for r in results for name in r.images()}


@click.command("build")
@click.argument("packages", nargs=-1)
@click.option("--all", "all_", is_flag=True,
              help="Build every package of the tree, going on past failures; ends with a "
                   "table of what was built, cached, failed, blocked, or missing sources.")
@click.option("--stage", "stage", default=None, metavar="STAGE",
              help="Like --all, for the packages of one stage (and what they need).")
@click.option("--target", default=None, help="Stage to stop at (default: the last stage).")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
              help="Override a build argument (repeatable).")
@click.option("--no-cache", is_flag=True, help="Rebuild every stage.")
@click.option("--no-cache-from", "no_cache_from", metavar="[STAGE:]N", default=None,
              help="Run step N (of STAGE, default the target stage) and every later step "
                   "again; earlier steps may be cache hits.")
@click.option("--snapshots", type=click.Choice(SNAPSHOT_MODES), default="auto",
              show_default=True,
              help="Copy-on-write snapshots (overlay), full copies, or overlay where the "
                   "kernel allows it.")
@click.option("--check", is_flag=True,
              help="Fail when a built digest differs from the one in digests/<stage>.txt.")
@click.option("--digests-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where digests/<stage>.txt live (default: beside the tree).")
@step_timeout_option
@step_limit_options
@remote_options
@common_options
def build_cmd(packages: tuple[str, ...], all_: bool, stage: str | None, target: str | None,
              build_args: tuple[str, ...], no_cache: bool, no_cache_from: str | None,
              snapshots: str, check: bool, digests_dir: Path | None,
              step_timeout: float | None, remote: str | None, instance: str,
              remote_fresh: bool, settings: Settings) -> int:
    """Build PACKAGES (and what they need) hermetically into OCI image layouts in --out.

    Every RUN/COPY/ADD/WORKDIR is a cached action: a failed build resumes at the step
    that failed. With --json, each step's events (start, end, cached, failed, with
    seconds) are JSON lines on stderr."""
    args = build_arg_values(build_args)
    if all_ or stage is not None:
        if packages or target is not None or (all_ and stage is not None):
            raise click.UsageError("--all and --stage take no PACKAGES, no --target and not "
                                   "each other")
        return _whole(settings, args, stage, no_cache, check, digests_dir, step_timeout,
                      remote_target(remote, instance, remote_fresh))
    if not packages:
        raise click.UsageError("name the PACKAGES to build, or use --all / --stage STAGE")
    # --build-arg reaches the dependency scan too; only what PACKAGES need is planned
    tree = load_tree(settings, args, only=packages)
    results = _run(settings, tree, list(packages), target, args, no_cache, no_cache_from,
                   snapshots, step_timeout, remote_target(remote, instance, remote_fresh))
    problems: list[str] = []
    built = _image_digests(results)
    recorded: dict[str, str] = {}
    if check:
        recorded = read_digests(_digests_dir(tree, digests_dir))
        problems = check_digests(built.items(), recorded)
    if settings.json:
        emit_json({"results": [_result_json(r) for r in results], "check": problems})
    else:
        for r in results:
            state = "cached" if r.cached else "built"
            click.echo(f"{r.manifest_digest} {r.package} ({state})")
    if problems:
        raise RootseedError("digest check failed:\n  " + "\n  ".join(problems),
                            hint=check_hint(built, recorded, _digests_dir(tree, digests_dir)),
                            kind=ErrorKind.DIGEST_MISMATCH)
    return 0


def check_hint(built: dict[str, str], recorded: dict[str, str], directory: Path) -> str:
    """What to do after ``--check`` failed. A recorded digest that differs is a reference
    (perhaps published and signed by someone else), never something to overwrite."""
    differ = sorted(n for n, d in built.items()
                    if recorded.get(n) not in (None, d.removeprefix("sha256:")))
    if not differ:
        return (f"no digest is recorded for these images in {directory}; "
                "`rootseed digests PACKAGE` records this build's")
    name = differ[0]
    return (f"this build does not reproduce the digest recorded in {directory}. If that value "
            "was published by someone else (StageX signs its digests), it is the reference "
            f"being checked: keep it. `rootseed challenge {name}` rebuilds independently and "
            "compares (is this build reproducible?); to see which files differ from the "
            "published image, copy it into an OCI layout (e.g. skopeo copy "
            f"docker://<registry>/{name}@sha256:{recorded[name]} oci:DIR) and compare its "
            f"files with {name}'s in --out (diffoscope). Only when {directory} is your own "
            "record: `rootseed digests --replace`")


def _whole(settings: Settings, args: dict[str, str], stage: str | None, no_cache: bool,
           check: bool, digests_dir: Path | None, step_timeout: float | None,
           remote: RemoteTarget | None = None) -> int:
    """``build --all`` / ``--stage``: every package, a table at the end; exit 1 unless
    everything was built (or cached) and, with --check, matches digests/."""
    from rootseed.engine.whole import build_whole, select  # not at every start-up

    tree = load_tree(settings, args)
    names = select(tree, stage)
    require_sandbox()
    options = BuildOptions(build_args=args, no_cache=no_cache, jobs=settings.jobs,
                           debug=settings.debug, progress=False, step_timeout=step_timeout,
                           events=_event_line if settings.json else None, remote=remote)

    def progress(index: int, total: int, outcome: PackageOutcome) -> None:
        if not settings.json:
            err.print(f"[{index}/{total}] {outcome.name}: {outcome.outcome.value}",
                      highlight=False, markup=False)

    with Builder(tree, cache_dir=settings.cache_dir, out=settings.out,
                 fetcher=make_fetcher(settings, tree)) as builder:
        report = build_whole(tree, builder, names, options, progress)
    problems: list[str] = []
    if check:
        built = {o.name: o.manifest_digest for o in report.outcomes if o.manifest_digest}
        problems = check_digests(built.items(), read_digests(_digests_dir(tree, digests_dir)))
    if settings.json:
        emit_json({"results": [o.to_json() for o in report.outcomes],
                   "summary": report.summary(), "check": problems})
    else:
        _whole_table(report, tree.root.parent)
        for problem in problems:
            err.print(f"digest check: {problem}", highlight=False, markup=False)
    return 0 if report.ok and not problems else 1


def _whole_table(report: WholeReport, base: Path) -> None:
    from rich.table import Table  # only --all/--stage print a table: not at every start-up

    table = Table(title="build " + ", ".join(f"{n} {k}" for k, n in report.summary().items()
                                             if n))
    for col in ("package", "result", "detail"):
        table.add_column(col, overflow="fold")
    for o in report.outcomes:
        if o.outcome.ok:
            detail = o.manifest_digest or ""
        else:
            detail = o.error or ""
            if o.log is not None:
                detail += f"\nlog: {o.log}"
        table.add_row(o.name, o.outcome.value, detail)
    out.print(table)


@click.command("digests")
@click.argument("packages", nargs=-1)
@click.option("--digests-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where to write digests/<stage>.txt (default: beside the tree).")
@click.option("--replace", is_flag=True,
              help="Replace recorded digests that differ from this build's (without it, a "
                   "differing recorded value is shown and nothing is written).")
@common_options
def digests_cmd(packages: tuple[str, ...], digests_dir: Path | None, replace: bool,
                settings: Settings) -> None:
    """Build PACKAGES (default: all; cached builds are instant) and record their digests.

    New images are added; a recorded digest that differs is shown (recorded → built) and
    left alone unless --replace is given: a recorded value may be one someone else
    published, to be checked, not overwritten."""
    tree = load_tree(settings)
    names = list(packages) or tree.buildable()
    results = _run(settings, tree, names, None, {}, False)
    directory = _digests_dir(tree, digests_dir)
    digests = _image_digests(results)
    try:
        changes, written = write_digests(directory, digests, _image_stages(tree, results),
                                         replace=replace)
    except RecordedDigestsDiffer as e:
        if settings.json:
            emit_json({"files": [], "digests": digests, "written": False,
                       "changes": [c.to_json() for c in e.changes]})
        raise
    if settings.json:
        emit_json({"files": [str(p) for p in written], "digests": digests, "written": True,
                   "changes": [c.to_json() for c in changes]})
        return
    for c in changes:
        if c.status == "differs":
            click.echo(f"{c.image}: sha256:{c.old} → sha256:{c.new} (replaced)")
        elif c.status == "added":
            click.echo(f"{c.image}: sha256:{c.new} (added)")
        else:
            click.echo(f"{c.image}: sha256:{c.new} (unchanged)")
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo(f"{directory}: already records these digests; nothing written")


COMMANDS = [build_cmd, digests_cmd]
