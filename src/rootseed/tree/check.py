"""``rootseed check``: everything that can be known about a tree without building it.

The load already records package.toml, placeholder, ``version_from``, reference and
cycle problems (:class:`~rootseed.tree.Tree`). This adds, for each package directory,
what planning every stage shows (one planner: :mod:`rootseed.plan`):

* every stage plans; each subpackage has its stage ``package-<sub>``;
* every image a stage reads is built by the tree (rootseed never pulls);
* every ``COPY``/``ADD`` from ``fetch`` names a declared source file, every build
  context path exists in the package directory (a wildcard may match nothing, as
  BuildKit's ``AllowEmptyWildcard`` allows);
* every ``<ID>_SOURCE``/``<ID>_VERSION``/``<ID>_GIT_SHA`` and ``VERSION*`` the file
  declares or uses gets a value from StageX's build args (a source without a version of
  its own gets none, a package without a version no ``VERSION*``);
* other names used with no value are warnings (BuildKit expands them to nothing).

Pure except for reading the Containerfiles and looking at the package directories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rootseed.containerfile import Arg, Containerfile, parse_file
from rootseed.errors import RootseedError
from rootseed.names import BadFileName, first_bad_name
from rootseed.plan import (
    ContextPath,
    FetchPath,
    Plan,
    PlannedCopy,
    plan_package,
)
from rootseed.tree import Package, Problem, ProblemKind, Severity, Tree

#: Build args StageX derives from a package's version.
VERSION_ARGS = frozenset({"VERSION", "VERSION_UNDER", "VERSION_DASH", "VERSION_MAJOR",
                          "VERSION_MAJOR_MINOR", "VERSION_STRIP_SUFFIX"})
_SOURCE_ARG = re.compile(r"(?P<id>[A-Za-z0-9_]+)_(?P<what>SOURCE|VERSION|GIT_SHA)")
_WILDCARD = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class CheckReport:
    problems: tuple[Problem, ...]
    packages: tuple[str, ...]  # the packages checked
    planned: int  # package directories whose every stage planned

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


@dataclass
class _Directory:
    name: str  # "<stage>-<dir>"
    packages: list[Package] = field(default_factory=list)


def check_tree(tree: Tree, names: Iterable[str] = (), build_args: Mapping[str, str] | None = None
               ) -> CheckReport:
    """Check ``names`` (default: the whole tree); unknown names raise as ``Tree.get`` does."""
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if name not in tree.packages and name not in tree.broken:
            tree.get(name)  # the "no package ... did you mean" error
    directories: dict[str, _Directory] = {}
    for name in sorted(tree.packages):
        package = tree.packages[name]
        if wanted and name not in wanted:
            continue
        directories.setdefault(package.directory_name,
                               _Directory(package.directory_name)).packages.append(package)
    selected = {p.name for d in directories.values() for p in d.packages} | set(wanted)
    selected |= set(directories)
    problems = [p for p in tree.problems
                if not wanted or p.package is None or p.package in selected]
    known = {(p.kind, p.file, p.line, p.message) for p in problems}
    planned = 0
    for directory in directories.values():
        if directory.name in tree.broken or any(p.name in tree.broken
                                                for p in directory.packages):
            continue  # its load problem is reported; planning would repeat it
        found, ok = _check_directory(tree, directory, dict(build_args or {}))
        planned += ok
        for problem in found:
            key = (problem.kind, problem.file, problem.line, problem.message)
            if key not in known:
                known.add(key)
                problems.append(problem)
    problems.sort(key=lambda p: (str(p.file), p.line or 0, p.kind.value, p.message))
    checked = tuple(sorted(wanted or tree.packages))
    return CheckReport(problems=tuple(problems), packages=checked, planned=planned)


def _check_directory(tree: Tree, directory: _Directory, build_args: Mapping[str, str]
                     ) -> tuple[list[Problem], bool]:
    first = directory.packages[0]
    cf_path = first.containerfile
    add = _Found(cf_path, directory.name)
    problems = add.problems
    try:
        cf = parse_file(cf_path, display=_display(cf_path, tree.root))
        plan = plan_package(first, build_args=build_args, all_stages=True, containerfile=cf)
    except RootseedError as e:
        add(ProblemKind.PLAN, e.message, hint=e.hint)
        return problems, False
    for package in directory.packages:
        if package.target is not None and cf.stage(package.target) is None:
            add(ProblemKind.NO_SUBPACKAGE_STAGE,
                f"no stage {package.target!r} for subpackage {package.name}",
                hint=f"StageX builds it with --target {package.target}: add "
                     f"`FROM ... AS {package.target}` or drop it from subpackages")
    _check_images(tree, plan, add)
    _check_copies(first, plan, add)
    bad = first_bad_name(first.directory)
    if bad is not None:
        error = BadFileName(first.directory, bad)
        add(ProblemKind.BAD_FILE_NAME, error.message, hint=error.hint)
    _check_arguments(first, cf, plan, build_args, add)
    return problems, True


class _Found:
    """Collects the problems of one package directory's Containerfile."""

    def __init__(self, file: Path, package: str) -> None:
        self.file = file
        self.package = package
        self.problems: list[Problem] = []

    def __call__(self, kind: ProblemKind, message: str, line: int | None = None,
                 hint: str | None = None) -> None:
        self.problems.append(Problem(kind, self.file, message, package=self.package,
                                     line=line, hint=hint))


def _check_images(tree: Tree, plan: Plan, add: _Found) -> None:
    for ref, line in plan.images():
        if tree.package_for_image(ref.reference) is None:
            prefix = tree.namespace + "/"
            if ref.reference.startswith(prefix):
                continue  # a reference to nothing in the namespace: the load reported it
            add(ProblemKind.UNKNOWN_IMAGE, f"image {ref.reference!r} is not built by this "
                "tree", line=line, hint="rootseed never pulls images: refer to a package as "
                f"{prefix}<stage>-<name>, or to a stage of this file")


def _check_copies(package: Package, plan: Plan, add: _Found) -> None:
    files = sorted(s.file for s in package.sources)
    for stage in plan.stages:
        for step in stage.steps:
            if not isinstance(step, PlannedCopy):
                continue
            for source in step.sources:
                if isinstance(source, FetchPath):
                    _check_fetch(source.path, files, step.line, add)
                elif isinstance(source, ContextPath):
                    _check_context(package.directory, source.path, step.line, add)


def _check_fetch(path: str, files: list[str], line: int, add: _Found) -> None:
    first = PurePosixPath(path).parts[0] if PurePosixPath(path).parts else "."
    if first in (".", "/"):
        return
    if _WILDCARD.search(first):
        return  # may match nothing (BuildKit: AllowEmptyWildcard)
    if first not in files:
        add(ProblemKind.UNKNOWN_SOURCE, f"fetch/{path} is not a declared source file",
            line=line, hint="declared: " + (", ".join(files) or "no sources"))


def _check_context(directory: Path, path: str, line: int, add: _Found) -> None:
    pure = PurePosixPath(path)
    if ".." in pure.parts:
        add(ProblemKind.MISSING_CONTEXT_FILE, f"{path!r} is outside the package directory",
            line=line)
        return
    if _WILDCARD.search(path):
        return  # may match nothing (BuildKit: AllowEmptyWildcard)
    target = directory.joinpath(*pure.parts) if pure.parts else directory
    if not (target.exists() or target.is_symlink()):
        add(ProblemKind.MISSING_CONTEXT_FILE, f"{path!r} is not in the package directory "
            f"{directory.name}/", line=line)


def _check_arguments(package: Package, cf: Containerfile, plan: Plan,
                     build_args: Mapping[str, str], add: _Found) -> None:
    """StageX's arguments the file declares without a default, or uses with no value."""
    given = {**package.build_args(), **build_args}
    args: list[tuple[str, int]] = [(name, a.line) for a in cf.global_args
                                   for name, default in a.args if default is None]
    for stage in cf.stages:
        args += [(name, i.line) for i in stage.instructions if isinstance(i, Arg)
                 for name, default in i.args if default is None]
    used = [(name, step.line) for stage in plan.stages for step in stage.steps
            for name in sorted(step.undeclared)]
    used += [(name, stage.line) for stage in plan.stages for name in sorted(stage.undeclared)]
    for name, line in args + used:
        if name in given:
            continue
        missing = _stagex_argument(package, name)
        if missing is not None:
            add(missing[0], missing[1], line=line, hint=missing[2])
    for name, line in used:
        if name not in given and _stagex_argument(package, name) is None:
            add(ProblemKind.UNDECLARED_VARIABLE, f"${{{name}}} has no value here and "
                "expands to nothing", line=line, hint=f"declare it (ARG {name}) or set it")


def _stagex_argument(package: Package, name: str
                     ) -> tuple[ProblemKind, str, str] | None:
    """Why StageX gives ``name`` no value for this package, when it is one of its args."""
    if name in VERSION_ARGS:
        return (ProblemKind.NO_VERSION, f"{name} has no value: the package has no version",
                "set [package] version (or version_from)")
    m = _SOURCE_ARG.fullmatch(name)
    if m is None:
        return None
    wanted = m.group("id")
    for source in package.sources:
        if source.id.upper() == wanted:
            if m.group("what") == "GIT_SHA":
                return (ProblemKind.UNKNOWN_SOURCE, f"{name} has no value: source "
                        f"{source.id!r} has no git_sha", "set git_sha in its [sources] table")
            return (ProblemKind.UNKNOWN_SOURCE, f"{name} has no value: source {source.id!r} "
                    "has no version of its own (StageX passes <ID>_SOURCE/<ID>_VERSION only "
                    "then)", f"add version = \"...\" to [sources.{source.id}]")
    if m.group("what") == "VERSION":
        return None  # e.g. ARG PYTHON_VERSION for the user: not necessarily a source
    return (ProblemKind.UNKNOWN_SOURCE, f"{name} names no declared source "
            f"(sources: {', '.join(s.id for s in package.sources) or 'none'})",
            "declare the source in package.toml [sources.<id>] or fix the name")


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.parent).as_posix()
    except ValueError:
        return str(path)

