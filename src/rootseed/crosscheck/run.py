"""Crosscheck a package: replay every covered step of its Containerfile in Python."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from rootseed import safefs
from rootseed.console import canonical_json
from rootseed.crosscheck.compilers import DEFAULT_SEARCH, KNOWN, find_compilers
from rootseed.crosscheck.ddc import Diverse
from rootseed.crosscheck.mesoplanet import replay_kept, replay_mesoplanet
from rootseed.crosscheck.model import ArtifactCheck, Report
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.steps import MESOPLANET, Step, ddc_compile, rerunnable, stage_steps
from rootseed.engine.api import Builder, BuildOptions, StageTree, copy_tree
from rootseed.errors import RootseedError
from rootseed.fetch import Fetcher
from rootseed.plan import Plan, PlannedRun, StagePlan
from rootseed.provenance.companions import CROSSCHECK_FILE
from rootseed.settings import Settings
from rootseed.tree import Tree


def needed_stages(plan: Plan) -> list[StagePlan]:
    """The planned stages the target is built from, in file order."""
    return [plan.get(index) for index in plan.reachable()]


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
    logs = run_log_dir(builder.log_root, package)
    report = Report(package=package, logs=str(logs))
    for name in names:
        part = _crosscheck_one(builder, name, options, progress, rerun, ddc,
                               logs if name == package else logs / name)
        if name != package:
            part.checks = [replace(c, stage=f"{name}:{c.stage}") for c in part.checks]
        report.checks.extend(part.checks)
        report.seed_pinned = report.seed_pinned or part.seed_pinned
        if part.ddc is not None:
            report.ddc = {**(report.ddc or {}), name: part.ddc}
    return report


def run_log_dir(root: Path, package: str) -> Path:
    """A new directory for one crosscheck run's logs, kept after the run:
    ``<cache>/logs/<package>/crosscheck-<UTC time>-<random>/``. Each run has its own (made
    by ``mkdtemp``, so two runs on one cache, even started in the same second, never
    write, truncate or read each other's logs)."""
    parent = safefs.ensure_dir(root, root / package)  # never through a planted link
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(tempfile.mkdtemp(prefix=f"crosscheck-{stamp}-", dir=parent))


def _crosscheck_one(builder: Builder, package: str, options: BuildOptions,
                    progress: Callable[[str], None] | None, rerun: bool,
                    ddc: DdcOptions | None, logs: Path) -> Report:
    pkg = builder.tree.get(package)
    plan = builder.plan(package, options=options)
    seeds = {s.hash for s in pkg.sources if s.seed}
    report = Report(package=package, seed_pinned=bool(seeds))
    planned: list[tuple[Step, StageTree, dict[str, str]]] = []
    for stage in needed_stages(plan):
        if not any(isinstance(i, PlannedRun) for i in stage.steps):
            continue
        if progress is not None:
            progress(f"{package}: stage {stage.label}")
        entry = builder.stage_tree(package, stage.label, options)
        envs = {i.line: dict(i.env) for i in stage.steps if isinstance(i, PlannedRun)}
        planned.extend((step, entry, envs.get(step.line, {})) for step in stage_steps(stage))
    compiles = any(ddc_compile(s) or (rerun and rerunnable(s)) for s, _, _ in planned)
    logs.mkdir(parents=True, exist_ok=True)
    # Reruns are sandboxed subprocesses: run them --jobs at a time.
    views = any(_unbindable(entry) for _, entry, _ in planned)
    with contextlib.ExitStack() as stack:
        work = (stack.enter_context(builder.scratch())
                if (ddc and compiles) or views else None)
        if views:
            assert work is not None
            planned = _materialize(planned, work / "roots")
        # (the pool is shut down before the DDC work dir is removed)
        pool = stack.enter_context(ThreadPoolExecutor(
            max_workers=max(1, options.jobs), thread_name_prefix="rootseed-crosscheck"))
        diverse: Diverse | None = None
        if ddc is not None and compiles and work is not None:
            found, missing = find_compilers(ddc.compilers, ddc.search)
            archives = list(builder.fetch_sources(package).values())
            diverse = Diverse(pool, archives, found, missing, work, logs, options.jobs,
                              progress)
        tasks: list[tuple[int, Callable[[], list[ArtifactCheck]]]] = []  # (order, task)
        for step, entry, env in planned:
            if rerun and rerunnable(step):  # the longest: sandboxed runs of the chain
                tasks.append((0, partial(_rerun, builder, package, step, entry, env, seeds,
                                         progress, logs, diverse)))
            elif diverse is not None and ddc_compile(step):
                tasks.append((1, partial(diverse.m2_step, step, entry)))
            else:
                tasks.append((2, partial(replay, step, entry.rootfs, seeds)))
        # Longest first, so the short ones fill the gaps; the results keep file order.
        futures = [pool.submit(task) for _, task in sorted(tasks, key=lambda t: t[0])]
        order = sorted(range(len(tasks)), key=lambda k: tasks[k][0])
        results: list[list[ArtifactCheck]] = [[] for _ in tasks]
        for done, (k, future) in enumerate(zip(order, futures, strict=True), 1):
            results[k] = future.result()
            if progress is not None:
                progress(f"{package}: {done} of {len(futures)} steps checked")
        for checks in results:
            report.checks.extend(checks)
        if diverse is not None:
            report.ddc = diverse.toolset.as_dict()
    return report


def _materialize(planned: list[tuple[Step, StageTree, dict[str, str]]], dest: Path
                 ) -> list[tuple[Step, StageTree, dict[str, str]]]:
    """Real copies of the stage roots that are overlay views no sandbox can bind.

    A view lives in the builder's own mount namespace: rootseed reads it, but a sandbox
    (the reruns, the DDC compilers) cannot bind it from outside that namespace. Where the
    executor names that namespace (:attr:`StageTree.entered`) the sandboxes start there
    and nothing is copied; otherwise the copies are what both the Python replays and the
    sandboxes read."""
    copies: dict[Path, Path] = {}
    out: list[tuple[Step, StageTree, dict[str, str]]] = []
    for step, entry, env in planned:
        if _unbindable(entry):
            if entry.rootfs not in copies:
                copies[entry.rootfs] = dest / str(len(copies))
                dest.mkdir(parents=True, exist_ok=True)
                copy_tree(entry.rootfs, copies[entry.rootfs])
            entry = StageTree(copies[entry.rootfs])
        out.append((step, entry, env))
    return out


def _unbindable(entry: StageTree) -> bool:
    """Whether a sandbox started by rootseed cannot bind ``entry``'s files."""
    return entry.view and entry.entered is None


def _rerun(builder: Builder, package: str, step: Step, entry: StageTree,
           env: dict[str, str], seeds: set[str],
           progress: Callable[[str], None] | None, logs: Path, diverse: Diverse | None = None
           ) -> list[ArtifactCheck]:
    """Check one M2-Mesoplanet step: on the temporaries the build kept when it could
    (:func:`replay_kept`, nothing run again), else by rerunning it; a rerun's log goes to
    this run's own ``logs`` directory."""
    check = diverse.mesoplanet_check(env, entry) if diverse is not None else None
    built = _build_log(builder, package, step)
    kept = (replay_kept(step, entry.rootfs, built, seeds, check)
            if built is not None else None)
    if kept is not None:
        return kept
    if progress is not None:
        progress(f"{package}: stage {step.stage}: rerunning {MESOPLANET}")
    with builder.scratch() as work:
        log = logs / f"rerun-{step.stage}-{step.line}.log"
        log.write_bytes(b"")
        return replay_mesoplanet(step, entry, env, work, log, seeds, check)


#: the most of a build's step log read for the commands M2-Mesoplanet spawned
BUILD_LOG_LIMIT = 64 << 20


def _build_log(builder: Builder, package: str, step: Step) -> str | None:
    """The build's log of ``step`` in the cache (never through a planted link), or None."""
    try:
        data = safefs.read_bytes(builder.log_root,
                                 builder.step_log(package, step.stage, step.line),
                                 BUILD_LOG_LIMIT)
    except (RootseedError, OSError):
        return None
    return data.decode("utf-8", errors="replace")


#: the report beside the package's image, for `rootseed report` (see provenance.chain)
REPORT_FILE = CROSSCHECK_FILE


def save_report(out: Path, report: Report) -> Path | None:
    """Write ``report`` to ``<out>/<package>/crosscheck.json`` if the image is there
    (atomically: a planted symlink there is replaced, never followed)."""
    return save_report_bytes(out, report.package, report_bytes(report))


def report_bytes(report: Report) -> bytes:
    """What crosscheck.json holds: the report without the log directory (a host path,
    different on every run)."""
    data = {k: v for k, v in report.as_dict().items() if k != "logs"}
    return (canonical_json(data) + "\n").encode()


def save_report_bytes(out: Path, package: str, data: bytes) -> Path | None:
    """Write ``<out>/<package>/crosscheck.json`` if the image is there, atomically."""
    layout = out / package
    if not layout.is_dir() or layout.is_symlink():
        return None
    return safefs.write_atomic(out, layout / REPORT_FILE, data, create=False)


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
