"""Filtered (hybrid) search over a node's segments: each segment's filter evaluated over its scalar columns and
ANDed with its live rows, searched by :func:`node.filtered_search.segment_search`, the results folded as a plain
search's are (:meth:`node.reader.Reader.fold`).

Result width: ``min(topk, rows that pass and are live)`` over the searched segments, Milvus 1.1.1's k' with the
filter's rows (holes only where fewer rows pass, or an index finds fewer). The fold runs ``min(topk, live rows)``
wide (what admission charges for), each segment contributing its top ``min(that, its passing rows)``; the result is
then cut to the passing width, which leaves it exactly the merge of the segments' best.

A query without scalar clauses (the filter passes every row) is a plain search: each segment is searched as
``Search`` searches it (the same results), unless ``exact`` asks for an exhaustive search of the live rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from coordinator.hybrid.evaluate import evaluate
from coordinator.hybrid.tree import EVERYTHING, Bool, HybridQuery, fields_of
from coordinator.model import Collection, Segment
from coordinator.topk import TopK, result_width
from node.filtered_search import segment_search
from node.kernels import _OVERSAMPLE_LIMIT, LiveMask
from node.params import SearchParams
from node.reader import Reader, _row_ids, query_block
from node.segment_cache import LoadedSegment


def passing_rows(reader: Reader, coll: Collection, seg: Segment, item: LoadedSegment, node: Bool) -> LiveMask:
    """The rows of ``seg`` (loaded as ``item``) that pass ``node`` and are live."""
    live = item.live
    if node == EVERYTHING:
        return live
    columns = reader.scalars(coll, seg, sorted(fields_of(node)), item)
    mask = evaluate(node, columns, live.rows)
    if live.mask is not None:
        mask &= live.mask
    return LiveMask.of(mask)


class _Passing:
    """The passing rows counted over the segments of one search (segments are searched in several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.total += count


def filtered_search(reader: Reader, coll: Collection, segs: Sequence[Segment], query: HybridQuery,
                    params: SearchParams) -> TopK:
    """The hybrid search ``query`` over ``segs``, ordered by the metric ``params`` ask for (as ``Search``)."""
    queries = query.vector.vectors
    nq = int(queries.shape[0])
    hib = (params.metric or coll.metric).higher_is_better
    width = result_width(query.vector.topk, sum(s.live_count for s in segs))
    if width <= 0:
        return TopK.empty(nq, 0, hib)
    if query.filter == EVERYTHING and not query.vector.exact:
        return reader.search(coll, segs, queries, query.vector.topk, params)
    passing = _Passing()

    def one(seg: Segment) -> TopK:
        part, count = search_segment(reader, coll, seg, query, width, params)
        passing.add(count)
        return part

    folded = reader.fold(segs, width, hib, one)
    cut = min(width, passing.total)
    if cut == width:
        return folded
    return TopK(np.ascontiguousarray(folded.ids[:, :cut]), np.ascontiguousarray(folded.distances[:, :cut]))


def search_segment(reader: Reader, coll: Collection, seg: Segment, query: HybridQuery, width: int,
                   params: SearchParams) -> tuple[TopK, int]:
    """One segment's top ``min(width, passing rows)`` of every query, row ids mapped from offsets, and how many of
    its rows pass. Wide searches run a block of queries at a time, as ``Reader`` does."""
    reader.engine.omp_threads.apply()
    item = reader.loaded(coll, seg)
    passing = passing_rows(reader, coll, seg, item, query.filter)
    queries = query.vector.vectors
    nq = int(queries.shape[0])
    k = min(width, passing.live)
    if k <= 0:
        return TopK.empty(nq, 0, (params.metric or coll.metric).higher_is_better), passing.live
    store = reader.engine.store

    def rows() -> np.ndarray:
        return store.vectors(coll.id, seg.name)

    def search(block: np.ndarray) -> TopK:
        return segment_search(item.index, rows, passing, block, k, params, coll.dimension, query.vector.exact)

    row_ids = np.asarray(item.ids)
    extra = passing.deleted if passing.deleted <= _OVERSAMPLE_LIMIT else 0
    step = query_block(k + extra)
    out = TopK(np.empty((nq, k), dtype=np.int64), np.empty((nq, k), dtype=np.float32))
    for start in range(0, nq, step):
        block = slice(start, min(nq, start + step))
        res = search(queries[block])
        _row_ids(row_ids, np.asarray(res.ids), out.ids[block])
        out.distances[block] = res.distances
    return out, passing.live
