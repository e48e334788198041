"""Handwritten OCI image layouts with provenance, for the provenance/trace/report tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rootseed.engine.record import BuildRecord, ParentImage, ResolvedSource
from rootseed.provenance.statement import write_statement

NAMESPACE = "rootseed"
SEED_BYTES = b"not the real seed: a test stand-in\n"
SEED_SHA = hashlib.sha256(SEED_BYTES).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(layout: Path, data: bytes) -> str:
    hexd = sha(data)
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / hexd).write_bytes(data)
    return hexd


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_layout(layout: Path, content: bytes, version: str = "1.0") -> str:
    """A minimal OCI image layout with one layer holding ``content``; returns the digest."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer = _blob(layout, content)
    config = _dumps({"architecture": "386", "os": "linux", "created": "1970-01-01T00:00:01Z",
                     "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer}"]}})
    config_hex = _blob(layout, config)
    manifest = _dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{config_hex}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{layer}", "size": len(content)}],
    })
    manifest_hex = _blob(layout, manifest)
    (layout / "index.json").write_bytes(_dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": f"sha256:{manifest_hex}", "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": version}}],
    }))
    return f"sha256:{manifest_hex}"


def record(package: str, digest: str, *, sources: tuple[ResolvedSource, ...] = (),
           parents: tuple[ParentImage, ...] = (), target: str | None = None) -> BuildRecord:
    return BuildRecord(
        package=package, version="1.0", namespace=NAMESPACE,
        containerfile_sha256=sha(f"FROM for {package}".encode()), target=target,
        build_args={"VERSION": "1.0", "SOURCE_DATE_EPOCH": "1"},
        sources=sources, parents=parents, manifest_digest=digest,
        rootseed_version="0.1.0", context_files={"files/build.kaem": sha(b"kaem")})


def seed_source(seed: bool = True) -> ResolvedSource:
    return ResolvedSource(id="hex0", file="hex0-seed", sha256=SEED_SHA,
                          uri="file:seed/hex0-seed", seed=seed)


def plain_source(name: str) -> ResolvedSource:
    return ResolvedSource(id=name, file=f"{name}.tar.gz", sha256=sha(name.encode()),
                          uri=f"https://example.org/{name}.tar.gz")


def build(out: Path, package: str, *, parents: tuple[str, ...] = (),
          sources: tuple[ResolvedSource, ...] = (), content: bytes | None = None,
          layout: Path | None = None) -> str:
    """Write ``out/<package>`` (or ``layout``) as if the builder had built it; returns digest.

    Each parent's digest is read from ``out/<parent>/index.json`` (what a builder records).
    """
    layout = layout or out / package
    digest = write_layout(layout, content if content is not None else package.encode())
    recorded = tuple(ParentImage(package=p, reference=f"{NAMESPACE}/{p}",
                                 manifest_digest=layout_digest(out / p)) for p in parents)
    write_statement(layout, record(package, digest, sources=sources, parents=recorded))
    return digest


def layout_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


@dataclass(frozen=True)
class Chain:
    out: Path
    seed: str
    child: str
    grandchild: str


# Names no real tree uses, so `trace` finds no package.toml pins for these handwritten images.
SEED_PKG, CHILD_PKG, GRANDCHILD_PKG = "fixture-seed", "fixture-stage0", "fixture-stage1"


def three_level_chain(out: Path, *, seed_marked: bool = True) -> Chain:
    """seed package (FROM scratch, hex0 seed source) → child → grandchild."""
    seed = build(out, SEED_PKG, sources=(seed_source(seed_marked),))
    child = build(out, CHILD_PKG, parents=(SEED_PKG,), sources=(plain_source("stage0-posix"),))
    grandchild = build(out, GRANDCHILD_PKG, parents=(CHILD_PKG,),
                       sources=(plain_source("mescc-tools"),))
    return Chain(out=out, seed=seed, child=child, grandchild=grandchild)


def large_out(out: Path, n: int = 500, *, built: int | None = None) -> list[str]:
    """``n`` images in five stages, each built from one to three earlier ones (a fixed
    pseudo-random DAG), the first from the seed; ``built`` (default all) of them written
    to ``out``. Returns every package name, in build order."""
    stages = ("bootstrap", "core", "pallet", "user", "extra")
    names = [f"{stages[min(i * len(stages) // n, len(stages) - 1)]}-pkg{i:03d}"
             for i in range(n)]
    parents: dict[str, tuple[str, ...]] = {names[0]: ()}
    for i in range(1, n):
        picks = {(i * 7919 + k * 104729) % i for k in range(1 + i % 3)}
        parents[names[i]] = tuple(names[p] for p in sorted(picks))
    for name in names[: built if built is not None else n]:
        build(out, name, parents=parents[name],
              sources=(seed_source(),) if not parents[name] else (plain_source(name),))
    return names
