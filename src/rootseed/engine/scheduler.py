"""Run a DAG of tasks: each once its needs are done, the most urgent ready one first,
and on a failure either stop everything or go on with what does not depend on it.

The decisions are a pure state machine (:class:`Schedule`: no threads, no I/O, tested
on its own); :func:`run` drives it with threads. The builder uses it twice: packages in
dependency order, and inside a package its stages (each stage is a chain of actions,
every action needing its predecessor's snapshot, so the stage is the unit that can run
beside another). ``--jobs`` is not a thread count here: the work that needs a processor
takes a :class:`~rootseed.engine.slots.Slots` slot by priority, so cache hits and
waiting never occupy one.

Failures are told apart by type: a task's own exception is its *error*; a task whose
need failed is *blocked* (:class:`~rootseed.engine.errors.DependencyFailed`, naming the
task that failed); a task never started because the run stopped is *cancelled*.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from rootseed.engine.errors import Cancelled, DependencyFailed, Knock
from rootseed.errors import ErrorKind, RootseedError

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class CycleError(RootseedError):
    """The tasks' needs form a cycle (``cycle``: the tasks on it, in order)."""

    kind = ErrorKind.PLAN

    def __init__(self, message: str, *, cycle: Sequence[object]):
        super().__init__(message)
        self.cycle = tuple(cycle)


class UnknownNeed(RootseedError):
    """A task needs a task that is not part of the run."""

    kind = ErrorKind.PLAN


class State(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


def check_graph(needs: Mapping[K, frozenset[K]]) -> list[K]:
    """The tasks in an order where every task comes after its needs (ties: the order
    of ``needs``); :class:`UnknownNeed` or :class:`CycleError` when there is none."""
    for key, wanted in needs.items():
        for need in wanted:
            if need not in needs:
                raise UnknownNeed(f"task {key!r} needs {need!r}, which is not part of the run")
    position = {k: i for i, k in enumerate(needs)}
    order: list[K] = []
    mark: dict[K, int] = {}  # 1: on the current path, 2: placed
    for root in needs:
        if mark.get(root) == 2:
            continue
        path: list[K] = [root]
        todo: list[list[K]] = [sorted(needs[root], key=position.__getitem__)]
        mark[root] = 1
        while path:  # iterative depth-first walk: deep graphs never hit the recursion limit
            if todo[-1]:
                nxt = todo[-1].pop(0)
                if mark.get(nxt) == 1:
                    cycle = [*path[path.index(nxt):], nxt]
                    raise CycleError("cycle: " + " -> ".join(map(str, cycle)), cycle=cycle)
                if mark.get(nxt) != 2:
                    mark[nxt] = 1
                    path.append(nxt)
                    todo.append(sorted(needs[nxt], key=position.__getitem__))
                continue
            done = path.pop()
            todo.pop()
            mark[done] = 2
            order.append(done)
    return order


def critical_path(needs: Mapping[K, frozenset[K]], weight: Mapping[K, float]
                  ) -> dict[K, float]:
    """Each task's weight plus the heaviest chain of tasks that need it (transitively):
    with fewer slots than ready tasks, the one on the longest remaining path goes first."""
    users: dict[K, list[K]] = {k: [] for k in needs}
    for key, wanted in needs.items():
        for need in wanted:
            users[need].append(key)
    result: dict[K, float] = {}
    for key in reversed(check_graph(needs)):
        result[key] = weight.get(key, 0.0) + max((result[u] for u in users[key]), default=0.0)
    return result


class Schedule(Generic[K]):
    """The pure core: which tasks may start, and what a finish or failure changes.

    ``keep_going``: a failure blocks only the tasks that need the failed one (directly or
    not); otherwise the first failure stops every task not yet started.
    """

    def __init__(self, needs: Mapping[K, frozenset[K]], priority: Mapping[K, float],
                 *, keep_going: bool = False):
        self._order = {k: i for i, k in enumerate(check_graph(needs))}
        self._needs = {k: frozenset(v) for k, v in needs.items()}
        self._users: dict[K, list[K]] = {k: [] for k in needs}
        for key, wanted in needs.items():
            for need in wanted:
                self._users[need].append(key)
        self._priority = dict(priority)
        self.keep_going = keep_going
        self.state: dict[K, State] = {k: State.WAITING for k in needs}
        self.blocked_by: dict[K, K] = {}  # blocked task → the failed task that blocked it
        self.stopped = False

    def ready(self) -> list[K]:
        """Waiting tasks whose needs are all done: most urgent first, then plan order."""
        if self.stopped:
            return []
        found = [k for k, s in self.state.items() if s is State.WAITING
                 and all(self.state[n] is State.DONE for n in self._needs[k])]
        return sorted(found, key=lambda k: (-self._priority.get(k, 0.0), self._order[k]))

    def start(self, key: K) -> None:
        if self.state[key] is not State.WAITING or key not in self.ready():
            raise ValueError(f"task {key!r} is not ready to start")
        self.state[key] = State.RUNNING

    def finish(self, key: K) -> None:
        self._running(key)
        self.state[key] = State.DONE

    def fail(self, key: K) -> None:
        """``key`` failed: block what needs it, or (not keep_going) stop the run."""
        self._running(key)
        self.state[key] = State.FAILED
        stack = list(self._users[key])
        while stack:
            user = stack.pop()
            if self.state[user] is State.WAITING:
                self.state[user] = State.BLOCKED
                self.blocked_by[user] = key
                stack.extend(self._users[user])
        if not self.keep_going:
            self.stop()

    def stop(self) -> None:
        """Start nothing more: every waiting task is cancelled."""
        self.stopped = True
        for k, s in self.state.items():
            if s is State.WAITING:
                self.state[k] = State.CANCELLED

    @property
    def running(self) -> list[K]:
        return [k for k, s in self.state.items() if s is State.RUNNING]

    @property
    def finished(self) -> bool:
        return not self.running and not self.ready()

    def _running(self, key: K) -> None:
        if self.state[key] is not State.RUNNING:
            raise ValueError(f"task {key!r} is not running")


@dataclass(frozen=True)
class Task(Generic[K, R]):
    """One node: ``work`` gets the results of its ``needs`` (and only those)."""

    key: K
    work: Callable[[Mapping[K, R]], R]
    needs: frozenset[K] = frozenset()
    priority: float = 0.0


@dataclass
class Report(Generic[K, R]):
    """What a run did: every task is in exactly one of these."""

    order: list[K]  # the tasks as given
    results: dict[K, R] = field(default_factory=dict)
    errors: dict[K, BaseException] = field(default_factory=dict)
    blocked: dict[K, DependencyFailed] = field(default_factory=dict)
    cancelled: dict[K, Cancelled] = field(default_factory=dict)
    seconds: dict[K, float] = field(default_factory=dict)  # of the tasks that ran

    def outcome(self, key: K) -> R | BaseException:
        if key in self.results:
            return self.results[key]
        return self.errors.get(key) or self.blocked.get(key) or self.cancelled[key]

    def first_cause(self) -> BaseException | None:
        """The error to report for the whole run: the first task's own failure that is
        not itself a consequence of another (:class:`Knock`), in task order."""
        own = [self.errors[k] for k in self.order if k in self.errors]
        real = [e for e in own if not isinstance(e, Knock)]
        if real or own:
            return (real or own)[0]
        knocks = [*self.blocked.values(), *self.cancelled.values()]
        return knocks[0] if knocks else None

    def raise_first(self) -> None:
        cause = self.first_cause()
        if cause is not None:
            raise cause


def run(tasks: Sequence[Task[K, R]], *, keep_going: bool = False,
        cancel: threading.Event | None = None, name: str = "rootseed",
        describe: Callable[[K], str] = str,
        on_settled: Callable[[K, R | BaseException, float], None] | None = None,
        on_interrupt: Callable[[Sequence[K]], None] | None = None
        ) -> Report[K, R]:
    """Run ``tasks`` (a thread per running task; see the module docstring for --jobs).

    ``cancel`` is shared with the work (steps look at it) and set here on a failure
    unless ``keep_going``; when someone else sets it, nothing more starts. ``on_settled``
    is called once per task, in the order tasks settle (from the calling thread), with the
    seconds it ran (0 for a task never started).

    An exception in the calling thread (Ctrl-C: KeyboardInterrupt arrives there, never
    in the workers) sets ``cancel`` too, so the running tasks stop (a running sandboxed
    step is killed: see sandbox.execute)
    instead of running to their end; ``on_interrupt`` gets the tasks still running, then
    the exception goes on once they have stopped.
    """
    by_key = {t.key: t for t in tasks}
    schedule: Schedule[K] = Schedule({t.key: t.needs for t in tasks},
                                     {t.key: t.priority for t in tasks}, keep_going=keep_going)
    report: Report[K, R] = Report(order=list(by_key))
    cancel = cancel if cancel is not None else threading.Event()

    began: dict[K, float] = {}

    def settle(key: K, outcome: R | BaseException) -> None:
        if key in began:
            report.seconds[key] = time.monotonic() - began[key]
        if on_settled is not None:
            on_settled(key, outcome, report.seconds.get(key, 0.0))

    def sweep() -> None:
        for key, state in schedule.state.items():
            if key in report.blocked or key in report.cancelled:
                continue
            if state is State.BLOCKED:
                culprit = schedule.blocked_by[key]
                report.blocked[key] = DependencyFailed(
                    f"{describe(key)}: not built because {describe(culprit)}, which it "
                    "needs, failed", dependency=culprit)
                settle(key, report.blocked[key])
            elif state is State.CANCELLED:
                report.cancelled[key] = Cancelled(
                    f"{describe(key)}: not started because another part of the build "
                    "failed")
                settle(key, report.cancelled[key])

    running: dict[Future[R], K] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(tasks)), thread_name_prefix=name) as pool:
        try:
            while True:
                if cancel.is_set() and not schedule.stopped:
                    schedule.stop()
                for key in schedule.ready():
                    schedule.start(key)
                    began[key] = time.monotonic()
                    needed = {n: report.results[n] for n in by_key[key].needs}
                    running[pool.submit(by_key[key].work, needed)] = key
                sweep()
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    key = running.pop(future)
                    error = future.exception()
                    if error is None:
                        report.results[key] = future.result()
                        schedule.finish(key)
                        settle(key, report.results[key])
                    else:
                        report.errors[key] = error
                        schedule.fail(key)
                        if not keep_going:
                            cancel.set()  # running sandboxed steps are killed
                        settle(key, error)
        except BaseException:
            cancel.set()  # the pool waits for the running tasks: make them stop
            if on_interrupt is not None and running:
                on_interrupt(list(running.values()))
            raise
    return report


class LinkedEvent(threading.Event):
    """Set when set itself or when ``parent`` is: the cancel event of a part that may
    stop on its own (a package's stages, with keep_going) and still stops with the whole
    run (Ctrl-C). Only :meth:`is_set` looks at the parent (no one waits on these)."""

    def __init__(self, parent: threading.Event):
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or self.parent.is_set()
