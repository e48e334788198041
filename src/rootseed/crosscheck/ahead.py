"""Crosscheck a package while it builds, so the checks fill the cores the build leaves idle.

:func:`rootseed.crosscheck.run.crosscheck` starts once the build is over. Most of its work
does not have to wait: the DDC compilers (gcc, clang and tcc building M2-Planet and
M2-Mesoplanet) need only the pinned sources, and a stage's steps can be replayed as soon as
the stage is in the cache. stage0's chain is sequential at its head (hex0 → … → M2), so a
build with two jobs leaves a core idle for that stretch: :class:`Ahead` builds the DDC
compilers there from the first step on, and starts each stage's checks when the build
reports the stage's last step done. :meth:`Ahead.finish` checks any stage not started yet
and returns the same report, in the same order, as ``crosscheck`` would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from rootseed.crosscheck.compilers import find_compilers
from rootseed.crosscheck.ddc import Diverse
from rootseed.crosscheck.model import ArtifactCheck, Report
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.run import (
    DdcOptions,
    _rerun,
    _unbindable,
    needed_stages,
    run_log_dir,
)
from rootseed.crosscheck.steps import Step, ddc_compile, rerunnable, stage_steps
from rootseed.engine.api import Builder, BuildOptions, copy_tree
from rootseed.fsutil_deep import remove_deep
from rootseed.plan import PlannedRun, StagePlan

_Checks = list[Future[list[ArtifactCheck]]]


class Ahead:
    """One package's crosscheck, started before its build ends (see the module doc)."""

    def __init__(self, builder: Builder, package: str, *, options: BuildOptions,
                 ddc: DdcOptions | None = None, rerun: bool = True,
                 progress: Callable[[str], None] | None = None) -> None:
        self.b, self.package, self.rerun, self.progress = builder, package, rerun, progress
        self.options = replace(options, progress=False, events=None)
        pkg = builder.tree.get(package)
        self.seeds = {s.hash for s in pkg.sources if s.seed}
        plan = builder.plan(package, options=self.options)
        self.stages: dict[str, StagePlan] = {
            s.label: s for s in needed_stages(plan)
            if any(isinstance(i, PlannedRun) for i in s.steps)}
        self.logs = run_log_dir(builder.log_root, package)
        self._stack = contextlib.ExitStack()
        self.work = self._stack.enter_context(builder.scratch())
        self.pool = self._stack.enter_context(ThreadPoolExecutor(
            max_workers=max(1, options.jobs), thread_name_prefix="rootseed-crosscheck"))
        self._lock = threading.Lock()
        self._started: dict[str, Future[_Checks]] = {}
        self._copies = 0
        self.diverse: Diverse | None = None
        compiles = any(ddc_compile(s) or (rerun and rerunnable(s))
                       for stage in self.stages.values() for s in stage_steps(stage))
        if ddc is not None and compiles:
            found, missing = find_compilers(ddc.compilers, ddc.search)
            archives = list(builder.fetch_sources(package).values())
            # submitted first: the compilers build while the chain's head runs, one at a
            # time below --jobs, so the chain (the critical path) keeps a core of its own
            self.diverse = Diverse(self.pool, archives, found, missing, self.work, self.logs,
                                   max(1, options.jobs - 1), progress)

    # -- while the build runs ------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        """A :attr:`BuildOptions.events` hook: a stage's last step is done → check it."""
        if (event.get("package") == self.package and event.get("event") in ("end", "cached")
                and event.get("step") == event.get("steps")):
            self.stage_done(str(event.get("stage")))

    def stage_done(self, label: str) -> None:
        with self._lock:
            if label in self._started or label not in self.stages:
                return
            self._started[label] = self.pool.submit(self._start, label)

    def _start(self, label: str) -> _Checks:
        stage = self.stages[label]
        steps = stage_steps(stage)
        # a cache hit once the build has committed the stage (it waits for that commit)
        entry = self.b.stage_tree(self.package, label, self.options)
        copy: Path | None = None
        if _unbindable(entry) and any(self._sandboxed(s) for s in steps):
            # an overlay view lives in the builder's namespace: sandboxes that cannot
            # start there need a real copy (the Python replays read the view itself, in
            # this process)
            with self._lock:
                self._copies += 1
                copy = self.work / "roots" / str(self._copies)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy_tree(entry.rootfs, copy)
            entry = replace(entry, rootfs=copy, view=False)
        envs = {i.line: dict(i.env) for i in stage.steps if isinstance(i, PlannedRun)}
        futures: _Checks = []
        for step in steps:
            task: Callable[[], list[ArtifactCheck]]
            if self.rerun and rerunnable(step):
                task = partial(_rerun, self.b, self.package, step, entry,
                               envs.get(step.line, {}), self.seeds, self.progress, self.logs,
                               self.diverse)
            elif self.diverse is not None and ddc_compile(step):
                task = partial(self.diverse.m2_step, step, entry)
            else:
                task = partial(replay, step, entry.rootfs, self.seeds)
            futures.append(self.pool.submit(task))
        if copy is not None:  # removed while the build runs, not all at the end
            _remove_when_done(futures, copy)
        return futures

    def _sandboxed(self, step: Step) -> bool:
        """Whether checking ``step`` runs a sandbox on the stage's files."""
        return ((self.rerun and rerunnable(step))
                or (self.diverse is not None and ddc_compile(step)))

    # -- after the build ---------------------------------------------------------------
    def finish(self) -> Report:
        """Check the stages not started yet, wait for every check; the report in file
        order (as :func:`rootseed.crosscheck.run.crosscheck` gives it)."""
        try:
            for label in self.stages:
                self.stage_done(label)
            report = Report(package=self.package, seed_pinned=bool(self.seeds),
                            logs=str(self.logs))
            for label in self.stages:
                for future in self._started[label].result():
                    report.checks.extend(future.result())
            if self.diverse is not None:
                report.ddc = {self.package: self.diverse.toolset.as_dict()}
            return report
        finally:
            self.close()

    def close(self) -> None:
        """Stop what has not started, wait for what runs, remove the work directory."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._stack.close()


def _remove_when_done(futures: _Checks, path: Path) -> None:
    """Remove ``path`` once every one of ``futures`` is done (or cancelled)."""
    left = [len(futures)]
    lock = threading.Lock()

    def done(_: Future[list[ArtifactCheck]]) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            remove_deep(path)

    if not futures:
        remove_deep(path)
    for future in futures:
        future.add_done_callback(done)


class Starter:
    """Starts an :class:`Ahead` (made by ``make``, on a thread of its own) when the build
    of ``package`` first executes a step: a build that is all cache hits starts none, and
    a warm ``bootstrap`` stays as fast as before. Step events that come before it exists
    are handed to it once it does."""

    def __init__(self, package: str, make: Callable[[], Ahead]) -> None:
        self.package = package
        self._make = make
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._ahead: Ahead | None = None
        self.error: BaseException | None = None  # why it could not start (then: none)

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            if (self._thread is None and event.get("event") == "start"
                    and event.get("package") == self.package):
                self._thread = threading.Thread(target=self._start, daemon=True,
                                                name="rootseed-crosscheck-ahead")
                self._thread.start()
            ahead = self._ahead
            if ahead is None:
                if self._thread is not None:
                    self._pending.append(event)
                return
        ahead.on_event(event)

    def _start(self) -> None:
        try:
            ahead = self._make()
        except Exception as e:  # the crosscheck then runs after the build, as before
            self.error = e
            return
        with self._lock:
            self._ahead, pending, self._pending = ahead, self._pending, []
        for event in pending:
            ahead.on_event(event)

    def started(self) -> Ahead | None:
        """The running :class:`Ahead`, or None when none was started (or it failed)."""
        if self._thread is not None:
            self._thread.join()
        return self._ahead
