"""Filtered search of one segment: the plan of :mod:`node.filter_plan` carried out over the segment's index, its
stored rows and the rows that pass (the filter's mask ANDed with the live rows, as a
:class:`~node.kernels.LiveMask`). Pure functions over in-memory structures; results are row offsets.

Every index kind already excludes the rows a ``LiveMask`` leaves out, inside its search (a faiss ID selector) or by
oversampling and dropping them (ANNOY, RNSG, binary IVF), so a filter reaches each kind the way deletes do, with the
planner's widened ``nprobe`` / ``ef``. Whatever a kind returns is checked against the mask once more (a returned row
outside it would be dropped, never answered), and queries left short of ``min(k, passing)`` hits by an approximate
index are searched again exactly over the passing rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK
from node.filter_plan import SegmentShape, Strategy, plan, short_queries
from node.index_base import SegmentIndex
from node.kernels import LiveMask, _drop_deleted, exact_rows
from node.params import SearchParams

Rows = Callable[[], np.ndarray]  # the segment's stored rows (memory-mapped), read only when an exact search needs them


def searched_metric(index: SegmentIndex, params: SearchParams) -> MetricType:
    """The metric a segment answers in: the one the search asks for on a segment searched exactly (FLAT, as
    ``Search`` honours it), the index's own otherwise."""
    if index.kind is IndexType.FLAT and params.metric is not None:
        return params.metric
    return index.metric


def only_passing(result: TopK, passing: LiveMask, k: int, higher_is_better: bool) -> TopK:
    """``result`` (writable arrays) with any row outside ``passing`` removed (the rest keep their order)."""
    ids = np.asarray(result.ids)
    if passing.mask is not None:
        found = ids >= 0
        outside = found.copy()
        outside[found] = ~passing.mask[ids[found]]
        if outside.any():
            return _drop_deleted(np.asarray(result.distances), ids, passing, k, higher_is_better)
    return TopK(np.array(ids, dtype=np.int64), np.array(result.distances, dtype=np.float32))


def segment_search(index: SegmentIndex, rows: Rows, passing: LiveMask, queries: np.ndarray, k: int,
                   params: SearchParams, dimension: int, exact: bool = False) -> TopK:
    """The top ``min(k, passing rows)`` of each query among the rows ``passing`` lets through, as offsets.

    ``rows`` gives the segment's stored vectors (read only for an exact search); ``dimension`` is the collection's
    (bits for binary vectors); ``exact`` forces the exact search over the passing rows.
    """
    metric = searched_metric(index, params)
    hib = metric.higher_is_better
    nq = int(queries.shape[0])
    k = max(0, min(k, passing.live))
    nlist = index.effective_params.get("nlist")
    shape = SegmentShape(index.kind, metric.is_binary, passing.rows, passing.live, dimension,
                         int(nlist) if nlist is not None else None)
    chosen = plan(shape, k, nq, params, exact)
    if chosen.strategy is Strategy.NOTHING:
        return TopK.empty(nq, k, hib)
    if chosen.strategy is Strategy.EXACT:
        return exact_rows(rows(), passing.offsets(), queries, k, metric)
    result = only_passing(index.search(queries, k, passing, chosen.params), passing, k, hib)
    if chosen.exact_when_short:
        short = short_queries((result.ids != NO_ID).sum(axis=1), k, passing.live)
        if short.size:
            again = exact_rows(rows(), passing.offsets(), queries[short], k, metric)
            result.ids[short] = again.ids
            result.distances[short] = again.distances
    return result
