"""Admission of heavy requests on a node: a memory budget, a cap on heavy searches running, and a FIFO queue.

Each heavy request (a search, an insert) is charged the memory it will hold at its peak, estimated from its
fields before any work (``coordinator.limits``). It starts at once when the queue is empty and it fits (the
budget, and for a heavy search, estimated at 64 MB or more, the cap on heavy searches running); otherwise it
waits its turn in a FIFO queue for at most ``timeout`` seconds. A request that could never fit the budget is
refused at once (OUT_OF_MEMORY); one that finds the queue full or waits too long gets a "Server busy ...
retry later" status. The queue holds at most ``max_queued`` requests: they wait in gRPC worker threads, and
the others must stay free for the calls that do not queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coordinator.limits import (
    HEAVY_SEARCH_BYTES,
    SearchShape,
    busy,
    cpu_count,
    memory_limit,
    over_budget,
    search_cost,
)
from coordinator.model import Segment

if TYPE_CHECKING:
    from node.settings import NodeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AdmissionStats:
    """What the node's /metrics shows of admission."""

    budget_bytes: int
    in_use_bytes: int
    running_searches: int
    max_searches: int
    queued: int
    admitted: int
    refused_over_budget: int
    refused_busy: int


What = str | Callable[[], str]  # a request's name in errors, or what makes it (only an error needs it)


def _text(what: What) -> str:
    return what if isinstance(what, str) else what()


@dataclass(slots=True)
class _Ticket:
    cost: int
    search: bool


class _Hold:
    """What :meth:`Admission.admit` returns: entering starts the request (or raises), leaving gives back what it
    held. A plain class rather than a generator context manager: one is entered by every search."""

    __slots__ = ("_admission", "_cost", "_search", "_ticket", "_what")

    def __init__(self, admission: Admission, what: What, cost: int, search: bool) -> None:
        self._admission = admission
        self._what = what
        self._cost = cost
        self._search = search
        self._ticket: _Ticket | None = None

    def __enter__(self) -> bool:
        admission = self._admission
        if self._cost > admission.budget:
            with admission._cond:
                admission._over_budget += 1
            raise over_budget(_text(self._what), self._cost, admission.budget)
        ticket = _Ticket(self._cost, self._search)
        waited = admission._enter(self._what, ticket)
        self._ticket = ticket
        return waited

    def __exit__(self, *exc: object) -> None:
        if self._ticket is not None:
            self._admission._release(self._ticket)
            self._ticket = None


class Admission:
    def __init__(self, budget_bytes: int, max_searches: int, max_queued: int, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if budget_bytes <= 0 or max_searches < 1 or max_queued < 0 or timeout < 0:
            raise ValueError("admission needs a positive budget, max_searches >= 1, max_queued >= 0, timeout >= 0")
        self.budget = budget_bytes
        self.max_searches = max_searches
        self.max_queued = max_queued
        self.timeout = timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[_Ticket] = deque()
        self._in_use = 0
        self._searches = 0
        self._admitted = 0
        self._over_budget = 0
        self._busy = 0

    def admit(self, what: What, cost: int, search: bool = True) -> AbstractContextManager[bool]:
        """Hold ``cost`` bytes (and, for a search, a search slot) while the block runs; the block is told
        whether the request waited in the queue (what it read before may be stale then).

        Raises OverBudget at once when ``cost`` exceeds the whole budget, Busy when the queue is full or the
        request waited ``timeout`` seconds without starting; ``what`` (or what it returns, when it is a function)
        names the request in those errors.
        """
        return _Hold(self, what, max(0, int(cost)), search)

    def _release(self, ticket: _Ticket) -> None:
        with self._cond:
            self._in_use -= ticket.cost
            if ticket.search:
                self._searches -= 1
            if self._queue:  # only queued requests wait on the condition
                self._cond.notify_all()

    def search(self, nq: int, topk: int, segs: Sequence[Segment], threads: int,
               query_bytes: int) -> AbstractContextManager[bool]:
        """Admission of a search of ``nq`` queries, ``topk`` wide, over ``segs`` (see :func:`search_cost`); a heavy
        one (HEAVY_SEARCH_BYTES or more) also takes a search slot."""
        width = min(topk, sum(s.live_count for s in segs))
        cost = search_cost(SearchShape(nq, width, len(segs), threads, query_bytes))
        return self.admit(lambda: f"A search of nq {nq} topk {topk} over {len(segs)} segments", cost,
                          search=cost >= HEAVY_SEARCH_BYTES)

    def _fits(self, ticket: _Ticket) -> bool:
        if ticket.search and self._searches >= self.max_searches:
            return False
        return self._in_use + ticket.cost <= self.budget

    def _start(self, ticket: _Ticket) -> None:
        self._in_use += ticket.cost
        if ticket.search:
            self._searches += 1
        self._admitted += 1

    def _enter(self, what: What, ticket: _Ticket) -> bool:
        """Start ``ticket`` now (False) or after waiting its turn (True)."""
        with self._cond:
            if not self._queue and self._fits(ticket):
                self._start(ticket)
                return False
            if len(self._queue) >= self.max_queued:
                self._busy += 1
                raise busy(_text(what), f"the queue is full: {len(self._queue)} requests waiting")
            self._queue.append(ticket)
            deadline = self._clock() + self.timeout
            try:
                while not (self._queue[0] is ticket and self._fits(ticket)):
                    left = deadline - self._clock()
                    if left <= 0:
                        self._busy += 1
                        log.info("%s waited %.1f s for the node's search memory / slots; refused as busy",
                                 _text(what), self.timeout)
                        raise busy(_text(what), f"waited {self.timeout:g} s for memory or a search slot")
                    self._cond.wait(left)
                self._start(ticket)
                return True
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now (or be first now)

    def stats(self) -> AdmissionStats:
        with self._cond:
            return AdmissionStats(self.budget, self._in_use, self._searches, self.max_searches, len(self._queue),
                                  self._admitted, self._over_budget, self._busy)


def from_settings(settings: NodeSettings) -> Admission:
    """The node's admission, sized from this machine where the settings leave it automatic."""
    memory = memory_limit()
    admission = Admission(settings.request_memory_bytes(memory), settings.max_searches_for(cpu_count()),
                          settings.max_queued, settings.queue_timeout)
    log.info("admission: request memory budget %d MB (machine %d MB), %d searches at once, %d may wait %.0f s",
             admission.budget >> 20, memory >> 20, admission.max_searches, admission.max_queued, admission.timeout)
    return admission
