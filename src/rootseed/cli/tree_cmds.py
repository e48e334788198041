"""``rootseed list``, ``graph`` and ``fetch``: look at a package tree and fetch its sources."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from rootseed.cli.common import build_arg_values, load_tree, make_fetcher, options
from rootseed.console import emit_json, err, out
from rootseed.settings import Settings
from rootseed.tree import Package, Tree
from rootseed.wording import count


def package_json(p: Package) -> dict[str, Any]:
    return {
        "name": p.name, "stage": p.stage, "version": p.version,
        "declared_version": p.declared_version, "origin": p.origin, "target": p.target,
        "description": p.description, "license": p.license, "website": p.website,
        "platforms": list(p.platforms),
        "deps": list(p.deps),
        "build_args": p.build_args(),
        "sources": [{"id": s.id, "file": s.file, "sha256": s.hash, "version": s.version,
                     "mirrors": list(s.mirrors), "seed": s.seed} for s in p.sources],
        "outputs": {k: {"sha256": v[0], "size": v[1]} for k, v in sorted(p.outputs.items())},
    }


def _status(tree: Tree, name: str) -> str:
    blocked = tree.blocker(name)
    if blocked is None:
        return "ok"
    if blocked[0] == name:
        return f"broken: {blocked[1].kind.value}"
    return f"blocked by {blocked[0]}"


def _problem_note(tree: Tree) -> None:
    errors = tree.errors()
    if errors:
        verb = "makes" if len(errors) == 1 else "make"
        err.print(f"{count(len(errors), 'problem')} {verb} "
                  f"{count(len(tree.broken), 'package')} unbuildable; "
                  "`rootseed check` names each one", highlight=False)


@click.command("list")
@options("tree")
def list_cmd(settings: Settings) -> None:
    """List the tree's packages: versions, sources and dependencies."""
    tree = load_tree(settings)
    packages = [tree.packages[n] for n in tree.order_all()]
    if settings.json:
        emit_json({"tree": str(tree.root), "namespace": tree.namespace,
                   "packages": [{**package_json(p), "status": _status(tree, p.name)}
                                for p in packages],
                   "problems": [pr.to_json(tree.root.parent) for pr in tree.problems]})
        return
    table = Table(title=f"{tree.root} (namespace {tree.namespace})")
    for col in ("package", "version", "sources"):
        table.add_column(col, no_wrap=True)  # names, versions, file names: never cut
    table.add_column("depends on", max_width=72)  # wraps between names only
    table.add_column("status", no_wrap=True)
    for p in packages:
        table.add_row(p.name, p.version, "\n".join(s.file for s in p.sources) or "-",
                      ", ".join(p.deps) or "-", _status(tree, p.name))
    out.print(table)
    _problem_note(tree)


def _graph_order(tree: Tree, names: list[str]) -> list[str]:
    """The named packages and what they need (all: every loaded package, broken too)."""
    return tree.order(names) if names else tree.order_all()


def _graph_text(tree: Tree, names: list[str], fmt: str) -> str:
    order = _graph_order(tree, names)
    shown = set(order)
    if fmt == "dot":
        lines = ["digraph rootseed {", "  rankdir=BT;"]
        lines += [f'  "{n}";' for n in order]
        lines += [f'  "{n}" -> "{d}";' for n in order for d in tree.packages[n].deps
                  if d in shown]
        return "\n".join([*lines, "}"])
    if fmt == "mermaid":
        ids = {n: f"p{i}" for i, n in enumerate(order)}
        lines = ["graph BT"] + [f'  {ids[n]}["{n}"]' for n in order]
        lines += [f"  {ids[n]} --> {ids[d]}" for n in order for d in tree.packages[n].deps
                  if d in shown]
        return "\n".join(lines)
    width = len(str(len(order)))
    return "\n".join(
        f"{i:>{width}}. {n}" + (f"  (after {', '.join(tree.packages[n].deps)})"
                                 if tree.packages[n].deps else "")
        for i, n in enumerate(order, 1))


@click.command("graph")
@click.argument("packages", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]),
              default="text", show_default=True, help="Build order (text) or a DAG.")
@options("tree")
def graph_cmd(packages: tuple[str, ...], fmt: str, settings: Settings) -> None:
    """Show the build order (dependencies first) or the dependency graph."""
    tree = load_tree(settings)
    names = list(packages)
    if settings.json:
        order = _graph_order(tree, names)
        emit_json({"order": order, "edges": [[n, d] for n in order
                                             for d in tree.packages[n].deps]})
        return
    click.echo(_graph_text(tree, names, fmt))


@click.command("fetch")
@click.argument("packages", nargs=-1)
@options("tree", "mirror", "cache-dir", "offline")
def fetch_cmd(packages: tuple[str, ...], settings: Settings) -> None:
    """Fetch and verify (sha256) the pinned sources of PACKAGES (default: all)."""
    tree = load_tree(settings)
    names = list(packages) or sorted(tree.packages)
    for name in names:
        tree.get(name)
    fetcher = make_fetcher(settings, tree)
    results: list[dict[str, str]] = []
    try:
        for name in names:
            package = tree.packages[name]
            paths = fetcher.fetch_package(package)
            for source in package.sources:
                results.append({"package": name, "source": source.id, "file": source.file,
                                "sha256": source.hash, "path": str(paths[source.id])})
                if not settings.json:
                    err.print(f"[green]verified[/] {name}: {source.file}  sha256:{source.hash}",
                              markup=True, highlight=False)
    finally:
        fetcher.close()
    if settings.json:
        emit_json({"fetched": results})
    else:
        err.print(f"{count(len(results), 'source')} verified (cache {settings.cache_dir})")


@click.command("check")
@click.argument("packages", nargs=-1)
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
              help="Override a build argument (repeatable), as `build` would.")
@options("tree")
def check_cmd(packages: tuple[str, ...], build_args: tuple[str, ...], settings: Settings) -> int:
    """Check PACKAGES (default: the whole tree) without building: package.toml, every
    Containerfile planned, sources, context files, images, cycles. Exit 1 on errors."""
    from rootseed.tree.check import check_tree

    args = build_arg_values(build_args)
    tree = load_tree(settings, args)
    report = check_tree(tree, packages, args)
    base = tree.root.parent
    errors, warnings = len(report.errors), len(report.warnings)
    if settings.json:
        emit_json({"tree": str(tree.root), "namespace": tree.namespace,
                   "packages": len(report.packages), "planned": report.planned,
                   "errors": errors, "warnings": warnings,
                   "problems": [p.to_json(base) for p in report.problems]})
    else:
        for p in report.problems:
            click.echo(f"{p.where(base)}: {p.severity.value}: {p.message} [{p.kind.value}]")
            if p.hint:
                click.echo(f"    hint: {p.hint}")
        click.echo(f"{count(len(report.packages), 'package')}, "
                   f"{count(report.planned, 'Containerfile')} planned: "
                   f"{count(errors, 'error')}, {count(warnings, 'warning')}")
    return 1 if errors else 0


COMMANDS = [list_cmd, graph_cmd, fetch_cmd, check_cmd]
