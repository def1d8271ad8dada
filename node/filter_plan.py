"""How one segment of a filtered (hybrid) search is searched: a pure decision from the segment's index kind, its
rows, how many of them pass the filter (and are live), and the search's shape. No I/O, no clock.

Strategies (docs/DESIGN.md 8.12):

- ``NOTHING``: no row passes; the segment adds no hit.
- ``EXACT``: brute force over the passing rows only (:func:`node.kernels.exact_rows`: for one query or a few, faiss
  computes the listed rows' distances where they lie; for batches, the rows are gathered a block at a time for faiss'
  BLAS kernels). Chosen when the search asks for it (``"exact": true``), for every FLAT segment (the passing rows
  cost less than the segment), and when the passing rows are few
  (:func:`coordinator.hybrid.evaluate.prefer_exact`: at most ``max(k, 2,048,000 / dim)`` rows, or under 7 % of the
  segment, where every filtered ANN search loses recall and the scan is cheap).
- ``INDEX``: the kind's own search with the passing rows as its live mask, exactly as deletes are filtered: a faiss
  ID selector inside IVF_FLAT / IVF_SQ8 / IVF_PQ and HNSW; oversampling and dropping, widened until enough rows are
  found, for ANNOY, RNSG and binary IVF. IVF ``nprobe`` and HNSW ``ef`` are widened by BREADTH / selectivity
  (:func:`~coordinator.hybrid.evaluate.widened`; at most ``nlist``, and :data:`EF_CAP` unless the search asked for
  more), and queries that come back with fewer than ``min(k, passing)`` hits are searched again exactly over the
  passing rows (``exact_when_short``). A segment whose every row passes is searched as ``Search`` searches it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from coordinator.hybrid.evaluate import prefer_exact, widened
from coordinator.model import IndexType
from node.index_base import DEFAULT_EF, DEFAULT_NPROBE
from node.kernels import GATHER_BLOCK_BYTES
from node.params import SearchParams

EF_CAP = 4096  # HNSW ef a filter may widen to (a caller's larger ef is kept)
# How much wider than 1 / selectivity an index is searched under a filter: a selector leaves fewer candidates per
# probed list or graph hop, and 1 / selectivity alone kept recall at 50 % of 100k x 128 rows at 0.947 (IVF_FLAT)
# and 0.920 (HNSW) for default params (benchmarks/hybrid_bench.py).
BREADTH = 2.0
IVF_KINDS = frozenset({IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_PQ})
# Bytes a row costs while a segment's filter is evaluated and searched: the mask, the mask of one clause, one of a
# group and a comparison's temporary (bool each), and the packed bits handed to faiss.
MASK_BYTES_PER_ROW = 5


class Strategy(enum.Enum):
    NOTHING = "nothing"
    EXACT = "exact"
    INDEX = "index"


@dataclass(frozen=True, slots=True)
class SegmentShape:
    """What the plan of one segment depends on: its index kind (FLAT for a segment searched from its rows), whether
    it holds binary vectors, its rows, the rows that pass the filter and are live, the collection's dimension
    (bits for binary vectors) and, for a built IVF index, its lists."""

    kind: IndexType
    binary: bool
    rows: int
    passing: int
    dimension: int
    nlist: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    strategy: Strategy
    params: SearchParams  # INDEX: the search params, widened by the selectivity
    exact_when_short: bool = False  # INDEX: queries with fewer than min(k, passing) hits are searched exactly
    why: str = ""


def plan(shape: SegmentShape, k: int, nq: int, params: SearchParams, exact: bool = False) -> SegmentPlan:
    """The plan of one segment for ``nq`` queries ``k`` wide (``k`` at most the passing rows)."""
    if shape.passing <= 0 or k <= 0:
        return SegmentPlan(Strategy.NOTHING, params, why="no row passes")
    if exact:
        return SegmentPlan(Strategy.EXACT, params, why="exact search requested")
    if shape.passing >= shape.rows:
        return SegmentPlan(Strategy.INDEX, params, why="every row passes: the segment's own search")
    if shape.kind is IndexType.FLAT:
        return SegmentPlan(Strategy.EXACT, params, why="flat: the passing rows only")
    if prefer_exact(shape.passing, shape.rows, k, shape.dimension):
        return SegmentPlan(Strategy.EXACT, params, why="few rows pass")
    fraction = (shape.passing / shape.rows if shape.rows else 0.0) / BREADTH
    if shape.kind in IVF_KINDS:
        nprobe = params.nprobe or DEFAULT_NPROBE
        cap = shape.nlist if shape.nlist is not None else nprobe
        wide = replace(params, nprobe=widened(nprobe, fraction, max(cap, nprobe)))
        return SegmentPlan(Strategy.INDEX, wide, True, "index with the rows as its selector, nprobe widened")
    if shape.kind is IndexType.HNSW:
        ef = max(params.ef or DEFAULT_EF, k)
        wide = replace(params, ef=widened(ef, fraction, max(EF_CAP, ef)))
        return SegmentPlan(Strategy.INDEX, wide, True, "graph with the rows as its selector, ef widened")
    return SegmentPlan(Strategy.INDEX, params, True, "index oversampled, rows outside the filter dropped")


def short_queries(found: np.ndarray, k: int, passing: int) -> np.ndarray:
    """The queries (indices) whose hit counts ``found`` fall short of ``min(k, passing)``."""
    return np.flatnonzero(np.asarray(found) < min(k, passing))


def filter_cost(segment_rows: Sequence[int], window: int) -> int:
    """Bytes a filtered search holds beyond an ordinary search's (``coordinator.limits.search_cost``): each of the
    ``window`` segments searched at once evaluates its mask (MASK_BYTES_PER_ROW a row) and may gather passing
    rows (GATHER_BLOCK_BYTES)."""
    if not segment_rows:
        return 0
    at_once = sorted(segment_rows, reverse=True)[: max(1, window)]
    return sum(rows * MASK_BYTES_PER_ROW + GATHER_BLOCK_BYTES for rows in at_once)
