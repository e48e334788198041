"""``rootseed crosscheck PKG``: the Python tools replay the binary chain and compare."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from rootseed.cli.common import common_options, load_tree, require_sandbox
from rootseed.cli.step_limits import step_limit_options
from rootseed.console import Working, emit_json, err, out
from rootseed.crosscheck import Report, Status, crosscheck_package
from rootseed.crosscheck.compilers import KNOWN
from rootseed.crosscheck.run import DdcOptions, save_report
from rootseed.settings import Settings

_STYLE = {Status.IDENTICAL: "green", Status.DIFFERENT: "bold red", Status.ERROR: "bold red",
          Status.NOT_COVERED: "yellow"}


def exit_code(report: Report) -> int:
    """0: every covered artifact identical; 2: a difference; 1: could not decide."""
    if report.count(Status.DIFFERENT):
        return 2
    return 0 if report.ok else 1


def render(report: Report) -> None:
    table = Table(title=f"crosscheck {report.package}: independent tools vs the binary chain")
    for col in ("stage", "artifact", "reproduced by", "result"):
        table.add_column(col)
    for c in report.checks:
        if c.status is Status.IDENTICAL:
            result = f"identical ({c.chain_size} bytes)"
        elif c.status is Status.DIFFERENT:
            other = "DDC" if c.tool == "DDC" else "Python"
            result = (f"differs at offset {c.offset} (chain {c.chain_size} bytes, "
                      f"{other} {c.python_size} bytes)")
        else:
            result = f"{c.status.value}: {c.detail}"
        artifact = f"{c.artifact}  (the seed)" if c.seed else c.artifact
        who = ", ".join(c.reproduced_by) or ("not covered" if c.status is Status.NOT_COVERED
                                             else c.tool)
        table.add_row(escape(c.stage), escape(artifact), escape(who),
                      f"[{_STYLE[c.status]}]{escape(result)}[/]")
    out.print(table)
    for package, info in sorted((report.ddc or {}).items()):
        for text in ddc_lines(package, info):
            out.print(escape(text))
    for line in report.bootstrap_lines():
        mark = "[green]✓[/]" if line["identical"] else "[red]✗[/]"
        out.print(f"{mark} {escape(str(line['summary']))}")
    if report.logs is not None:
        err.print(f"logs of this run: {escape(report.logs)}")


def ddc_lines(package: str, info: dict[str, Any]) -> list[str]:
    """What diverse double-compiling used for ``package``: compilers, flags, skips."""
    lines = []
    for comp in info.get("compilers", []):
        built = ", ".join(comp["built"]) or "nothing"
        lines.append(f"DDC {package}: {comp['label']} ({' '.join(comp['flags'])}) built {built}"
                     + "".join(f"; {why}" for why in comp["failed"].values()))
    for m in info.get("missing", []):
        lines.append(f"DDC {package}: {m['name']} skipped: {m['reason']}")
    if info.get("problem"):
        lines.append(f"DDC {package}: {info['problem']}")
    return lines


def parse_compilers(value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in KNOWN]
    if unknown or not names:
        raise click.BadParameter(f"{', '.join(unknown) or 'none given'}: choose from "
                                 f"{', '.join(KNOWN)}")
    return names


@click.command("crosscheck")
@click.argument("package")
@click.option("--with-deps", is_flag=True,
              help="Also replay the packages PACKAGE depends on.")
@click.option("--no-rerun", is_flag=True,
              help="Do not rerun M2-Mesoplanet steps (with --dirty-mode, in the sandbox) to "
                   "replay the blood-elf, M1 and hex2 commands they spawn.")
@click.option("--ddc", is_flag=True,
              help="Diverse double-compiling: build M2-Planet and M2-Mesoplanet from the "
                   "pinned sources with independent host compilers and redo every C "
                   "compile step of the chain with them.")
@click.option("--ddc-compilers", default=",".join(KNOWN), show_default=True,
              help="Comma-separated compilers for --ddc (missing ones are skipped and "
                   "named).")
@step_limit_options
@common_options
def crosscheck_cmd(package: str, with_deps: bool, no_rerun: bool, ddc: bool,
                   ddc_compilers: str, settings: Settings) -> None:
    """Replay PACKAGE's chain with the independent Python tools and compare byte for byte.

    Every RUN of PACKAGE's Containerfile that a Python tool covers (hex0, hex1, hex2-0,
    catm, M0, M1, hex2, blood-elf) runs again in Python on the exact input files of that
    build stage (from the cache; stages are built if missing) and its output is compared
    with the file the binary wrote. The seed is compared with the assembly of its own
    source. M2-Mesoplanet steps are rerun with --dirty-mode in the sandbox so that the
    blood-elf, M1 and hex2 commands they spawn can be replayed too. With --ddc, M2-Planet
    and M2-Mesoplanet built from the package's pinned sources by gcc, clang and tcc (each
    one installed) redo the chain's C compile steps (diverse double-compiling).

    Exit status: 0 every covered artifact identical, 2 a difference, 1 could not decide.
    """
    compilers = parse_compilers(ddc_compilers)
    tree = load_tree(settings)
    tree.get(package)  # a mistyped name is said before anything else
    require_sandbox()
    with Working(f"crosschecking {package}…") as status:
        report = crosscheck_package(settings, tree, package, with_deps=with_deps,
                                    rerun=not no_rerun,
                                    ddc=DdcOptions(compilers) if ddc else None,
                                    progress=lambda s: status.update(f"crosscheck: {s}"))
    save_report(settings.out, report)
    if settings.json:
        emit_json(report.as_dict())
    else:
        render(report)
    sys.exit(exit_code(report))


COMMANDS = [crosscheck_cmd]
