"""Crosscheck a package: replay every covered step of its Containerfile in Python."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

from rootseed.build.cache import CachedStage
from rootseed.build.engine import Builder, BuildOptions
from rootseed.crosscheck.mesoplanet import replay_mesoplanet
from rootseed.crosscheck.model import ArtifactCheck, Report
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.steps import Step, rerunnable, stage_steps
from rootseed.fetch import Fetcher
from rootseed.plan import Plan, PlannedRun, StagePlan
from rootseed.settings import Settings
from rootseed.tree import Tree


def needed_stages(plan: Plan) -> list[StagePlan]:
    """The planned stages the target is built from, in file order."""
    return [plan.get(index) for index in plan.reachable()]


def crosscheck(builder: Builder, package: str, *, with_deps: bool = False,
               rerun: bool = True, options: BuildOptions | None = None,
               progress: Callable[[str], None] | None = None) -> Report:
    """Replay ``package``'s covered steps (and its dependencies' with ``with_deps``) on
    the exact files its stages hold. With ``rerun``, M2-Mesoplanet steps run again in the
    sandbox to keep their temporaries (see :mod:`rootseed.crosscheck.mesoplanet`)."""
    options = options or BuildOptions(progress=False)
    names = builder.tree.order([package]) if with_deps else [package]
    report = Report(package=package)
    for name in names:
        part = _crosscheck_one(builder, name, options, progress, rerun)
        if name != package:
            part.checks = [replace(c, stage=f"{name}:{c.stage}") for c in part.checks]
        report.checks.extend(part.checks)
        report.seed_pinned = report.seed_pinned or part.seed_pinned
    return report


def _crosscheck_one(builder: Builder, package: str, options: BuildOptions,
                    progress: Callable[[str], None] | None, rerun: bool) -> Report:
    pkg = builder.tree.get(package)
    plan = builder.plan(package, options=options)
    seeds = {s.hash for s in pkg.sources if s.seed}
    report = Report(package=package, seed_pinned=bool(seeds))
    tasks: list[Callable[[], list[ArtifactCheck]]] = []
    for stage in needed_stages(plan):
        if not any(isinstance(i, PlannedRun) for i in stage.steps):
            continue
        if progress is not None:
            progress(f"{package}: stage {stage.label}")
        entry = builder.stage(package, stage.label, options)
        steps = stage_steps(stage)
        envs = {i.line: dict(i.env) for i in stage.steps if isinstance(i, PlannedRun)}
        for step in steps:
            if rerun and rerunnable(step):
                tasks.append(partial(_rerun, builder, package, step, entry,
                                     envs[step.line], seeds, progress))
            else:
                tasks.append(partial(replay, step, entry.rootfs, seeds))
    # Reruns are sandboxed subprocesses: run them --jobs at a time; results keep file order.
    with ThreadPoolExecutor(max_workers=max(1, options.jobs),
                            thread_name_prefix="rootseed-crosscheck") as pool:
        for checks in pool.map(lambda task: task(), tasks):
            report.checks.extend(checks)
    return report


def _rerun(builder: Builder, package: str, step: Step, entry: CachedStage,
           env: dict[str, str], seeds: set[str],
           progress: Callable[[str], None] | None) -> list[ArtifactCheck]:
    if progress is not None:
        progress(f"{package}: stage {step.stage}: rerunning M2-Mesoplanet")
    with builder.cache.workdir() as work:
        log = builder.cache.logs / package / f"crosscheck-{step.stage}-{step.line}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        return replay_mesoplanet(step, entry.rootfs, env, work, log,
                                 seeds)


def crosscheck_package(settings: Settings, tree: Tree, package: str, *,
                       with_deps: bool = False, rerun: bool = True,
                       progress: Callable[[str], None] | None = None) -> Report:
    """:func:`crosscheck` with a builder made from ``settings`` (sources verified first;
    stages not in the cache are built, nothing is written to ``<out>/<package>/``)."""
    fetcher = Fetcher(settings.cache_dir, settings.mirrors, offline=settings.offline,
                      progress=not settings.json, base_dir=tree.root)
    try:
        builder = Builder(tree, cache_dir=settings.cache_dir, out=settings.out,
                          fetcher=fetcher)
        return crosscheck(builder, package, with_deps=with_deps, rerun=rerun,
                          progress=progress,
                          options=BuildOptions(jobs=settings.jobs, debug=settings.debug,
                                               progress=not settings.json))
    finally:
        fetcher.close()
