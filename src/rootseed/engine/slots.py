"""``--jobs`` slots handed out by priority (the most urgent waiting stage goes first)."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Slots:
    """At most ``n`` holders at a time; a freed slot goes to the waiter with the highest
    priority (ties: the one that asked first), not to whichever thread wakes first."""

    def __init__(self, n: int) -> None:
        self._free = max(1, n)
        self._cond = threading.Condition()
        self._waiting: list[tuple[float, int]] = []  # heap of (-priority, ticket)
        self._tickets = itertools.count()

    @contextmanager
    def hold(self, priority: float = 0.0) -> Iterator[None]:
        with self._cond:
            me = (-priority, next(self._tickets))
            heapq.heappush(self._waiting, me)
            try:
                while self._free == 0 or self._waiting[0] != me:
                    self._cond.wait()
            except BaseException:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._cond.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._free -= 1
            self._cond.notify_all()  # a next waiter may take a slot that is still free
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                self._cond.notify_all()
