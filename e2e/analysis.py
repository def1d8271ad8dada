"""Pure analysis of a run: what must be stored given the recorded operations, how long writes were out, how
often searches failed. No I/O: every function is tested without a cluster."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from e2e.outcomes import ACKED, ERROR, FAILED, UNKNOWN, Op


@dataclass(frozen=True)
class Expectation:
    """Sets of ids the stored data is judged against."""

    acked_inserts: frozenset[int]
    unknown_inserts: frozenset[int]
    refused_inserts: frozenset[int]  # FAILED or ERROR: the answer claims nothing was applied
    acked_deletes: frozenset[int]
    unknown_deletes: frozenset[int]
    refused_deletes: frozenset[int]

    @property
    def must_be_present(self) -> frozenset[int]:
        return self.acked_inserts - self.acked_deletes - self.unknown_deletes

    @property
    def count_bounds(self) -> tuple[int, int]:
        """[rows that must be there, rows that may be there] after quiescence."""
        may = (self.acked_inserts | self.unknown_inserts) - self.acked_deletes
        return len(self.must_be_present), len(may)


def expectation(ops: Iterable[Op]) -> Expectation:
    ins: dict[str, set[int]] = {ACKED: set(), UNKNOWN: set(), FAILED: set()}
    dels: dict[str, set[int]] = {ACKED: set(), UNKNOWN: set(), FAILED: set()}
    for op in ops:
        bucket = FAILED if op.outcome == ERROR else op.outcome
        if op.kind == "insert":
            ins[bucket].update(range(op.first_id, op.first_id + op.count))
        elif op.kind == "delete":
            dels[bucket].update(op.ids)
    # An id deleted once with an acknowledgement is gone whatever other delete attempts said.
    unknown_deletes = dels[UNKNOWN] - dels[ACKED]
    refused_deletes = dels[FAILED] - dels[ACKED] - unknown_deletes
    return Expectation(frozenset(ins[ACKED]), frozenset(ins[UNKNOWN]), frozenset(ins[FAILED]),
                       frozenset(dels[ACKED]), frozenset(unknown_deletes), frozenset(refused_deletes))


@dataclass(frozen=True)
class DataVerdict:
    lost: tuple[int, ...]  # acknowledged, never deleted, absent
    resurrected: tuple[int, ...]  # deletion acknowledged, present
    applied_despite_refusal: tuple[int, ...]  # insert refused yet present, or delete refused yet absent
    unknown_applied: int  # unknown-outcome inserts that are present
    phantoms: tuple[int, ...]  # present but never sent
    wrong_vectors: tuple[int, ...]


def judge(exp: Expectation, present: set[int], wrong_vectors: Sequence[int], stored_ids: set[int]) -> DataVerdict:
    """``present``: the sent ids GetVectorsByID found; ``stored_ids``: every id the segments list."""
    lost = exp.must_be_present - present
    resurrected = exp.acked_deletes & present
    refused_present = exp.refused_inserts & present
    refused_deletes_absent = (exp.refused_deletes & exp.acked_inserts) - present - exp.unknown_deletes
    sent = exp.acked_inserts | exp.unknown_inserts | exp.refused_inserts
    return DataVerdict(
        lost=tuple(sorted(lost)), resurrected=tuple(sorted(resurrected)),
        applied_despite_refusal=tuple(sorted(refused_present | refused_deletes_absent)),
        unknown_applied=len(exp.unknown_inserts & present),
        phantoms=tuple(sorted(stored_ids - sent)), wrong_vectors=tuple(sorted(wrong_vectors)),
    )


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    excused: float  # seconds of it during which no writer could be elected

    @property
    def length(self) -> float:
        return self.end - self.start - self.excused


def _overlap(a0: float, a1: float, intervals: Iterable[tuple[float, float]]) -> float:
    return sum(max(0.0, min(a1, b1) - max(a0, b0)) for b0, b1 in intervals)


def write_outages(ack_times: Sequence[float], start: float, end: float,
                  excused: Sequence[tuple[float, float]], top: int = 3) -> list[Window]:
    """The longest gaps without an acknowledged write in [start, end], each less the time within ``excused``
    intervals (no writer electable), longest first."""
    points = [start, *sorted(t for t in ack_times if start <= t <= end), end]
    windows = [Window(a, b, _overlap(a, b, excused)) for a, b in pairwise(points) if b > a]
    return sorted(windows, key=lambda w: w.length, reverse=True)[:top]


def in_windows(op: Op, windows: Iterable[tuple[float, float]]) -> bool:
    return any(op.sent < b and op.done > a for a, b in windows)


@dataclass(frozen=True)
class Rates:
    total: int
    ok: int
    excluded: int
    by_code: dict[str, int]

    @property
    def success(self) -> float:
        return self.ok / self.total if self.total else 1.0


def rates(ops: Iterable[Op], kind: str, excluded_windows: dict[int, list[tuple[float, float]]]) -> Rates:
    """Success of operations of ``kind``; an operation through a proxy while that proxy was down (its own
    restart, which a load balancer would route around) is excluded and counted apart."""
    total = ok = excluded = 0
    codes: Counter[str] = Counter()
    for op in ops:
        if op.kind != kind:
            continue
        if in_windows(op, excluded_windows.get(op.proxy, [])):
            excluded += 1
            continue
        total += 1
        codes[op.code if op.outcome != ACKED else "0"] += 1
        ok += op.outcome == ACKED
    return Rates(total, ok, excluded, dict(codes))


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def growth(samples: Sequence[float]) -> float:
    """Median of the last third over the median of the first third (1.0 = flat)."""
    n = len(samples)
    if n < 3:
        return 1.0
    first, last = median(samples[: n // 3]), median(samples[-(n // 3):])
    return last / first if first > 0 else (1.0 if last == 0 else float("inf"))
