"""The scheduler: the pure core (Schedule) and the threaded driver (run)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

from rootseed.engine import scheduler
from rootseed.engine.errors import Cancelled, DependencyFailed
from rootseed.engine.scheduler import (
    CycleError,
    Schedule,
    State,
    Task,
    UnknownNeed,
    check_graph,
    critical_path,
)
from rootseed.errors import RootseedError

DIAMOND = {"a": frozenset(), "b": frozenset({"a"}), "c": frozenset({"a"}),
           "d": frozenset({"b", "c"})}


def test_check_graph_orders_needs_first() -> None:
    order = check_graph(DIAMOND)
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")


def test_cycles_and_unknown_needs_are_typed_errors() -> None:
    with pytest.raises(CycleError) as e:
        check_graph({"x": frozenset({"y"}), "y": frozenset({"z"}), "z": frozenset({"x"})})
    assert set(e.value.cycle) == {"x", "y", "z"} and e.value.cycle[0] == e.value.cycle[-1]
    with pytest.raises(UnknownNeed):
        check_graph({"x": frozenset({"nowhere"})})


def test_a_deep_chain_needs_no_recursion() -> None:
    needs = {i: frozenset({i - 1}) if i else frozenset() for i in range(20_000)}
    assert check_graph(needs) == list(range(20_000))


def test_critical_path_weighs_the_longest_remaining_chain() -> None:
    weights = {"a": 1.0, "b": 5.0, "c": 1.0, "d": 2.0}
    cp = critical_path(DIAMOND, weights)
    assert cp == {"d": 2.0, "b": 7.0, "c": 3.0, "a": 8.0}


def test_schedule_orders_ready_tasks_by_priority() -> None:
    s = Schedule(DIAMOND, {"b": 1.0, "c": 9.0})
    assert s.ready() == ["a"]
    s.start("a")
    assert s.ready() == []
    s.finish("a")
    assert s.ready() == ["c", "b"]
    with pytest.raises(ValueError):
        s.start("d")
    with pytest.raises(ValueError):
        s.finish("b")  # not running


def test_a_failure_stops_everything_unless_keep_going() -> None:
    s = Schedule(DIAMOND, {})
    s.start("a")
    s.finish("a")
    s.start("b")
    s.fail("b")
    assert s.state["d"] is State.BLOCKED and s.blocked_by["d"] == "b"
    assert s.state["c"] is State.CANCELLED and s.ready() == [] and s.finished

    independent = {**DIAMOND, "e": frozenset()}
    k = Schedule(independent, {}, keep_going=True)
    k.start("a")
    k.fail("a")
    assert {x: k.state[x] for x in "bcd"} == dict.fromkeys("bcd", State.BLOCKED)
    assert k.blocked_by == {"b": "a", "c": "a", "d": "a"}
    assert k.ready() == ["e"]


def _tasks(work: Mapping[str, object], needs: Mapping[str, frozenset[str]]
           ) -> list[Task[str, str]]:
    def make(key: str) -> Task[str, str]:
        def run(got: Mapping[str, str]) -> str:
            action = work.get(key)
            if isinstance(action, BaseException):
                raise action
            if callable(action):
                action()
            return key + "(" + ",".join(sorted(got.values())) + ")"
        return Task(key=key, needs=needs[key], work=run)
    return [make(k) for k in needs]


def test_run_passes_results_of_needs_only() -> None:
    report = scheduler.run(_tasks({}, DIAMOND))
    assert report.results["d"] == "d(b(a()),c(a()))"
    assert report.first_cause() is None and set(report.seconds) == set(DIAMOND)


def test_run_stops_at_the_first_failure_and_reports_it_first() -> None:
    boom = RootseedError("b broke")
    started_after: list[str] = []
    cancel = threading.Event()
    needs = {**DIAMOND, "slow": frozenset(), "late": frozenset({"slow"})}
    work: dict[str, object] = {"b": boom, "slow": lambda: time.sleep(0.3),
                               "late": lambda: started_after.append("late")}
    settled: list[str] = []
    report = scheduler.run(_tasks(work, needs), cancel=cancel,
                           on_settled=lambda k, _o, _s: settled.append(k))
    assert report.errors == {"b": boom} and report.first_cause() is boom
    assert isinstance(report.blocked["d"], DependencyFailed)
    assert report.blocked["d"].dependency == "b"
    assert isinstance(report.cancelled["late"], Cancelled) and not started_after
    assert cancel.is_set() and sorted(settled) == sorted(needs)
    with pytest.raises(RootseedError) as raised:
        report.raise_first()
    assert raised.value is boom


def test_keep_going_builds_what_does_not_need_the_failure() -> None:
    needs = {**DIAMOND, "e": frozenset(), "f": frozenset({"e"})}
    report = scheduler.run(_tasks({"a": RootseedError("a broke")}, needs), keep_going=True)
    assert set(report.results) == {"e", "f"}
    assert set(report.blocked) == {"b", "c", "d"} and not report.cancelled


def test_an_outside_cancel_starts_nothing_more() -> None:
    cancel = threading.Event()
    needs = {"a": frozenset(), "b": frozenset({"a"})}
    report = scheduler.run(_tasks({"a": cancel.set}, needs), cancel=cancel)
    assert set(report.results) == {"a"} and set(report.cancelled) == {"b"}


def test_the_real_cause_wins_over_its_consequences() -> None:
    knock = Cancelled("stopped because another step failed")
    cause = RootseedError("the real failure")
    needs = {"a": frozenset(), "b": frozenset()}
    report = scheduler.run(_tasks({"a": knock, "b": cause}, needs), keep_going=True)
    assert report.first_cause() is cause


def test_an_interrupt_in_the_calling_thread_stops_the_running_tasks() -> None:
    """Ctrl-C arrives in the thread that called run(), never in a worker: run() sets
    ``cancel`` so the running work can stop (here: the task that only ends when it sees
    the cancel), names what still runs, and lets the interrupt go on once it stopped."""
    cancel = threading.Event()
    told: list[list[str]] = []

    def long() -> str:
        if not cancel.wait(30):
            raise AssertionError("never cancelled")
        return "stopped"

    def interrupt(key: str, _o: object, _s: float) -> None:
        if key == "quick":
            raise KeyboardInterrupt

    tasks = [Task("long", lambda _n: long()), Task("quick", lambda _n: "done"),
             Task("after", lambda _n: "never", needs=frozenset({"quick"}))]
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(tasks, cancel=cancel, on_settled=interrupt, on_interrupt=told.append)
    assert cancel.is_set() and told == [["long"]]


def test_a_linked_event_is_set_with_its_parent() -> None:
    parent = threading.Event()
    mine, other = scheduler.LinkedEvent(parent), scheduler.LinkedEvent(parent)
    mine.set()
    assert mine.is_set() and not other.is_set() and not parent.is_set()
    parent.set()
    assert other.is_set()
