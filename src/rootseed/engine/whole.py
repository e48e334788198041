"""Whole-tree builds (``rootseed build --all`` / ``--stage STAGE``): every package in
dependency order (side by side where they do not need each other), going on past
failures.

A package whose dependency failed (or cannot be built) is *blocked* and not attempted;
one with a problem of its own is *broken*; one whose sources no mirror has is *sources
missing*. The report says for each what happened, with the first line of the error and
the failing step's log file when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rootseed.engine.engine import Builder, BuildOptions, BuildResult
from rootseed.engine.errors import DependencyFailed
from rootseed.engine.stage import StepFailed
from rootseed.errors import ErrorKind, RootseedError
from rootseed.tree import Tree

#: How many missing source files a report line names.
SHOW_MISSING = 5


class Outcome(StrEnum):
    BUILT = "built"
    CACHED = "cached"
    FAILED = "failed"
    SOURCES_MISSING = "sources missing"
    BROKEN = "broken"  # a problem of its own (rootseed check names it)
    BLOCKED = "blocked"  # needs a package that was not built

    @property
    def ok(self) -> bool:
        return self in (Outcome.BUILT, Outcome.CACHED)


@dataclass(frozen=True)
class PackageOutcome:
    name: str
    outcome: Outcome
    manifest_digest: str | None = None
    error: str | None = None  # the first line of what went wrong
    log: Path | None = None  # the failing step's full log
    blocked_by: str | None = None  # the package it needed that was not built
    seconds: float = 0.0
    #: its image was taken whole from a shared cache (engine/shared.py): its origin
    shared: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {"package": self.name, "outcome": self.outcome.value,
                "manifest_digest": self.manifest_digest, "error": self.error,
                "log": None if self.log is None else str(self.log),
                "blocked_by": self.blocked_by, "seconds": round(self.seconds, 3),
                **({"shared": dict(self.shared)} if self.shared is not None else {})}


@dataclass(frozen=True)
class WholeReport:
    outcomes: tuple[PackageOutcome, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    @property
    def ok(self) -> bool:
        return all(o.outcome.ok for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        return {o.value: self.count(o) for o in Outcome}


def select(tree: Tree, stage: str | None) -> list[str]:
    """The packages of ``stage`` (all when None) and what they need, broken ones
    included (so the report names them), in dependency order."""
    loaded = [n for n in tree.packages if stage is None or tree.packages[n].stage == stage]
    broken = [n for n, p in tree.broken.items() if n not in tree.packages
              and (stage is None or _stage_of(tree, p.file) == stage)]
    if stage is not None and not loaded and not broken:
        stages = sorted({p.stage for p in tree.packages.values()})
        raise RootseedError(f"no package in stage {stage!r}",
                            hint=f"stages of this tree: {', '.join(stages)}",
                            kind=ErrorKind.USAGE)
    wanted = set(loaded)
    stack = list(loaded)
    while stack:
        package = tree.packages.get(stack.pop())
        for dep in package.deps if package is not None else ():
            if dep not in wanted and dep in tree.packages:
                wanted.add(dep)
                stack.append(dep)
    return sorted(broken) + [n for n in tree.order_all() if n in wanted]


def _stage_of(tree: Tree, file: Path) -> str | None:
    try:
        return file.relative_to(tree.root).parts[0]
    except (ValueError, IndexError):
        return None


def build_whole(tree: Tree, builder: Builder, names: Iterable[str], options: BuildOptions,
                on_outcome: Callable[[int, int, PackageOutcome], None] | None = None
                ) -> WholeReport:
    """Build ``names`` (see :func:`select`) going on past failures: packages that do not
    need each other are built side by side within ``--jobs``; ``on_outcome(i, n,
    outcome)`` as each one is settled (for progress)."""
    order = list(dict.fromkeys(names))
    done: dict[str, PackageOutcome] = {}

    def settle(outcome: PackageOutcome) -> None:
        done[outcome.name] = outcome
        if on_outcome is not None:
            on_outcome(len(done), len(order), outcome)

    buildable: list[str] = []
    for name in order:
        blocked = tree.blocker(name)
        if blocked is None:
            buildable.append(name)
            continue
        culprit, problem = blocked
        if culprit == name:
            settle(PackageOutcome(name, Outcome.BROKEN,
                                  error=problem.describe(tree.root.parent)))
        else:
            settle(PackageOutcome(name, Outcome.BLOCKED, blocked_by=culprit,
                                  error=f"needs {culprit}: {problem.describe(tree.root.parent)}"))

    crashed: list[BaseException] = []

    def settled(name: str, result: BuildResult | BaseException, seconds: float) -> None:
        if isinstance(result, BuildResult):
            settle(PackageOutcome(name, Outcome.CACHED if result.cached else Outcome.BUILT,
                                  manifest_digest=result.manifest_digest, seconds=seconds,
                                  shared=result.shared))
        elif isinstance(result, DependencyFailed) and isinstance(result.dependency, str):
            dep = result.dependency
            before = done.get(dep)
            state = before.outcome if before is not None else Outcome.FAILED
            how = "" if dep in tree.packages[name].deps else " (through what it needs)"
            settle(PackageOutcome(name, Outcome.BLOCKED, blocked_by=dep,
                                  error=f"needs {dep}{how}, which was not built ({state})"))
        elif isinstance(result, RootseedError):
            settle(_failure(tree, builder, name, result, seconds))
        else:  # a bug, not a build failure: reported after the others settled
            crashed.append(result)

    builder.build_each(buildable, options, on_settled=settled)
    if crashed:
        raise crashed[0]
    return WholeReport(tuple(done[n] for n in order))


def _failure(tree: Tree, builder: Builder, name: str, error: RootseedError, seconds: float
             ) -> PackageOutcome:
    if error.kind is ErrorKind.FETCH:
        # the cache holds every source that was fetched and verified; name the rest
        missing = [s.file for s in tree.packages[name].sources
                   if builder.fetcher.cache.lookup(s.hash) is None]
        shown = ", ".join(missing[:SHOW_MISSING]) + (
            f" and {len(missing) - SHOW_MISSING} more" if len(missing) > SHOW_MISSING
            else "")
        return PackageOutcome(name, Outcome.SOURCES_MISSING, seconds=seconds,
                              error=f"not fetched: {shown}" if missing else _first_line(error))
    step = error if isinstance(error, StepFailed) else None  # errors keep their type
    return PackageOutcome(name, Outcome.FAILED, error=_first_line(error),
                          log=None if step is None else step.log, seconds=seconds)


def _first_line(error: RootseedError) -> str:
    lines = error.message.splitlines()
    return lines[0] if lines else type(error).__name__
