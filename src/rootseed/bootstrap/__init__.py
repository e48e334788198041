"""``rootseed bootstrap``: stage0 from the 181-byte seed, built, verified and explained.

The steps: fetch every pinned source (refused on any sha256 mismatch before anything
runs), build ``bootstrap-stage0`` in the sandbox, check that the image's ``/bin`` holds
exactly the expected tools with the pinned digests, compare with ``digests/``, and (when
the Python tools are available) replay the chain independently.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import shipped
from rootseed.bootstrap.chain import Chain, link
from rootseed.containerfile import parse_file
from rootseed.engine.api import (
    Builder,
    BuildOptions,
    BuildResult,
    RemoteTarget,
    check_digests,
    read_digests,
)
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fetch import Fetcher, FetchError
from rootseed.settings import Settings
from rootseed.tree import Package, Tree
from rootseed.wording import count

STAGE0 = "bootstrap-stage0"
DEMO = "seed-hello"


@dataclass(frozen=True)
class Tool:
    path: str  # in the image, e.g. "bin/M1"
    sha256: str
    size: int
    expected: bool  # matches the pinned [outputs] entry


@dataclass
class BootstrapReport:
    package: str
    demo: bool
    tree: str
    manifest_digest: str
    cached: bool
    seconds: float
    seed: dict[str, Any]
    sources: list[dict[str, str]]
    tools: list[Tool]
    verified: list[str]
    recorded_digest: str | None
    chain: Chain = field(default_factory=lambda: Chain(None, ()))  # derived from the build
    checks: list[dict[str, Any]] = field(default_factory=list)  # crosscheck results

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.package, "demo": self.demo, "tree": self.tree,
            "manifest_digest": self.manifest_digest, "cached": self.cached,
            "seconds": round(self.seconds, 3), "seed": self.seed, "sources": self.sources,
            "tools": [{"path": t.path, "sha256": t.sha256, "size": t.size,
                       "expected": t.expected} for t in self.tools],
            "verified": self.verified, "recorded_digest": self.recorded_digest,
            "chain": self.chain.as_dict(),
            "crosscheck": self.checks,
        }


class DigestMismatch(RootseedError):
    """A built image of the chain differs from its recorded digest."""

    kind = ErrorKind.DIGEST_MISMATCH


def default_examples() -> Path:
    """The example tree shipped inside the rootseed package (``rootseed/data/examples``)."""
    return shipped.examples()


def _missing_sources_error(package: Package, e: FetchError) -> FetchError:
    """``e`` itself (its type and kind kept), with the hint bootstrap can give."""
    e.hint = (f"put the {len(package.sources)} files of {package.name} (names and sha256 "
              "above) in a directory and run `rootseed bootstrap --mirror DIR`; to see the "
              "whole chain work with no download at all, run `rootseed bootstrap --demo` "
              "(rootseed's own seed and example tree, shipped with rootseed)")
    return e.at(package=package.name)


def _image_tools(builder: Builder, result: BuildResult, package: Package) -> list[Tool]:
    """Every regular file under /bin of the image, checked against [outputs]."""
    rootfs = builder.image_rootfs(result.image, result.manifest_digest)
    tools: list[Tool] = []
    for path in sorted((rootfs / "bin").iterdir()) if (rootfs / "bin").is_dir() else []:
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        rel = f"bin/{path.name}"
        digest = hashlib.sha256(data).hexdigest()
        tools.append(Tool(rel, digest, len(data), package.outputs.get(rel) == (digest,
                                                                              len(data))))
    return tools


def bootstrap(settings: Settings, *, demo: bool = False,
              crosscheck: Callable[[Builder, BuildResult], list[dict[str, Any]]] | None = None,
              no_cache: bool = False,
              events: Callable[[Builder, str], Callable[[dict[str, Any]], None] | None]
              | None = None,
              remote: RemoteTarget | None = None
              ) -> BootstrapReport:
    """Build, verify and (with ``crosscheck``) replay the chain. ``events(builder, name)``
    gives the build's step-event hook (e.g. to start checks while it runs); ``remote``:
    its RUN steps on that REAPI service."""
    started = time.monotonic()
    tree = Tree.load(default_examples() if demo else settings.tree)
    name = DEMO if demo else STAGE0
    package = tree.get(name)
    fetcher = Fetcher(settings.cache_dir, settings.mirrors, offline=settings.offline,
                      progress=not settings.json, base_dir=tree.root)
    try:
        # Every input of the chain is verified before anything runs.
        for dep in tree.order([name]):
            try:
                fetcher.fetch_package(tree.packages[dep])
            except FetchError as e:
                raise _missing_sources_error(tree.packages[dep], e) from None
        builder = Builder(tree, cache_dir=settings.cache_dir, out=settings.out,
                          fetcher=fetcher)
        results = builder.build([name], BuildOptions(
            jobs=settings.jobs, debug=settings.debug, progress=not settings.json,
            no_cache=no_cache, events=events(builder, name) if events is not None else None,
            remote=remote))
    finally:
        fetcher.close()
    result = next(r for r in results if r.package == name)
    tools = _image_tools(builder, result, package)
    present = {t.path for t in tools}
    missing = sorted(set(package.outputs) - present)
    unexpected = sorted(present - set(package.outputs))
    wrong = [t for t in tools if t.path in package.outputs and not t.expected]
    if missing or unexpected or wrong:
        lines = [f"  missing: {m}" for m in missing] + [
            f"  not expected: {u}" for u in unexpected] + [
            f"  {t.path}: expected sha256 {package.outputs[t.path][0]} "
            f"({package.outputs[t.path][1]} bytes), got {t.sha256} ({t.size} bytes)"
            for t in wrong]
        pins = package.directory / "package.toml"
        raise RootseedError(f"{name}: the image's /bin is not what {pins} pins:\n"
                            + "\n".join(lines), kind=ErrorKind.DIGEST_MISMATCH, package=name)

    seeds = [s for dep in tree.order([name]) for s in tree.packages[dep].sources if s.seed]
    seed = seeds[0] if seeds else None
    sources = [{"package": dep, "file": s.file, "sha256": s.hash}
               for dep in tree.order([name]) for s in tree.packages[dep].sources]
    verified = [
        f"{len(sources)} pinned sources verified by sha256 before use",
        f"/bin holds exactly the {count(len(tools), 'expected file')}, each matching its "
        "pinned sha256 and size",
    ]
    digests_dir = tree.root.parent / "digests"
    images = {image: digest for r in results for image, (_, digest) in r.images().items()}
    recorded_all = read_digests(digests_dir)
    recorded_hex = recorded_all.get(name)
    recorded = f"sha256:{recorded_hex}" if recorded_hex else None
    if recorded_all.keys() & images.keys():
        # Every image of the chain must equal its recorded digest, not only the last one:
        # a change anywhere is a change of the chain, recorded on purpose or refused.
        problems = check_digests(images.items(), recorded_all)
        if problems:
            raise DigestMismatch(
                f"{name}: the chain's images differ from the digests recorded in "
                f"{digests_dir}:\n  " + "\n  ".join(problems),
                hint="a build that is not reproducible, a change to the tree, or a value "
                     "published by someone else (StageX signs its digests: keep it, it is "
                     "the reference): `rootseed challenge` rebuilds independently and "
                     "shows which files differ; only when digests/ is your own record and "
                     "the change is intended: `rootseed digests --replace`, then commit")
        stages = sorted({tree.packages[r.package].stage for r in results})
        verified.append(
            (f"{count(len(images), 'manifest digest')} equal the recorded ones in "
             if len(images) != 1 else "1 manifest digest equals the recorded one in ")
            + ", ".join(f"digests/{s}.txt" for s in stages))
    chain = Chain(seed.file if seed else None, tuple(
        link(r.package, r.manifest_digest, parse_file(tree.packages[r.package].containerfile))
        for r in results))
    report = BootstrapReport(
        package=name, demo=demo, tree=str(tree.root), manifest_digest=result.manifest_digest,
        cached=result.cached, seconds=0.0,
        seed={"file": seed.file, "sha256": seed.hash} if seed else {},
        sources=sources, tools=tools, verified=verified, recorded_digest=recorded,
        chain=chain)
    if crosscheck is not None:
        report.checks = crosscheck(builder, result)
    report.seconds = time.monotonic() - started
    return report
