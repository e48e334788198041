"""Crosscheck a package: replay every covered step of its Containerfile in Python."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from rootseed.build.cache import CachedStage
from rootseed.build.engine import Builder, BuildOptions
from rootseed.console import canonical_json
from rootseed.containerfile import (
    DEFAULT_PATH,
    Containerfile,
    Copy,
    Run,
    Stage,
    Workdir,
    parse_file,
)
from rootseed.crosscheck.compilers import DEFAULT_SEARCH, KNOWN, find_compilers
from rootseed.crosscheck.ddc import Diverse
from rootseed.crosscheck.mesoplanet import replay_mesoplanet
from rootseed.crosscheck.model import ArtifactCheck, Report
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.steps import MESOPLANET, Step, ddc_compile, rerunnable, stage_steps
from rootseed.fetch import Fetcher
from rootseed.fsutil import atomic_write
from rootseed.settings import Settings
from rootseed.tree import Tree


def needed_stages(cf: Containerfile, target: Stage | None = None) -> list[Stage]:
    """The stages the target (default: the last) is built from, in file order."""
    target = target or cf.stages[-1]
    seen: set[int] = set()
    todo = [target]
    while todo:
        stage = todo.pop()
        if stage.index in seen:
            continue
        seen.add(stage.index)
        refs = [stage.base] + [i.from_ for i in stage.instructions
                               if isinstance(i, Copy) and i.from_ is not None]
        todo.extend(s for s in (cf.stage(r) for r in refs) if s is not None)
    return [s for s in cf.stages if s.index in seen]


@dataclass(frozen=True)
class DdcOptions:
    """Diverse double-compiling: which compilers, and where to look for them."""

    compilers: Sequence[str] = KNOWN
    search: str = DEFAULT_SEARCH


def crosscheck(builder: Builder, package: str, *, with_deps: bool = False,
               rerun: bool = True, options: BuildOptions | None = None,
               progress: Callable[[str], None] | None = None,
               ddc: DdcOptions | None = None) -> Report:
    """Replay ``package``'s covered steps (and its dependencies' with ``with_deps``) on
    the exact files its stages hold. With ``rerun``, M2-Mesoplanet steps run again in the
    sandbox to keep their temporaries (see :mod:`rootseed.crosscheck.mesoplanet`). With
    ``ddc``, the C-compiler steps are redone by M2-Planet and M2-Mesoplanet built from
    the package's pinned sources by independent compilers (:mod:`rootseed.crosscheck.ddc`)."""
    options = options or BuildOptions(progress=False)
    names = builder.tree.order([package]) if with_deps else [package]
    report = Report(package=package)
    for name in names:
        part = _crosscheck_one(builder, name, options, progress, rerun, ddc)
        if name != package:
            part.checks = [replace(c, stage=f"{name}:{c.stage}") for c in part.checks]
        report.checks.extend(part.checks)
        report.seed_pinned = report.seed_pinned or part.seed_pinned
        if part.ddc is not None:
            report.ddc = {**(report.ddc or {}), name: part.ddc}
    return report


def _crosscheck_one(builder: Builder, package: str, options: BuildOptions,
                    progress: Callable[[str], None] | None, rerun: bool,
                    ddc: DdcOptions | None) -> Report:
    pkg = builder.tree.get(package)
    cf = parse_file(pkg.containerfile)
    seeds = {s.hash for s in pkg.sources if s.seed}
    report = Report(package=package, seed_pinned=bool(seeds))
    planned: list[tuple[Step, CachedStage]] = []
    for stage in needed_stages(cf):
        if not any(isinstance(i, Run) for i in stage.instructions):
            continue
        if progress is not None:
            progress(f"{package}: stage {stage.label}")
        entry = builder.stage(package, stage.label, options)
        steps = stage_steps(stage, _start_workdir(builder, package, cf, stage, options,
                                                  entry.state))
        planned.extend((step, entry) for step in steps)
    compiles = any(ddc_compile(s) or (rerun and rerunnable(s)) for s, _ in planned)
    logs = builder.cache.logs / package
    logs.mkdir(parents=True, exist_ok=True)
    # Reruns are sandboxed subprocesses: run them --jobs at a time; results keep file order.
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(builder.cache.workdir()) if ddc and compiles else None
        # (the pool is shut down before the DDC work dir is removed)
        pool = stack.enter_context(ThreadPoolExecutor(
            max_workers=max(1, options.jobs), thread_name_prefix="rootseed-crosscheck"))
        diverse: Diverse | None = None
        if ddc is not None and work is not None:
            found, missing = find_compilers(ddc.compilers, ddc.search)
            archives = list(builder.fetcher.fetch_package(pkg).values())
            diverse = Diverse(pool, archives, found, missing, work, logs, options.jobs,
                              progress)
        tasks: list[Callable[[], list[ArtifactCheck]]] = []
        for step, entry in planned:
            if rerun and rerunnable(step):
                tasks.append(partial(_rerun, builder, package, step, entry, seeds, progress,
                                     diverse))
            elif diverse is not None and ddc_compile(step):
                tasks.append(partial(diverse.m2_step, step, entry.rootfs))
            else:
                tasks.append(partial(replay, step, entry.rootfs, seeds))
        for checks in pool.map(lambda task: task(), tasks):
            report.checks.extend(checks)
        if diverse is not None:
            report.ddc = diverse.toolset.as_dict()
    return report


def _rerun(builder: Builder, package: str, step: Step, entry: CachedStage, seeds: set[str],
           progress: Callable[[str], None] | None, diverse: Diverse | None = None
           ) -> list[ArtifactCheck]:
    if progress is not None:
        progress(f"{package}: stage {step.stage}: rerunning {MESOPLANET}")
    with builder.cache.workdir() as work:
        log = builder.cache.logs / package / f"crosscheck-{step.stage}-{step.line}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        env = _environment(entry.state)
        return replay_mesoplanet(
            step, entry.rootfs, env, work, log, seeds,
            diverse.mesoplanet_check(env, entry.rootfs) if diverse is not None else None)


def _environment(state: dict[str, Any]) -> dict[str, str]:
    """The ENV of a stage (as its RUNs see it; the stage's ARGs are not kept)."""
    config = state.get("config")
    pairs = config.get("env", []) if isinstance(config, dict) else []
    env = {str(k): str(v) for k, v in pairs}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _start_workdir(builder: Builder, package: str, cf: Containerfile, stage: Stage,
                   options: BuildOptions, own: dict[str, object]) -> str | None:
    """The WORKDIR a stage starts with: its base stage's last one, ``/`` from scratch."""
    if stage.base == "scratch":
        return "/"
    base = cf.stage(stage.base)
    if base is not None:
        state = builder.stage(package, base.label, options).state
    elif not any(isinstance(i, Workdir) for i in stage.instructions):
        state = own  # an image base: the stage keeps the image's WORKDIR to its end
    else:
        return None
    config = state.get("config")
    workdir = config.get("workdir", "") if isinstance(config, dict) else ""
    return str(workdir) or "/"


#: the report beside the package's image, for `rootseed report` (see provenance.chain)
REPORT_FILE = "crosscheck.json"


def save_report(out: Path, report: Report) -> Path | None:
    """Write ``report`` to ``<out>/<package>/crosscheck.json`` if the image is there
    (atomically: a planted symlink there is replaced, never followed)."""
    layout = out / report.package
    if not layout.is_dir() or layout.is_symlink():
        return None
    return atomic_write(layout / REPORT_FILE, (canonical_json(report.as_dict()) + "\n")
                        .encode())


def crosscheck_package(settings: Settings, tree: Tree, package: str, *,
                       with_deps: bool = False, rerun: bool = True,
                       progress: Callable[[str], None] | None = None,
                       ddc: DdcOptions | None = None) -> Report:
    """:func:`crosscheck` with a builder made from ``settings`` (sources verified first;
    stages not in the cache are built, nothing is written to ``<out>/<package>/``)."""
    fetcher = Fetcher(settings.cache_dir, settings.mirrors, offline=settings.offline,
                      progress=not settings.json, base_dir=tree.root)
    try:
        builder = Builder(tree, cache_dir=settings.cache_dir, out=settings.out,
                          fetcher=fetcher)
        return crosscheck(builder, package, with_deps=with_deps, rerun=rerun,
                          progress=progress, ddc=ddc,
                          options=BuildOptions(jobs=settings.jobs, debug=settings.debug,
                                               progress=not settings.json))
    finally:
        fetcher.close()
