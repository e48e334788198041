"""Follow provenance from an image back to the seed, re-checking every link.

For each image: recompute its manifest digest from the layout, check ``provenance.json``
names that digest as its subject, check every source is pinned by sha256, then find each
parent image (``<out>/<package>/``, else ``<cache>/images/<hex>/``) whose *recomputed* digest
equals what the child recorded, and recurse. A chain must end in images built FROM scratch
from a seed source. Any broken link raises :class:`RootseedError` naming package and link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.provenance.layout import is_layout, manifest_digest
from rootseed.provenance.statement import (
    PROVENANCE_FILE,
    Provenance,
    SourceRef,
    read_statement,
)

#: Hook for the trust module: ``(package, "sha256:<hex>") -> "quorum 2/2 met"`` or None.
QuorumStatus = Callable[[str, str], "str | None"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class TraceNode:
    """One verified image in the chain of custody."""

    package: str
    digest: str  # "sha256:<hex>", recomputed from the layout
    location: str  # "out/<package>" or "cache/images/<hex>" (no host paths)
    provenance: Provenance
    verified: list[str] = field(default_factory=list)
    quorum: str | None = None
    parents: list[TraceNode] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.package}@{self.digest}"

    @property
    def sources(self) -> tuple[SourceRef, ...]:
        return self.provenance.sources

    @property
    def seeds(self) -> tuple[SourceRef, ...]:
        return self.provenance.seeds

    def walk(self) -> Iterator[TraceNode]:
        """Every distinct node once, parents before children (seeds first)."""
        seen: set[str] = set()

        def visit(node: TraceNode) -> Iterator[TraceNode]:
            if node.key in seen:
                return
            seen.add(node.key)
            for parent in node.parents:
                yield from visit(parent)
            yield node

        yield from visit(self)


def short(digest: str, n: int = 12) -> str:
    return digest.removeprefix("sha256:")[:n]


#: Package (image) name → {source file: (sha256, seed)} as its package.toml pins them,
#: or None when the tree does not define that package.
Pins = Callable[[str], "dict[str, tuple[str, bool]] | None"]


def _check_against_pins(package: str, location: str, sources: Iterable[SourceRef],
                        pinned: dict[str, tuple[str, bool]]) -> None:
    """What the provenance says was used must be exactly what the tree pins."""
    recorded = {s.file: (s.sha256, s.seed) for s in sources}
    problems = [f"{f}: recorded sha256 {recorded[f][0]}, package.toml pins {pinned[f][0]}"
                for f in sorted(recorded.keys() & pinned.keys())
                if recorded[f][0] != pinned[f][0]]
    problems += [f"{f}: recorded seed={recorded[f][1]}, package.toml says seed={pinned[f][1]}"
                 for f in sorted(recorded.keys() & pinned.keys())
                 if recorded[f][0] == pinned[f][0] and recorded[f][1] != pinned[f][1]]
    problems += [f"{f}: recorded, but package.toml does not pin it"
                 for f in sorted(recorded.keys() - pinned.keys())]
    problems += [f"{f}: pinned in package.toml, but not recorded"
                 for f in sorted(pinned.keys() - recorded.keys())]
    if problems:
        raise RootseedError(
            f"{package}: provenance at {location}/{PROVENANCE_FILE} does not match the "
            "tree's pinned sources:\n  " + "\n  ".join(problems),
            hint="the provenance was edited, or the image was built from another version of "
                 "the tree; rebuild it from this tree")


class Tracer:
    """Walk the chain for images in ``out`` (and ``cache_dir/images``); memoised per image."""

    def __init__(self, out: Path, *, cache_dir: Path | None = None,
                 quorum_status: QuorumStatus | None = None, deep: bool = True,
                 pins: Pins | None = None) -> None:
        self.out = out
        self.pins = pins
        self.cache_dir = cache_dir
        self.quorum_status = quorum_status
        self.deep = deep
        self._done: dict[str, TraceNode] = {}
        self._digests: dict[Path, str] = {}

    def _digest(self, layout: Path, who: str) -> str:
        if layout not in self._digests:
            self._digests[layout] = manifest_digest(layout, who=who, deep=self.deep)
        return self._digests[layout]

    def trace(self, package: str) -> TraceNode:
        """The verified chain of ``<out>/<package>/`` down to the seed."""
        layout = self.out / package
        if not layout.is_dir():
            raise RootseedError(f"{package}: no image at {layout}",
                                hint=f"build it first: rootseed build {package}")
        return self._node(package, layout, f"out/{package}", expected=None, path=())

    def _find_parent(self, child: str, package: str, digest: str) -> tuple[Path, str]:
        hexd = digest.removeprefix("sha256:")
        candidates: list[tuple[Path, str]] = [(self.out / package, f"out/{package}")]
        if self.cache_dir is not None:
            candidates.append((self.cache_dir / "images" / hexd, f"cache/images/{hexd}"))
        found: list[str] = []
        damaged: list[RootseedError] = []
        for layout, location in candidates:
            if not is_layout(layout):
                continue
            try:
                actual = self._digest(layout, package)
            except RootseedError as e:  # a damaged copy; another candidate may be intact
                damaged.append(e)
                continue
            if actual == digest:
                return layout, location
            found.append(f"{location} has {actual}")
        if damaged:
            raise damaged[0]
        if not found:
            raise RootseedError(
                f"{child}: missing parent {package}: no image layout at out/{package}"
                + (f" or cache/images/{hexd}" if self.cache_dir is not None else "")
                + f" (the child was built from {digest})",
                hint=f"build {package} (rootseed build {package}) so the chain can be checked")
        raise RootseedError(
            f"{child}: parent {package} does not match: {child} was built from {digest} but "
            + "; ".join(found),
            hint=f"{package} was rebuilt or changed since {child} was built; rebuild {child} "
            "(or restore the parent image it was built from)")

    def _node(self, package: str, layout: Path, location: str, *, expected: str | None,
              path: tuple[str, ...]) -> TraceNode:
        digest = self._digest(layout, package)
        key = f"{package}@{digest}"
        if key in self._done:
            return self._done[key]
        if package in path:
            raise RootseedError(
                f"{package}: provenance forms a cycle: {' -> '.join([*path, package])}",
                hint="provenance was forged or damaged; rebuild the packages")
        if expected is not None and digest != expected:  # pragma: no cover (checked by caller)
            raise RootseedError(f"{package}: digest {digest} differs from recorded {expected}")
        prov = read_statement(layout / PROVENANCE_FILE, package=package)
        if prov.subject_digest != digest:
            raise RootseedError(
                f"{package}: provenance subject mismatch: {location}/{PROVENANCE_FILE} describes "
                f"{prov.subject_digest}, but the image's manifest is {digest}",
                hint="the provenance belongs to another build or was edited; rebuild the package")
        if prov.package != package or prov.subject_name.rsplit("/", 1)[-1] != package:
            raise RootseedError(
                f"{package}: provenance at {location}/{PROVENANCE_FILE} describes package "
                f"{prov.package!r} (subject {prov.subject_name!r}), not {package!r}",
                hint="the provenance belongs to another package; rebuild the package")
        node = TraceNode(package=package, digest=digest, location=location, provenance=prov)
        node.verified.append("digest recomputed")
        unpinned = [s.file or s.id for s in prov.sources if not _SHA256.match(s.sha256)]
        if unpinned:
            raise RootseedError(f"{package}: sources not pinned by sha256: {', '.join(unpinned)}",
                                hint="pin every source with its sha256 in package.toml")
        if prov.sources:
            node.verified.append("sources pinned (sha256)")
        pinned = self.pins(package) if self.pins is not None else None
        if pinned is not None:
            _check_against_pins(package, location, prov.sources, pinned)
            node.verified.append("sources match package.toml")
        for seed in prov.seeds:
            node.verified.append(f"seed: {seed.file} sha256 {seed.sha256}")
        if not prov.parents and not prov.seeds:
            raise RootseedError(
                f"{package}: chain ends without a seed: {package} ({digest}) was built FROM "
                "scratch but none of its sources is marked as a seed",
                hint="every chain must start from a seed source (seed = true in package.toml)")
        for parent in prov.parents:
            parent_layout, parent_location = self._find_parent(package, parent.package,
                                                               parent.digest)
            node.parents.append(self._node(parent.package, parent_layout, parent_location,
                                           expected=parent.digest, path=(*path, package)))
        if prov.parents:
            node.verified.append(f"parents verified ({len(prov.parents)})")
        if self.quorum_status is not None:
            node.quorum = self.quorum_status(package, digest)
        self._done[key] = node
        return node


def trace(out: Path, package: str, *, cache_dir: Path | None = None,
          quorum_status: QuorumStatus | None = None) -> TraceNode:
    """Follow ``<out>/<package>/``'s provenance back to the seed (see :class:`Tracer`)."""
    return Tracer(out, cache_dir=cache_dir, quorum_status=quorum_status).trace(package)
