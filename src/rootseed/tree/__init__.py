"""The package tree: ``<root>/<stage>/<name>/package.toml`` + ``Containerfile``.

:meth:`Tree.load` registers the packages StageX's ``src/targets.py`` registers: one per
directory holding a Containerfile and a package.toml, or, when the package.toml lists
``subpackages``, one per subpackage (``<stage>-<sub>``, built with ``--target
package-<sub>``) and none for the directory itself. ``--tree`` may name a checkout (with
``packages/``, ``digests/`` beside it) or its ``packages/`` directory.

A broken package (bad TOML, a bad hash, a reference to nothing, a cycle) does not stop
the load: its :class:`Problem` is kept in :attr:`Tree.problems`, it and its dependents
cannot be built (:meth:`Tree.blocker`), and everything else works.
"""

from __future__ import annotations

import dataclasses
import difflib
import heapq
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.containerfile import Containerfile, parse_file
from rootseed.errors import ErrorKind, RootseedError
from rootseed.tree.loader import RawPackage, read_package_toml, resolve_source
from rootseed.tree.model import NO_VERSION_TAG, Package, Source, arg_prefix
from rootseed.tree.problems import (
    Problem,
    ProblemError,
    ProblemKind,
    Severity,
    UnbuildableError,
)
from rootseed.tree.references import strip_tag
from rootseed.tree.scan import image_references


class TreeError(RootseedError):
    """A package tree that cannot be read as one (names, namespaces, package.toml)."""

    kind = ErrorKind.TREE


__all__ = ["Package", "Problem", "ProblemKind", "Severity", "Source", "Tree",
           "UnbuildableError", "arg_prefix"]

DEFAULT_NAMESPACE = "stagex"
CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")
#: The subpackage stage StageX builds (``--target package-<sub>``).
SUBPACKAGE_TARGET = "package-{sub}"


@dataclass(frozen=True)
class Tree:
    root: Path  # the packages directory
    namespace: str
    packages: dict[str, Package]  # every package that loaded, by image name
    images: dict[str, str]  # image name → package name (one package per image)
    problems: tuple[Problem, ...] = ()
    #: package name → the error that makes it unbuildable (own problems only; a name
    #: may be absent from :attr:`packages` when its package.toml did not load)
    broken: Mapping[str, Problem] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, *, build_args: Mapping[str, str] | None = None,
             only: Iterable[str] | None = None) -> Tree:
        """Load the tree at ``root``; ``build_args`` (``--build-arg``) take part in the
        dependency scan as they do in the build (one planner: :mod:`rootseed.plan`).

        ``only``: the packages a command is about (``build NAME``): every package.toml is
        still read (image names, versions, duplicates), but only the Containerfiles of
        these and of what they need, directly or not, are parsed and planned (StageX's
        tree has 513 images; a warm rebuild of one should not plan them all). The
        packages loaded are exactly what a full load gives for them; packages outside
        that closure are left out, and so are their Containerfile problems. A name that
        is no image of the tree loads everything (the error then suggests names)."""
        return _Loader(packages_dir(root), dict(build_args or {})).load(
            None if only is None else tuple(only))

    # -- looking up ----------------------------------------------------------------------
    def get(self, name: str) -> Package:
        package = self.packages.get(name)
        if package is None:
            if name in self.broken:
                raise UnbuildableError(name, self.broken[name])
            close = similar_names(name, [*self.packages, *self.images])
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else "run `rootseed list` to see the packages of this tree")
            raise TreeError(f"no package {name!r} in the tree at {self.root}", hint=hint,
                            kind=ErrorKind.USAGE, package=name)
        return package

    def package_for_image(self, ref: str) -> str | None:
        """``<ns>/<stage>-<name>[:tag]`` → package name, or None if not an image of this tree."""
        bare = strip_tag(ref)
        prefix = self.namespace + "/"
        if not bare.startswith(prefix):
            return None
        return self.images.get(bare[len(prefix):])

    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    def blocker(self, name: str) -> tuple[str, Problem] | None:
        """Why ``name`` cannot be built: (the broken package, its problem), where the
        broken package is ``name`` itself or one it needs; None when it can be built."""
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self.broken:
                return current, self.broken[current]
            package = self.packages.get(current)
            if package is not None:
                stack.extend(sorted(package.deps, reverse=True))
        return None

    def buildable(self) -> list[str]:
        """Every package that can be built, sorted by name."""
        return sorted(n for n in self.packages if self.blocker(n) is None)

    # -- ordering ------------------------------------------------------------------------
    def order(self, names: Iterable[str]) -> list[str]:
        """The packages ``names`` need, dependencies first; ties broken by name.

        Raises :class:`UnbuildableError` when one of them cannot be built."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                blocked = self.blocker(name)
                if blocked is not None:
                    raise UnbuildableError(name, blocked[1],
                                           via=None if blocked[0] == name else blocked[0])
                wanted.add(name)
                stack.extend(self.get(name).deps)
        return _topological(self.packages, wanted)

    def order_all(self) -> list[str]:
        """Every loaded package, dependencies first where the graph allows; those in a
        cycle or needing a package that did not load come last (for listings)."""
        return _topological(self.packages, set(self.packages), lenient=True)


def packages_dir(root: Path) -> Path:
    """``--tree``: a packages directory, or a checkout holding ``packages/``."""
    root = root.resolve()
    if not root.is_dir():
        raise TreeError(f"package tree {root} does not exist",
                        hint="pass --tree DIR: a StageX-style checkout (with packages/) "
                        "or its packages/ directory")
    if not _has_packages(root) and (root / "packages").is_dir():
        return root / "packages"
    return root


def _has_packages(root: Path) -> bool:
    return any(True for n in ("package.toml", *CONTAINERFILE_NAMES) for _ in root.glob(f"*/*/{n}"))


def _topological(packages: Mapping[str, Package], wanted: set[str], *,
                 lenient: bool = False) -> list[str]:
    waiting = {n: {d for d in packages[n].deps if d in wanted} for n in wanted}
    users: dict[str, list[str]] = {n: [] for n in wanted}
    for n, deps in waiting.items():
        for d in deps:
            users[d].append(n)
    ready = [n for n, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for other in users[name]:
            deps = waiting[other]
            deps.discard(name)
            if not deps:
                heapq.heappush(ready, other)
    if len(order) != len(wanted):
        if lenient:
            return order + sorted(wanted - set(order))
        cycle = _find_cycle({n: d for n, d in waiting.items() if d})
        raise TreeError("dependency cycle: " + " -> ".join(cycle),
                        hint="a package cannot need itself, directly or indirectly")
    return order


def _find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    start = min(graph)
    path = [start]
    while True:
        nxt = min(d for d in graph[path[-1]] if d in graph)
        if nxt in path:
            return [*path[path.index(nxt):], nxt]
        path.append(nxt)


def _read_namespace(root: Path) -> str:
    for config in (root / "rootseed.toml", root.parent / "rootseed.toml"):
        if config.exists():
            break
    else:
        return DEFAULT_NAMESPACE
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise TreeError(f"{config}: {e}") from e
    except ValueError as e:  # an integer of more than 4300 digits (int's own limit)
        raise TreeError(f"{config}: not valid TOML: {str(e).split(';')[0]}") from None
    except RecursionError:  # tomllib recurses per nested array/inline table
        raise TreeError(f"{config}: not valid TOML: nested too deeply") from None
    table = data.get("tree", {})
    if not isinstance(table, dict):
        raise TreeError(f"{config}: [tree] must be a table, got {table!r}")
    namespace = table.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace or "/" in namespace:
        raise TreeError(f"{config}: [tree] namespace must be a name without '/', "
                        f"got {namespace!r}")
    return namespace


@dataclass
class _Dir:
    """One package directory and what became of it."""

    name: str  # "<stage>-<dir>"
    stage: str
    directory: Path
    containerfile: Path
    raw: RawPackage | None = None
    images: tuple[str, ...] = ()  # the image names it registers
    parsed: Containerfile | None = None
    unread: bool = False  # package.toml not parsed yet (a lazy load: :meth:`_Loader._read`)


class _Loader:
    def __init__(self, root: Path, build_args: Mapping[str, str]) -> None:
        self.root = root
        self.build_args = build_args
        self.problems: list[Problem] = []
        self.broken: dict[str, Problem] = {}

    def problem(self, problem: Problem, names: Iterable[str] = ()) -> None:
        self.problems.append(problem)
        if problem.severity is Severity.ERROR:
            for name in names:
                self.broken.setdefault(name, problem)

    def load(self, only: tuple[str, ...] | None = None) -> Tree:
        namespace = _read_namespace(self.root)
        dirs = self._directories(lazy=only is not None)
        if not dirs and not self.problems:
            raise TreeError(f"{self.root}: no packages found",
                            hint="expected <stage>/<name>/package.toml and a Containerfile "
                            "below the tree root (or a checkout holding packages/)")
        images = self._register(dirs)
        if only is not None and not all(n in images for n in only):
            return _Loader(self.root, self.build_args).load()  # for the error's hint
        if only is not None:
            packages = self._closure(only, images, namespace)
        else:
            versions = self._versions(dirs, images)
            packages = {}
            for d in dirs:
                if d.raw is None or any(i in self.broken for i in d.images):
                    continue
                packages.update(self._packages(d, versions, images, namespace))
        self._cycles(packages)
        return Tree(root=self.root, namespace=namespace, packages=packages,
                    images={i: i for i in packages}, problems=tuple(self.problems),
                    broken=dict(self.broken))

    # -- directories -----------------------------------------------------------------------
    def _directories(self, *, lazy: bool = False) -> list[_Dir]:
        """Directories with a Containerfile and a package.toml; the rest are warnings.

        ``lazy``: a package.toml that cannot name subpackages (:func:`_may_name_subpackages`)
        is not parsed yet: its directory registers ``<stage>-<dir>``, as it would parsed or
        broken; :meth:`_read` parses it when the package is needed."""
        found: list[_Dir] = []
        for directory, files in _candidate_dirs(self.root):
            stage, dirname = directory.parent.name, directory.name
            name = f"{stage}-{dirname}"
            toml = directory / "package.toml"
            containerfile = next((directory / n for n in CONTAINERFILE_NAMES if n in files),
                                 None)
            if containerfile is None:
                self.problem(Problem(
                    ProblemKind.NO_CONTAINERFILE, toml, "package.toml without a Containerfile: "
                    "not a package (StageX skips it too)", package=name))
                continue
            if "package.toml" not in files:
                self.problem(Problem(
                    ProblemKind.NO_PACKAGE_TOML, containerfile, "Containerfile without a "
                    "package.toml: not a package (StageX skips it too)", package=name))
                continue
            d = _Dir(name=name, stage=stage, directory=directory, containerfile=containerfile,
                     images=(name,), unread=True)
            if not lazy or _may_name_subpackages(toml):
                self._read(d)
            found.append(d)
        return found

    def _read(self, d: _Dir) -> None:
        """Parse ``d``'s package.toml (once): its problems, its images."""
        if not d.unread:
            return
        d.unread = False
        toml = d.directory / "package.toml"
        try:
            d.raw = read_package_toml(toml, stage=d.stage)
        except ProblemError as e:
            self.problem(dataclasses.replace(e.problem, package=d.name), [d.name])
            return
        if d.raw.pname != d.directory.name:
            self.problem(Problem(
                ProblemKind.NAME_MISMATCH, toml, f"{d.raw.pname!r} is not the directory's "
                f"name {d.directory.name!r}", package=d.name, field="[package] name",
                hint="StageX finds a package's Containerfile by its name: rename one"),
                [d.name])
        d.images = tuple(f"{d.stage}-{s}" for s in d.raw.subpackages) or (d.name,)

    def _register(self, dirs: list[_Dir]) -> dict[str, _Dir]:
        """Image name → its directory; an image two directories claim is broken."""
        images: dict[str, _Dir] = {}
        for d in dirs:
            for image in d.images:
                other = images.get(image)
                if other is None:
                    images[image] = d
                    continue
                problem = Problem(
                    ProblemKind.DUPLICATE_IMAGE, d.directory / "package.toml",
                    f"image {image} is also registered by {other.directory / 'package.toml'}",
                    package=image, hint="package and subpackage names must be unique in a stage")
                self.problem(problem, [image, *d.images, *other.images])
        return images

    def _versions(self, dirs: list[_Dir], images: Mapping[str, _Dir]) -> dict[str, str | None]:
        """Directory name → its version, ``version_from`` followed (by image name, as
        StageX looks it up among registered packages and subpackages)."""
        versions: dict[str, str | None] = {}
        for d in dirs:
            self._read(d)
            raw = d.raw
            if raw is None:
                continue
            toml = raw.path
            if raw.version is not None and raw.version_from is not None:
                self.problem(Problem(
                    ProblemKind.BOTH_VERSIONS, toml, "both 'version' and 'version_from' are "
                    "set; version_from wins, as in StageX", package=d.name,
                    field="[package] version_from"))
            seen = [d.name]
            current: _Dir = d
            version: str | None = raw.version
            while current.raw is not None and current.raw.version_from is not None:
                target = current.raw.version_from
                found = images.get(target)
                if found is not None:
                    self._read(found)
                if found is None or found.raw is None or target in self.broken:
                    why = ("no package" if found is None else "a package with a problem:")
                    self.problem(Problem(
                        ProblemKind.VERSION_FROM, current.raw.path,
                        f"{why} {target!r}" + ("" if found is None else
                                               f" ({self.broken[target].describe()})"
                                               if target in self.broken else ""),
                        package=d.name, field="[package] version_from",
                        hint="version_from names a package or subpackage as <stage>-<name>"),
                        d.images)
                    break
                if found.name in seen:
                    self.problem(Problem(
                        ProblemKind.VERSION_FROM, toml, "version_from loops: "
                        + " -> ".join([*seen, found.name]), package=d.name,
                        field="[package] version_from"), d.images)
                    break
                seen.append(found.name)
                current = found
                assert current.raw is not None
                version = current.raw.version
            versions[d.name] = version
        return versions

    def _closure(self, names: Iterable[str], images: Mapping[str, _Dir],
                 namespace: str) -> dict[str, Package]:
        """The packages of ``names`` and of every image they need, directly or not, made as
        a full load makes them (whether a directory's packages load depends only on its own
        problems), in a full load's order (by directory)."""
        made: dict[Path, dict[str, Package]] = {}
        stack = [images[n] for n in names]
        while stack:
            d = stack.pop()
            if d.directory in made:
                continue
            made[d.directory] = {}
            versions = self._versions([d], images)
            if d.raw is None or any(i in self.broken for i in d.images):
                continue
            made[d.directory] = self._packages(d, versions, images, namespace)
            stack.extend(images[dep] for p in made[d.directory].values() for dep in p.deps)
        return {n: p for key in sorted(made) for n, p in made[key].items()}

    # -- packages ----------------------------------------------------------------------------
    def _packages(self, d: _Dir, versions: Mapping[str, str | None],
                  images: Mapping[str, _Dir], namespace: str) -> dict[str, Package]:
        raw = d.raw
        assert raw is not None
        version = versions.get(d.name)
        try:
            sources = tuple(resolve_source(raw.path, sid, table, version)
                            for sid, table in raw.sources.items())
        except ProblemError as e:
            self.problem(dataclasses.replace(e.problem, package=d.name), d.images)
            return {}
        subs = raw.subpackages
        base = Package(
            name=d.name, stage=d.stage, pname=d.directory.name,
            version=version or NO_VERSION_TAG, declared_version=version,
            description=raw.description, license=raw.license, directory=d.directory,
            containerfile=d.containerfile, website=raw.website, platforms=raw.platforms,
            sources=sources, outputs=dict(raw.outputs))
        registered = ({f"{d.stage}-{s}": dataclasses.replace(
            base, name=f"{d.stage}-{s}", pname=s, origin=d.name,
            target=SUBPACKAGE_TARGET.format(sub=s)) for s in subs} if subs
            else {d.name: base})
        # A Containerfile that does not parse or plan leaves the package listed (and
        # broken): its dependencies are unknown.
        deps = self._deps(d, base, images, namespace) or ()
        return {n: dataclasses.replace(p, deps=deps) for n, p in registered.items()}

    def _deps(self, d: _Dir, package: Package, images: Mapping[str, _Dir],
              namespace: str) -> tuple[str, ...] | None:
        """The images the package needs (None when its Containerfile cannot be read)."""
        display = _display(d.containerfile, self.root)
        try:
            d.parsed = parse_file(d.containerfile, display=display)
        except RootseedError as e:
            self.problem(Problem(ProblemKind.CONTAINERFILE, d.containerfile, e.message,
                                 package=d.name, hint=e.hint), d.images)
            return None
        try:
            references = image_references(package, d.parsed, self.build_args)
        except RootseedError as e:
            self.problem(Problem(ProblemKind.PLAN, d.containerfile, e.message,
                                 package=d.name, hint=e.hint), d.images)
            return None
        prefix = namespace + "/"
        deps: set[str] = set()
        for ref, line in references:
            bare = strip_tag(ref)
            if not bare.startswith(prefix):
                continue  # not this tree's: the builder refuses it (it never pulls)
            image = bare[len(prefix):]
            if image in d.images:
                self.problem(Problem(
                    ProblemKind.SELF_REFERENCE, d.containerfile, f"refers to {ref!r}, an "
                    "image of this package itself", package=d.name, line=line,
                    hint="use the stage that makes it (--from=<stage>)"), d.images)
            elif image not in images:
                self.problem(Problem(
                    ProblemKind.UNKNOWN_IMAGE, d.containerfile, f"refers to image {ref!r}, "
                    "which no package in the tree builds", package=d.name, line=line,
                    hint=f"add the package under {self.root} or fix the name "
                         "(<namespace>/<stage>-<name>)"), d.images)
            else:
                deps.add(image)
        return tuple(sorted(deps))

    def _cycles(self, packages: Mapping[str, Package]) -> None:
        """Every strongly connected component with more than one member is a cycle."""
        for component in _components(packages):
            ring = _find_cycle({n: {x for x in packages[n].deps if x in component}
                                for n in component})
            first = packages[ring[0]]
            self.problem(Problem(
                ProblemKind.CYCLE, first.containerfile, "dependency cycle: " + " -> ".join(ring),
                package=first.name, hint="a package cannot need itself, directly or indirectly"),
                sorted(component))


def _candidate_dirs(root: Path) -> list[tuple[Path, frozenset[str]]]:
    """``root/*/*/`` directories holding a package.toml or a Containerfile, sorted: what
    ``root.glob("*/*/<name>")`` finds for each name (links followed, unreadable
    directories skipped); with each, which of those names are regular files there (links
    followed): one listing per directory instead of a look-up per name and per question."""
    found: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
    for stage in _subdirs(str(root)):
        for directory in _subdirs(stage):
            present = _package_files(directory)
            if present is not None:
                # sorted as the paths (part by part), without making a Path to compare
                key = (os.path.basename(stage), os.path.basename(directory))
                found[key] = (directory, present)
    return [(Path(d), present) for _, (d, present) in sorted(found.items())]


#: The names that make a directory a (perhaps broken) package directory.
_PACKAGE_NAMES = frozenset({"package.toml", *CONTAINERFILE_NAMES})


def _package_files(directory: str) -> frozenset[str] | None:
    """Which of :data:`_PACKAGE_NAMES` are regular files in ``directory`` (links followed);
    None when none of them exists there (as ``os.path.exists``: a dangling link does not)."""
    try:
        with os.scandir(directory) as entries:
            named = [e for e in entries if e.name in _PACKAGE_NAMES]
    except OSError:  # not listable (a directory one may enter but not read): ask by name
        paths = [(n, os.path.join(directory, n)) for n in sorted(_PACKAGE_NAMES)]
        if not any(os.path.exists(p) for _, p in paths):
            return None
        return frozenset(n for n, p in paths if os.path.isfile(p))
    if not any(_exists(e) for e in named):
        return None
    return frozenset(e.name for e in named if _is_file(e))


def _exists(entry: os.DirEntry[str]) -> bool:
    """``os.path.exists(entry.path)``: listed, and a link only if it leads somewhere."""
    try:
        return not entry.is_symlink() or os.path.exists(entry.path)
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [e.path for e in entries if _is_dir(e)]
    except OSError:
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _may_name_subpackages(toml: Path) -> bool:
    """Whether ``toml`` could list ``subpackages`` (parse it to know). A TOML key is spelled
    out in the file except in a quoted key with ``\\u``/``\\U`` escapes; a file that cannot
    be read is parsed too (its error is its package's problem)."""
    try:
        data = toml.read_bytes()
    except OSError:
        return True
    return b"subpackages" in data or b"\\u" in data or b"\\U" in data


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return str(path)


def _components(graph: Mapping[str, Package]) -> list[set[str]]:
    """Tarjan's strongly connected components of size > 1 (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            deps = [x for x in graph[node].deps if x in graph]
            if i < len(deps):
                work.append((node, i + 1))
                nxt = deps[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def similar_names(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Names ``name`` may have meant: ``<stage>-<name>`` for a name given without its
    stage (``stage0`` → ``bootstrap-stage0``), then close spellings."""
    pool = sorted(set(names))
    staged = [c for c in pool if c.endswith(f"-{name}")]
    close = difflib.get_close_matches(name, pool, n=n)
    return list(dict.fromkeys([*staged, *close]))[:n]
