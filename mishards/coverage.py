"""Which segments of one search are answered, and by which sub-requests in flight (pure, no I/O, no clock).

A search is a set of segments. Each sub-request (an *attempt*: one node, some of the segments) is either
the first routing of its segments, a retry of an attempt that failed, or a hedge of a slow attempt. The
answer is the merge of accepted attempts whose segment sets are pairwise disjoint and together cover the
search: a node's result cannot be split per segment, and two results over the same segment would count it
twice. ``Coverage`` keeps that invariant:

- an answer is accepted only when none of its segments is covered yet; accepting it retires (to be
  cancelled) every attempt in flight that overlaps the covered segments, since none of those could be
  accepted any more;
- ``orphans`` are the segments neither covered nor held by an attempt in flight: the fan-out routes them
  again (after a failure, or after a retired attempt held segments nobody else holds);
- ``due`` lists the attempts whose time to be considered for a hedge has come (``check_at``), each once per
  time set.

It also records, for the one search, the nodes that failed (never used again in it) and the nodes found
slow (used again only as a last resort).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    node: str
    segments: tuple[int, ...]
    started: float  # clock value when it was sent
    hedge_of: int | None = None  # the attempt this one hedges


class Coverage:
    def __init__(self, segments: Iterable[int]) -> None:
        self.wanted: tuple[int, ...] = tuple(dict.fromkeys(segments))
        self.covered: set[int] = set()
        self.inflight: dict[int, Attempt] = {}
        self.failed_nodes: set[str] = set()
        self.slow_nodes: set[str] = set()
        self._check: dict[int, float] = {}  # attempt -> clock value to consider it for a hedge
        self._next_id = 0

    @property
    def complete(self) -> bool:
        return len(self.covered) == len(self.wanted)

    def start(self, node: str, segments: Iterable[int], now: float, hedge_of: int | None = None) -> Attempt:
        """Record a new attempt in flight and return it."""
        attempt = Attempt(self._next_id, node, tuple(segments), now, hedge_of)
        self._next_id += 1
        self.inflight[attempt.id] = attempt
        return attempt

    def answered(self, attempt_id: int) -> tuple[bool, list[Attempt]]:
        """A good answer of ``attempt_id`` arrived: ``(accepted, attempts retired)``.

        Not accepted when some of its segments are already covered (or the attempt was retired before):
        its answer is dropped. Accepted: its segments are covered, and the attempts in flight that overlap
        them are retired and returned, for the caller to cancel.
        """
        attempt = self.inflight.pop(attempt_id, None)
        if attempt is None or not self.covered.isdisjoint(attempt.segments):
            return False, []
        self.covered.update(attempt.segments)
        retired = [a for a in self.inflight.values() if not self.covered.isdisjoint(a.segments)]
        for a in retired:
            del self.inflight[a.id]
        return True, retired

    def failed(self, attempt_id: int) -> Attempt | None:
        """``attempt_id`` failed: its node is not used again in this search. Returns the attempt (None when
        it was retired already)."""
        attempt = self.inflight.pop(attempt_id, None)
        if attempt is not None:
            self.failed_nodes.add(attempt.node)
        return attempt

    def withdraw(self, attempt_id: int) -> Attempt | None:
        """``attempt_id`` is no longer in flight (cut short by the proxy), its node not failed: its segments
        become orphans unless held elsewhere. Returns the attempt (None when it was retired already)."""
        return self.inflight.pop(attempt_id, None)

    def retire_all(self) -> list[Attempt]:
        """Every attempt still in flight (the search is over: cancel them)."""
        retired = list(self.inflight.values())
        self.inflight.clear()
        return retired

    def orphans(self) -> tuple[int, ...]:
        """Segments neither covered nor held by an attempt in flight, in the search's order."""
        held = set(self.covered)
        for a in self.inflight.values():
            held.update(a.segments)
        return tuple(s for s in self.wanted if s not in held)

    def check_at(self, attempt_id: int, when: float) -> None:
        """Consider ``attempt_id`` for a hedge at clock value ``when`` (if it is still in flight then)."""
        if attempt_id in self.inflight:
            self._check[attempt_id] = when

    def due(self, now: float) -> list[Attempt]:
        """Attempts in flight whose check time has come; each time set is used once."""
        ready = [i for i, when in self._check.items() if when <= now or i not in self.inflight]
        for i in ready:
            del self._check[i]
        return [self.inflight[i] for i in ready if i in self.inflight]

    def next_due(self) -> float | None:
        """The clock value of the next check of an attempt in flight (None: none is set)."""
        times = [when for i, when in self._check.items() if i in self.inflight]
        return min(times) if times else None

    def hedged(self, attempt: Attempt) -> None:
        """A hedge was sent for ``attempt``: its node is slow for the rest of this search."""
        self.slow_nodes.add(attempt.node)

    def avoid(self) -> frozenset[str]:
        """Nodes new attempts of this search should keep off: failed ones, and slow ones."""
        return frozenset(self.failed_nodes | self.slow_nodes)
