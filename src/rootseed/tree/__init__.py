"""The package tree: ``<root>/<stage>/<name>/package.toml`` + ``Containerfile``.

``Tree.load`` finds and validates every package, resolves ``version_from``, expands
sources and derives dependencies from each Containerfile's image references.
"""

from __future__ import annotations

import dataclasses
import difflib
import heapq
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.plan import image_references
from rootseed.tree.loader import RawPackage, read_package_toml, resolve_source
from rootseed.tree.model import Package, Source, arg_prefix
from rootseed.tree.references import strip_tag

__all__ = ["Package", "Source", "Tree", "arg_prefix"]

DEFAULT_NAMESPACE = "stagex"
CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")


@dataclass(frozen=True)
class Tree:
    root: Path
    namespace: str
    packages: dict[str, Package]
    images: dict[str, str]  # image name (<stage>-<name> or <stage>-<subpackage>) → package

    @classmethod
    def load(cls, root: Path, *, build_args: Mapping[str, str] | None = None) -> Tree:
        """Load the tree at ``root``; ``build_args`` (``--build-arg``) take part in the
        dependency scan as they do in the build (one planner: :mod:`rootseed.plan`)."""
        root = root.resolve()
        if not root.is_dir():
            raise RootseedError(f"package tree {root} does not exist",
                                hint="pass --tree DIR pointing at a directory of "
                                "<stage>/<name>/package.toml")
        namespace = _read_namespace(root)
        raws = [read_package_toml(p, stage=p.parent.parent.name)
                for p in sorted(root.glob("*/*/package.toml"))]
        if not raws:
            raise RootseedError(f"{root}: no packages found",
                                hint="expected <stage>/<name>/package.toml below the tree root")
        by_name: dict[str, RawPackage] = {}
        for raw in raws:
            if raw.name in by_name:
                raise RootseedError(f"{raw.path}: package {raw.name} is also defined in "
                                    f"{by_name[raw.name].path}")
            by_name[raw.name] = raw
        images = _image_index((r.name, r.stage, r.subpackages) for r in by_name.values())
        packages = {name: _build_package(raw, by_name, images, namespace, build_args)
                    for name, raw in by_name.items()}
        tree = cls(root=root, namespace=namespace, packages=packages, images=images)
        tree.order(packages)  # reject cycles at load time
        return tree

    def get(self, name: str) -> Package:
        package = self.packages.get(name)
        if package is None:
            close = difflib.get_close_matches(name, self.packages, n=3)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else "run `rootseed list` to see the packages of this tree")
            raise RootseedError(f"no package {name!r} in the tree at {self.root}", hint=hint)
        return package

    def package_for_image(self, ref: str) -> str | None:
        """``<ns>/<stage>-<name>[:tag]`` → package name, or None if not an image of this tree."""
        bare = strip_tag(ref)
        prefix = self.namespace + "/"
        if not bare.startswith(prefix):
            return None
        image = bare[len(prefix):]
        return self.images.get(image)

    def order(self, names: Iterable[str]) -> list[str]:
        """The packages ``names`` need, dependencies first; ties broken by name."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.get(name).deps)
        waiting = {n: {d for d in self.packages[n].deps} for n in wanted}
        ready = [n for n, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = heapq.heappop(ready)
            order.append(name)
            for other, deps in waiting.items():
                if name in deps:
                    deps.discard(name)
                    if not deps:
                        heapq.heappush(ready, other)
        if len(order) != len(wanted):
            cycle = _find_cycle({n: d for n, d in waiting.items() if d})
            raise RootseedError("dependency cycle: " + " -> ".join(cycle),
                                hint="a package cannot need itself, directly or indirectly")
        return order


def _read_namespace(root: Path) -> str:
    config = root / "rootseed.toml"
    if not config.exists():
        return DEFAULT_NAMESPACE
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise RootseedError(f"{config}: {e}") from e
    except RecursionError:  # tomllib recurses per nested array/inline table
        raise RootseedError(f"{config}: not valid TOML: nested too deeply") from None
    table = data.get("tree", {})
    if not isinstance(table, dict):
        raise RootseedError(f"{config}: [tree] must be a table, got {table!r}")
    namespace = table.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace or "/" in namespace:
        raise RootseedError(f"{config}: [tree] namespace must be a name without '/', "
                            f"got {namespace!r}")
    return namespace


def _image_index(packages: Iterable[tuple[str, str, tuple[str, ...]]]) -> dict[str, str]:
    """Image name (``<stage>-<name>`` and ``<stage>-<subpackage>``) → package name."""
    index: dict[str, str] = {}
    for name, stage, subpackages in packages:
        index[name] = name
        for sub in subpackages:
            index.setdefault(f"{stage}-{sub}", name)
    return index


def _resolve_version(raw: RawPackage, raws: dict[str, RawPackage]) -> str:
    seen = [raw.name]
    current = raw
    while current.version is None:
        target = current.version_from
        assert target is not None
        if target not in raws:
            raise RootseedError(f"{current.path}: [package] version_from: no package "
                                f"{target!r} in the tree",
                                hint="version_from names a package as <stage>-<name>")
        if target in seen:
            raise RootseedError(f"{raw.path}: version_from loops: "
                                + " -> ".join([*seen, target]))
        seen.append(target)
        current = raws[target]
    return current.version


def _build_package(raw: RawPackage, raws: dict[str, RawPackage], images: dict[str, str],
                   namespace: str, build_args: Mapping[str, str] | None = None) -> Package:
    version = _resolve_version(raw, raws)
    sources = tuple(resolve_source(raw.path, sid, table, version)
                    for sid, table in sorted(raw.sources.items()))
    directory = raw.path.parent
    containerfile = next((directory / n for n in CONTAINERFILE_NAMES
                          if (directory / n).is_file()), None)
    if containerfile is None:
        raise RootseedError(f"{directory}: package {raw.name} has no Containerfile")
    package = Package(
        name=raw.name, stage=raw.stage, pname=raw.pname, version=version,
        description=raw.description, license=raw.license, directory=directory,
        containerfile=containerfile, website=raw.website, platforms=raw.platforms,
        subpackages=raw.subpackages, sources=sources, outputs=dict(raw.outputs),
    )
    deps: set[str] = set()
    prefix = namespace + "/"
    # The images the planner finds (the builder plans the same way, with the same args).
    references = image_references(package, build_args)
    for ref, line in references:
        bare = strip_tag(ref)
        if not bare.startswith(prefix):
            continue
        dep = images.get(bare[len(prefix):])
        if dep is None:
            raise RootseedError(f"{containerfile}:{line}: refers to image {ref!r}, "
                                "which no package in the tree builds",
                                hint=f"add the package under {raw.path.parents[2]} or fix "
                                "the name (<namespace>/<stage>-<name>)")
        if dep != raw.name:
            deps.add(dep)
        elif bare[len(prefix):] == raw.name:
            raise RootseedError(f"{containerfile}:{line}: package {raw.name} refers to "
                                "its own image")
    return dataclasses.replace(package, deps=tuple(sorted(deps)))


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    start = min(graph)
    path = [start]
    while True:
        nxt = min(d for d in graph[path[-1]] if d in graph)
        if nxt in path:
            return [*path[path.index(nxt):], nxt]
        path.append(nxt)
