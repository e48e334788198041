"""``rootseed challenge PKG``: rebuild independently and compare with the recorded digest."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.table import Table

from rootseed import safefs
from rootseed.challenge import challenge
from rootseed.challenge.against import compare_against
from rootseed.cli.common import common_options, load_tree, require_sandbox
from rootseed.cli.remote_options import remote_options, remote_target
from rootseed.cli.step_limits import step_limit_options
from rootseed.console import Working, canonical_json, emit_json, err, out
from rootseed.engine.steplog import last_line
from rootseed.errors import RootseedError
from rootseed.provenance.companions import CHALLENGE_FILE
from rootseed.settings import Settings


def _save(out_dir: Path, package: str, data: bytes) -> None:
    """Write ``challenge.json`` beside the recorded image in ``out/<package>/``, if it is
    there: through directory descriptors and a fresh temp name (never through a link
    planted in out/), and not at all when ``out/<package>`` is not a layout of its own."""
    layout = out_dir / package
    try:
        os.close(safefs.open_regular(out_dir, layout / "index.json")[0])
    except FileNotFoundError:
        return  # no recorded image there: nothing to annotate
    except (OSError, safefs.UnsafePath) as e:
        err.print(f"warning: challenge.json not written: {e}", markup=False)
        return
    try:
        safefs.write_atomic(out_dir, layout / CHALLENGE_FILE, data, create=False)
    except (OSError, safefs.UnsafePath) as e:
        err.print(f"warning: challenge.json not written: {e}", markup=False)


@click.command("challenge")
@click.argument("package")
@click.option("--digests-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where digests/<stage>.txt live (default: beside the tree).")
@click.option("--diff", "diff_tool", type=click.Choice(["diffoscope"]), default=None,
              help="Also run diffoscope on the two filesystems when they differ.")
@click.option("--keep", is_flag=True, help="Keep the rebuild's work directory.")
@step_limit_options
@remote_options
@click.option("--against", type=click.Path(path_type=Path, exists=True), default=None,
              help="Compare the local build (out/PACKAGE) with this image instead: an OCI "
                   "layout or an oci-archive tar someone else built.")
@common_options
def challenge_cmd(package: str, digests_dir: Path | None, diff_tool: str | None, keep: bool,
                  against: Path | None, remote: str | None, instance: str,
                  remote_fresh: bool, settings: Settings) -> None:
    """Rebuild PACKAGE from verified sources under different conditions and compare.

    With --against IMAGE: compare the local build with IMAGE (digest, config, layer by
    layer, file by file; the first difference is named).

    Exit status: 0 identical, 2 differs, 1 could not decide.
    """
    del remote_fresh  # a challenge's rebuild is executed again on a worker anyway
    if against is not None:
        _against(package, against, settings)
    tree = load_tree(settings)
    tree.get(package)  # a mistyped name is said before anything else
    require_sandbox()
    following: list[Path] = []

    def latest() -> str | None:  # the rebuild's last output line (escaped, bounded)
        return last_line(following[-1], 160) if following else None

    with Working(f"challenge {package}: starting", follow=latest) as status:
        def progress(text: str, log: Path | None) -> None:
            if log is not None:
                following.append(log)
            status.update(f"challenge {package}: {text}")

        result = challenge(settings, tree, package, digests_dir=digests_dir,
                           diff_tool=diff_tool, keep=keep, progress=progress,
                           # an independent rebuild: executed again, whatever the flag says
                           remote=remote_target(remote, instance, remote is not None))
    _save(settings.out, package, (canonical_json(result.as_dict()) + "\n").encode())
    if settings.json:
        emit_json(result.as_dict())
        sys.exit(result.exit_code)
    colour = {"identical": "green", "differs": "red"}.get(result.verdict, "yellow")
    out.print(f"[bold]{package}[/]")
    out.print(f"  recorded: {result.recorded or '-'}  ({result.recorded_from})")
    out.print(f"  rebuilt:  {result.rebuilt or '-'}")
    out.print(f"  under:    {', '.join(result.conditions)}")
    out.print(f"  verdict:  [bold {colour}]{result.verdict}[/]")
    if result.reason:
        out.print(f"  reason:   {result.reason}", markup=False)
    if result.differences:
        table = Table(title="differing files")
        for col in ("path", "what", "recorded sha256", "size", "rebuilt sha256", "size"):
            table.add_column(col)
        for d in result.differences:
            a, b = d.recorded, d.rebuilt
            table.add_row(d.path, d.what, (a.sha256 or a.kind) if a else "-",
                          str(a.size) if a else "-", (b.sha256 or b.kind) if b else "-",
                          str(b.size) if b else "-")
        out.print(table)
    if result.diffoscope:
        out.print(result.diffoscope, markup=False)
    if result.rebuild_log:
        out.print(f"  rebuild log: {result.rebuild_log}")
    sys.exit(result.exit_code)


def _against(package: str, against: Path, settings: Settings) -> None:
    ours = settings.out / package
    if not (ours / "index.json").is_file():
        raise RootseedError(f"{package}: no local build at {ours}",
                            hint=f"run `rootseed build {package}` first (same --out)")
    result = compare_against(ours, against)
    if settings.json:
        emit_json({"package": package, **result.as_dict()})
        sys.exit(result.exit_code)
    colour = "green" if result.verdict == "identical" else "red"
    out.print(f"[bold]{package}[/]")
    out.print(f"  ours:    {result.ours_digest}  ({result.ours})", markup=False)
    out.print(f"  theirs:  {result.theirs_digest}  ({result.theirs})", markup=False)
    out.print(f"  verdict: [bold {colour}]{result.verdict}[/]")
    first = result.first
    if first is not None:
        where = first["where"] + (f": {first['path']}" if first.get("path") else "")
        out.print(f"  first difference: {where}: {first['what']}", markup=False)
        if first.get("fields"):
            out.print(f"  fields: {', '.join(first['fields'])}", markup=False)
    sys.exit(result.exit_code)


COMMANDS = [challenge_cmd]
