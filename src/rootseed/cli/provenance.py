"""``rootseed trace PKG`` and ``rootseed report``: the chain of custody back to the seed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from rootseed.cli.common import options
from rootseed.cli.trust_options import quorum_options
from rootseed.console import emit_json, err, out
from rootseed.errors import ErrorKind, RootseedError
from rootseed.provenance.binding import tree_expectations
from rootseed.provenance.render import to_dot, to_json, to_mermaid, to_rich
from rootseed.provenance.report import collect, write_report
from rootseed.provenance.seeds import SeedPolicy
from rootseed.provenance.trace import Pins, Tracer
from rootseed.settings import Settings
from rootseed.tree import Tree
from rootseed.trust.verify import ImageVerifier
from rootseed.wording import count

NOT_CHECKED = "signatures not checked (no --keyring)"
F = TypeVar("F", bound=Callable[..., Any])


def seed_option(func: F) -> F:
    return click.option(
        "--seed", "seeds", multiple=True, metavar="FILE|SHA256",
        help="Also accept this file (or sha256) as a seed where a chain built FROM scratch "
             "ends (repeatable). Without it: sources marked seed = true, and files whose "
             "sha256 is a known seed (StageX's hex0-seed).")(func)


@contextmanager
def verifier_for(settings: Settings, *, keyring_path: Path | None, signatures: Path,
                 registry: str | None, quorum: int) -> Iterator[ImageVerifier | None]:
    """The signature checker for --keyring (None without one). The registry defaults to
    the tree's namespace (as for ``sign`` and ``verify``)."""
    if keyring_path is None:
        yield None
        return
    if registry is None:
        try:
            registry = Tree.load(settings.tree).namespace
        except RootseedError as e:
            raise RootseedError(f"--keyring given, but the registry the signatures are stored "
                                f"under is unknown: {e.message}",
                                hint="pass --registry <namespace> (or --tree)",
                                kind=ErrorKind.USAGE) from e
    with ImageVerifier(keyring_path, signatures=signatures, registry=registry,
                       quorum=quorum) as verifier:
        yield verifier


def load_tree_or_none(settings: Settings, *, warn: bool) -> Tree | None:
    """The tree, or None when it does not load (trace and report then work from out/ only)."""
    try:
        return Tree.load(settings.tree)
    except RootseedError as e:
        if warn:
            err.print(f"[yellow]warning:[/] {escape(e.message)}; reporting only the images in "
                      f"{escape(str(settings.out))}")
        return None


def tree_pins(tree: Tree | None) -> Pins | None:
    """What the tree says each image is built from (pins, Containerfile, build args,
    context), for checking provenance; None without a tree."""
    return None if tree is None else tree_expectations(tree)


@click.command("trace")
@click.argument("package")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot"]),
              default="text", show_default=True, help="Output format.")
@seed_option
@quorum_options(keyring_required=False)
@options("tree", "cache-dir", "out")
def trace_cmd(package: str, fmt: str, seeds: tuple[str, ...], keyring_path: Path | None,
              quorum: int, signatures: Path, registry: str | None, settings: Settings) -> None:
    """Follow PACKAGE's provenance back to the seed, re-checking every digest.

    Each image's manifest digest is recomputed from its layout in --out and compared with
    its provenance and with what its children recorded; what the provenance recorded
    (sources, Containerfile, build args, context files) must match the tree. Fails on any
    broken link. With --keyring, every image and every provenance statement must be signed
    by --quorum distinct trusted keys before its parent links are followed.
    """
    tree = load_tree_or_none(settings, warn=False)
    with verifier_for(settings, keyring_path=keyring_path, signatures=signatures,
                      registry=registry, quorum=quorum) as verifier:
        root = Tracer(settings.out, cache_dir=settings.cache_dir,
                      quorum_status=(lambda p, d: NOT_CHECKED) if verifier is None else None,
                      signatures=verifier, require_quorum=verifier is not None,
                      pins=tree_pins(tree),
                      seeds=SeedPolicy().with_given(seeds)).trace(package)
    if settings.json or fmt == "json":
        emit_json(to_json(root))
    elif fmt == "mermaid":
        sys.stdout.write(to_mermaid(root))
    elif fmt == "dot":
        sys.stdout.write(to_dot(root))
    else:
        out.print(to_rich(root))
        found = sorted({f"{s.file} sha256 {s.sha256}" for n in root.walk() for s in n.seeds})
        # escaped: seed file names come from provenance.json (hostile: "[/x]" is markup)
        images = count(sum(1 for _ in root.walk()), "image")
        err.print(f"[green]✓[/] {escape(package)}: {images} verified back to the seed "
                  f"({escape('; '.join(found))})")
        for n in root.walk():
            for s in n.provenance.seeds:
                err.print(escape(f"  seed: {s.file} (source of {n.package}): marked "
                                 "seed = true in package.toml"))
            for r in n.recognised:
                err.print(escape(f"  seed: {r.file} ({r.kind} of {n.package}), taken as the "
                                 f"seed because {r.why}"))
        if tree is None:
            err.print(f"[yellow]note:[/] no package tree at {escape(str(settings.tree))}: the "
                      "recorded sources, Containerfiles and build args were not compared with "
                      "a tree (pass --tree)")


@click.command("report")
@click.option("--output", "-o", "output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("report.html"), show_default=True, help="HTML file to write.")
@seed_option
@quorum_options(keyring_required=False)
@options("tree", "cache-dir", "out")
def report_cmd(output: Path, seeds: tuple[str, ...], keyring_path: Path | None, quorum: int,
               signatures: Path, registry: str | None, settings: Settings) -> None:
    """Write one self-contained HTML page with the trust chain of every built image.

    With --keyring, as with ``trace --keyring``, an image is verified only when it, its
    provenance and every image and provenance of its chain are signed by --quorum distinct
    trusted keys; otherwise it shows as not verified ("unsigned"), with the reason.
    """
    tree = load_tree_or_none(settings, warn=True)
    deps = None if tree is None else {name: pkg.deps for name, pkg in tree.packages.items()}
    with verifier_for(settings, keyring_path=keyring_path, signatures=signatures,
                      registry=registry, quorum=quorum) as verifier:
        infos = collect(settings.out, deps, cache_dir=settings.cache_dir,
                        quorum_status=(lambda p, d: NOT_CHECKED) if verifier is None else None,
                        signatures=verifier, pins=tree_pins(tree),
                        seeds=SeedPolicy().with_given(seeds))
    path = write_report(output, infos)
    broken = [i.package for i in infos if i.status in ("broken", "missing")]
    unsigned = [i.package for i in infos if i.status == "unsigned"]
    not_verified = sorted([*broken, *unsigned])
    if settings.json:
        emit_json({"report": str(output), "packages": len(infos), "broken": broken,
                   "unsigned": unsigned, "not_verified": not_verified,
                   "verified": [i.package for i in infos if i.status == "verified"],
                   "signatures_checked": verifier is not None})
    else:
        # escaped: package names are directory names in out/
        err.print(escape(f"wrote {path} ({count(len(infos), 'package')}"
                         + (f"; not verified: {', '.join(not_verified)})" if not_verified
                            else ")")))
        if unsigned:
            err.print(f"[yellow]note:[/] without the signature quorum on their chain: "
                      f"{escape(', '.join(unsigned))} (rootseed trace PACKAGE --keyring … "
                      "says which image or provenance lacks it)")


COMMANDS: list[click.Command] = [trace_cmd, report_cmd]
