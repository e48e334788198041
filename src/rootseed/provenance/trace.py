"""Follow provenance from an image back to the seed, re-checking every link.

For each image: recompute its manifest digest from the layout, check ``provenance.json``
names that digest as its subject, check every source is pinned by sha256, then find each
parent image (``<out>/<package>/``, else ``<cache>/images/<hex>/``) whose *recomputed* digest
equals what the child recorded, and recurse. A chain must end in images built FROM scratch
from a seed source. Any broken link raises :class:`RootseedError` naming package and link.

With the tree (:data:`Pins`), what the provenance recorded must be what the tree says
now: the pinned sources, the Containerfile's sha256, the build arguments and every
context file. With a :class:`SignatureCheck` and ``require_quorum``, every image and
every provenance statement must be signed by the quorum *before* its parent links are
followed (provenance is otherwise unsigned JSON that anyone with write access to out/
could have edited).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rootseed.errors import ErrorKind, RootseedError
from rootseed.provenance.layout import is_layout, manifest_digest
from rootseed.provenance.seeds import KNOWN_SEEDS, RecognisedSeed, SeedPolicy, recorded_files
from rootseed.provenance.statement import (
    KIND_CONTAINERFILE,
    KIND_CONTEXT,
    PROVENANCE_FILE,
    Provenance,
    SourceRef,
    read_statement,
)


class ProvenanceError(RootseedError):
    """A broken link in an image's chain of custody."""

    kind = ErrorKind.PROVENANCE


#: Hook for the trust module: ``(package, "sha256:<hex>") -> "quorum 2/2 met"`` or None.
QuorumStatus = Callable[[str, str], "str | None"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class QuorumNotMet(RootseedError):
    """An image of the chain, or its provenance statement, lacks the signature quorum
    (``package``/``digest``: that image, which may be a parent of the one traced)."""

    kind = ErrorKind.QUORUM

    def __init__(self, message: str, *, package: str, digest: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.package = package
        self.digest = digest


@dataclass
class TraceNode:
    """One verified image in the chain of custody."""

    package: str
    digest: str  # "sha256:<hex>", recomputed from the layout
    location: str  # "out/<package>" or "cache/images/<hex>" (no host paths)
    provenance: Provenance
    verified: list[str] = field(default_factory=list)
    quorum: str | None = None
    provenance_quorum: str | None = None
    parents: list[TraceNode] = field(default_factory=list)
    #: seeds recognised by their sha256 (a tree without ``seed = true``: StageX's)
    recognised: list[RecognisedSeed] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.package}@{self.digest}"

    @property
    def sources(self) -> tuple[SourceRef, ...]:
        return self.provenance.sources

    @property
    def seeds(self) -> tuple[SourceRef, ...]:
        """Sources marked as seeds, then files recognised as one (id: how recorded)."""
        return self.provenance.seeds + tuple(
            SourceRef(id=r.kind, file=r.file, uri="", sha256=r.sha256, seed=True)
            for r in self.recognised)

    def walk(self) -> Iterator[TraceNode]:
        """Every distinct node once, parents before children (seeds first).

        Iterative (an explicit stack), so a chain of any depth is walked without Python's
        recursion limit."""
        seen: set[str] = {self.key}
        stack: list[tuple[TraceNode, Iterator[TraceNode]]] = [(self, iter(self.parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if parent.key not in seen:
                    seen.add(parent.key)
                    stack.append((parent, iter(parent.parents)))
                    break
            else:
                stack.pop()
                yield node


@dataclass
class _Visit:
    """A node on the walk's stack, and the index of its next parent link to follow."""

    node: TraceNode
    next: int = 0


def short(digest: str, n: int = 12) -> str:
    return digest.removeprefix("sha256:")[:n]


@dataclass(frozen=True)
class Expected:
    """What the tree says one image is built from (to compare with its provenance).

    ``sources``: source file → (sha256, seed) as package.toml pins them;
    ``containerfile_sha256``: of the package's Containerfile; ``build_args``: the arguments
    the builder hands it (rootseed build without --build-arg); ``context_files``: relative
    path → sha256 of every file in the package directory, as the builder hashes them.
    """

    sources: Mapping[str, tuple[str, bool]]
    containerfile_sha256: str | None = None
    build_args: Mapping[str, str] | None = None
    context_files: Mapping[str, str] | None = None


#: Package (image) name → what the tree says about it, or None when the tree does not
#: define that package.
Pins = Callable[[str], "Expected | None"]


class QuorumCheck(Protocol):
    """One quorum decision: passed or not, and one line for people."""

    @property
    def passed(self) -> bool: ...

    @property
    def line(self) -> str: ...


class SignatureCheck(Protocol):
    """The trust module's checks of an image's signatures and its provenance's."""

    def image(self, package: str, digest: str) -> QuorumCheck: ...

    def provenance(self, package: str, digest: str, statement: bytes) -> QuorumCheck: ...


def _recorded(prov: Provenance) -> tuple[str | None, dict[str, str], Any]:
    """The recorded Containerfile sha256, context files and build args of a statement."""
    build = prov.statement["predicate"]["buildDefinition"]
    containerfile: str | None = None
    context: dict[str, str] = {}
    for dep in build.get("resolvedDependencies", []):
        kind = (dep.get("annotations") or {}).get("kind")
        digest = (dep.get("digest") or {}).get("sha256")
        if kind == KIND_CONTAINERFILE:
            containerfile = digest if containerfile is None else "(recorded twice)"
        elif kind == KIND_CONTEXT:
            context[str(dep.get("name", ""))] = str(digest)
    return containerfile, context, build["externalParameters"].get("buildArgs")


def _check_against_tree(package: str, location: str, prov: Provenance,
                        expected: Expected) -> list[str]:
    """The recorded Containerfile, build args and context must be the tree's; what matched."""
    containerfile, context, args = _recorded(prov)
    problems: list[str] = []
    matched: list[str] = []
    if expected.containerfile_sha256 is not None:
        if containerfile != expected.containerfile_sha256:
            problems.append(f"Containerfile: recorded sha256 {containerfile}, the tree's is "
                            f"{expected.containerfile_sha256}")
        else:
            matched.append("Containerfile")
    if expected.build_args is not None:
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            problems.append(f"build args: recorded {args!r}, not a map of strings")
        else:
            want = dict(expected.build_args)
            problems += [f"build arg {k}: recorded {args[k]!r}, the tree gives {want[k]!r}"
                         for k in sorted(args.keys() & want.keys()) if args[k] != want[k]]
            problems += [f"build arg {k}: recorded {args[k]!r}, the tree does not set it"
                         for k in sorted(args.keys() - want.keys())]
            problems += [f"build arg {k}: the tree gives {want[k]!r}, not recorded"
                         for k in sorted(want.keys() - args.keys())]
            if args == want:
                matched.append("build args")
    if expected.context_files is not None:
        want_ctx = dict(expected.context_files)
        problems += [f"context file {f}: recorded sha256 {context[f]}, the tree's is "
                     f"{want_ctx[f]}" for f in sorted(context.keys() & want_ctx.keys())
                     if context[f] != want_ctx[f]]
        problems += [f"context file {f}: recorded, but not in the tree"
                     for f in sorted(context.keys() - want_ctx.keys())]
        problems += [f"context file {f}: in the tree, but not recorded"
                     for f in sorted(want_ctx.keys() - context.keys())]
        if context == want_ctx:
            matched.append("context files")
    if problems:
        raise ProvenanceError(
            f"{package}: provenance at {location}/{PROVENANCE_FILE} does not match the "
            "tree:\n  " + "\n  ".join(problems),
            hint="the provenance was edited, the tree changed after the build, or the image "
                 "was built with other --build-arg values; rebuild it from this tree",
                 package=package)
    return matched


def _check_against_pins(package: str, location: str, sources: Iterable[SourceRef],
                        pinned: Mapping[str, tuple[str, bool]]) -> None:
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
        raise ProvenanceError(
            f"{package}: provenance at {location}/{PROVENANCE_FILE} does not match the "
            "tree's pinned sources:\n  " + "\n  ".join(problems),
            hint="the provenance was edited, or the image was built from another version of "
                 "the tree; rebuild it from this tree", package=package)


class Tracer:
    """Walk the chain for images in ``out`` (and ``cache_dir/images``); memoised per image."""

    def __init__(self, out: Path, *, cache_dir: Path | None = None,
                 quorum_status: QuorumStatus | None = None,
                 pins: Pins | None = None, signatures: SignatureCheck | None = None,
                 require_quorum: bool = False, seeds: SeedPolicy | None = None) -> None:
        self.out = out
        self.seeds = seeds or SeedPolicy()
        self.pins = pins
        self.cache_dir = cache_dir
        self.quorum_status = quorum_status
        self.signatures = signatures
        self.require_quorum = require_quorum
        self._done: dict[str, TraceNode] = {}
        self._digests: dict[Path, str] = {}
        #: ``package@digest`` → (image quorum line, provenance quorum line), for every image
        #: whose signatures were checked (also one whose walk then failed)
        self._signature_lines: dict[str, tuple[str, str]] = {}

    def signature_lines(self, package: str) -> tuple[str, str] | None:
        """The quorum lines of ``<out>/<package>`` if its signatures were checked."""
        digest = self._digests.get(self.out / package)
        return None if digest is None else self._signature_lines.get(f"{package}@{digest}")

    def _digest(self, layout: Path, who: str) -> str:
        if layout not in self._digests:
            self._digests[layout] = manifest_digest(layout, who=who)
        return self._digests[layout]

    def trace(self, package: str) -> TraceNode:
        """The verified chain of ``<out>/<package>/`` down to the seed."""
        layout = self.out / package
        if not layout.is_dir():
            raise ProvenanceError(f"{package}: no image at {layout}",
                                  hint=f"build it first: rootseed build {package}", package=package)
        return self._walk(package, layout, f"out/{package}")

    def _walk(self, package: str, layout: Path, location: str) -> TraceNode:
        """Depth first from one image to its seeds, with an explicit stack (a chain of any
        depth, no recursion limit). Each image is checked (and its quorum) before its
        parent links are followed; a parent's node is complete before its child's."""
        path: list[str] = []  # the packages being visited, child first (for cycles)
        root, done = self._enter(package, layout, location, path)
        if done:
            return root
        stack: list[_Visit] = [_Visit(root)]
        path.append(package)
        while stack:
            visit = stack[-1]
            refs = visit.node.provenance.parents
            if visit.next < len(refs):
                ref = refs[visit.next]
                visit.next += 1
                parent_layout, parent_location = self._find_parent(
                    visit.node.package, ref.package, ref.digest)
                node, done = self._enter(ref.package, parent_layout, parent_location, path)
                visit.node.parents.append(node)
                if not done:
                    stack.append(_Visit(node))
                    path.append(ref.package)
                continue
            stack.pop()
            path.pop()
            if refs:
                visit.node.verified.append(f"parents verified ({len(refs)})")
            self._done[visit.node.key] = visit.node
        return root

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
            raise ProvenanceError(
                f"{child}: missing parent {package}: no image layout at out/{package}"
                + (f" or cache/images/{hexd}" if self.cache_dir is not None else "")
                + f" (the child was built from {digest})",
                hint=f"build {package} (rootseed build {package}) so the chain can be checked",
                package=child)
        raise ProvenanceError(
            f"{child}: parent {package} does not match: {child} was built from {digest} but "
            + "; ".join(found),
            hint=f"{package} was rebuilt or changed since {child} was built; rebuild {child} "
            "(or restore the parent image it was built from)", package=child)

    def _enter(self, package: str, layout: Path, location: str, path: list[str]
               ) -> tuple[TraceNode, bool]:
        """The node of one image, checked (its quorum too), parents not yet followed; and
        whether it is complete already (traced before)."""
        digest = self._digest(layout, package)
        key = f"{package}@{digest}"
        if key in self._done:
            return self._done[key], True
        if package in path:
            raise ProvenanceError(
                f"{package}: provenance forms a cycle: {' -> '.join([*path, package])}",
                hint="provenance was forged or damaged; rebuild the packages", package=package)
        prov = read_statement(layout / PROVENANCE_FILE, package=package)
        if prov.subject_digest != digest:
            raise ProvenanceError(
                f"{package}: provenance subject mismatch: {location}/{PROVENANCE_FILE} describes "
                f"{prov.subject_digest}, but the image's manifest is {digest}",
                hint="the provenance belongs to another build or was edited; rebuild the package",
                package=package)
        if prov.package != package or prov.subject_name.rsplit("/", 1)[-1] != package:
            raise ProvenanceError(
                f"{package}: provenance at {location}/{PROVENANCE_FILE} describes package "
                f"{prov.package!r} (subject {prov.subject_name!r}), not {package!r}",
                hint="the provenance belongs to another package; rebuild the package",
                package=package)
        node = TraceNode(package=package, digest=digest, location=location, provenance=prov)
        node.verified.append("digest recomputed")
        unpinned = [s.file or s.id for s in prov.sources if not _SHA256.match(s.sha256)]
        if unpinned:
            raise ProvenanceError(f"{package}: sources not pinned by sha256: {', '.join(unpinned)}",
                                  hint="pin every source with its sha256 in package.toml",
                                  package=package)
        if prov.sources:
            node.verified.append("sources pinned (sha256)")
        tree = self.pins(package) if self.pins is not None else None
        if tree is not None:
            _check_against_pins(package, location, prov.sources, tree.sources)
            node.verified.append("sources match package.toml")
            matched = _check_against_tree(package, location, prov, tree)
            if matched:
                node.verified.append(f"{', '.join(matched)} match the tree")
        for seed in prov.seeds:
            node.verified.append(f"seed: {seed.file} sha256 {seed.sha256}")
        if not prov.parents and not prov.seeds:
            node.recognised = self.seeds.recognise(recorded_files(prov.statement))
            if not node.recognised:
                known = "; ".join(f"{k.name} {k.sha256[:16]}…" for k in KNOWN_SEEDS)
                raise ProvenanceError(
                    f"{package}: chain ends without a seed: {package} ({digest}) was built "
                    "FROM scratch but none of its sources is marked as a seed and none of "
                    "its recorded files has the sha256 of a known seed",
                    hint="every chain must start from a seed: mark its source `seed = true` "
                         "in package.toml, or, for a tree you do not edit, name the seed with "
                         f"--seed FILE|SHA256 (known seeds: {known})", package=package)
            node.verified += [r.line() for r in node.recognised]
        self._check_signatures(node, prov)
        return node, False

    def _check_signatures(self, node: TraceNode, prov: Provenance) -> None:
        """The image's and the provenance's quorum (before any parent link is followed)."""
        if self.signatures is None:
            if self.quorum_status is not None:
                node.quorum = self.quorum_status(node.package, node.digest)
            return
        image = self.signatures.image(node.package, node.digest)
        statement = self.signatures.provenance(node.package, node.digest, prov.raw)
        node.quorum = image.line
        node.provenance_quorum = f"provenance {statement.line}"
        self._signature_lines[node.key] = (node.quorum, node.provenance_quorum)
        if self.require_quorum and not (image.passed and statement.passed):
            failed = [f"image: {image.line}"] if not image.passed else []
            failed += [f"provenance: {statement.line}"] if not statement.passed else []
            raise QuorumNotMet(
                f"{node.package} ({node.digest}) is not signed by the quorum: "
                + "; ".join(failed)
                + ("" if statement.passed else
                   "; its provenance (and so the parent links it names) cannot be trusted"),
                package=node.package, digest=node.digest,
                hint="sign it with rootseed sign (which signs the image and its provenance) "
                     "using enough trusted keys, or check --keyring and --quorum")


def trace(out: Path, package: str, *, cache_dir: Path | None = None,
          quorum_status: QuorumStatus | None = None) -> TraceNode:
    """Follow ``<out>/<package>/``'s provenance back to the seed (see :class:`Tracer`)."""
    return Tracer(out, cache_dir=cache_dir, quorum_status=quorum_status).trace(package)
