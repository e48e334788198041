"""``rootseed trace PKG`` and ``rootseed report``: the chain of custody back to the seed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape

from rootseed.cli.common import common_options
from rootseed.cli.trust_options import quorum_options
from rootseed.console import emit_json, err, out
from rootseed.errors import RootseedError
from rootseed.provenance.render import to_dot, to_json, to_mermaid, to_rich
from rootseed.provenance.report import collect, write_report
from rootseed.provenance.trace import Pins, QuorumStatus, Tracer
from rootseed.settings import Settings
from rootseed.tree import Tree
from rootseed.trust.verify import ImageVerifier

NOT_CHECKED = "signatures not checked (no --keyring)"


@contextmanager
def quorum_hook(settings: Settings, *, keyring_path: Path | None, signatures: Path,
                registry: str | None, quorum: int) -> Iterator[QuorumStatus]:
    """Each image's signature/quorum status, e.g. ``quorum 2/2 met`` or why not.

    Without a keyring nothing is checked, and every image says so. The registry defaults to
    the tree's namespace (as for ``sign`` and ``verify``).
    """
    if keyring_path is None:
        yield lambda package, digest: NOT_CHECKED
        return
    if registry is None:
        try:
            registry = Tree.load(settings.tree).namespace
        except RootseedError as e:
            raise RootseedError(f"--keyring given, but the registry the signatures are stored "
                                f"under is unknown: {e.message}",
                                hint="pass --registry <namespace> (or --tree)") from e
    with ImageVerifier(keyring_path, signatures=signatures, registry=registry,
                       quorum=quorum) as verifier:
        yield verifier.status


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
    """The tree's pinned sources per image, for checking provenance; None without a tree."""
    if tree is None:
        return None

    def pins(image: str) -> dict[str, tuple[str, bool]] | None:
        name = tree.images.get(image)
        if name is None:
            return None
        return {s.file: (s.hash, s.seed) for s in tree.packages[name].sources}

    return pins


@click.command("trace")
@click.argument("package")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot"]),
              default="text", show_default=True, help="Output format.")
@quorum_options(keyring_required=False)
@common_options
def trace_cmd(package: str, fmt: str, keyring_path: Path | None, quorum: int, signatures: Path,
              registry: str | None, settings: Settings) -> None:
    """Follow PACKAGE's provenance back to the seed, re-checking every digest.

    Each image's manifest digest is recomputed from its layout in --out and compared with
    its provenance and with what its children recorded; fails on any broken link. With
    --keyring, each image also shows whether a quorum of trusted keys signed it.
    """
    with quorum_hook(settings, keyring_path=keyring_path, signatures=signatures,
                     registry=registry, quorum=quorum) as status:
        root = Tracer(settings.out, cache_dir=settings.cache_dir, quorum_status=status,
                      pins=tree_pins(load_tree_or_none(settings, warn=False))).trace(package)
    if settings.json or fmt == "json":
        emit_json(to_json(root))
    elif fmt == "mermaid":
        sys.stdout.write(to_mermaid(root))
    elif fmt == "dot":
        sys.stdout.write(to_dot(root))
    else:
        out.print(to_rich(root))
        seeds = sorted({f"{s.file} sha256 {s.sha256}" for n in root.walk() for s in n.seeds})
        err.print(f"[green]✓[/] {package}: {sum(1 for _ in root.walk())} images verified "
                  f"back to the seed ({'; '.join(seeds)})")


@click.command("report")
@click.option("--output", "-o", "output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("report.html"), show_default=True, help="HTML file to write.")
@quorum_options(keyring_required=False)
@common_options
def report_cmd(output: Path, keyring_path: Path | None, quorum: int, signatures: Path,
               registry: str | None, settings: Settings) -> None:
    """Write one self-contained HTML page with the trust chain of every built image.

    With --keyring, each image also shows whether a quorum of trusted keys signed it.
    """
    tree = load_tree_or_none(settings, warn=True)
    deps = None if tree is None else {name: pkg.deps for name, pkg in tree.packages.items()}
    with quorum_hook(settings, keyring_path=keyring_path, signatures=signatures,
                     registry=registry, quorum=quorum) as status:
        infos = collect(settings.out, deps, cache_dir=settings.cache_dir, quorum_status=status,
                        pins=tree_pins(tree))
    path = write_report(output, infos)
    broken = [i.package for i in infos if i.status in ("broken", "missing")]
    if settings.json:
        emit_json({"report": str(output), "packages": len(infos), "broken": broken})
    else:
        err.print(f"wrote {path} ({len(infos)} packages"
                  + (f"; not verified: {', '.join(broken)})" if broken else ")"))


COMMANDS: list[click.Command] = [trace_cmd, report_cmd]
