"""Filtered (hybrid) search over a node's segments: each segment's filter evaluated over its scalar columns and
ANDed with its live rows, searched by :func:`node.filtered_search.segment_search`, the results folded as a plain
search's are (:meth:`node.reader.Reader.fold`).

Result width: ``min(topk, rows that pass and are live)`` over the searched segments, Milvus 1.1.1's k' with the
filter's rows (holes only where fewer rows pass, or an index finds fewer). The fold runs ``min(topk, live rows)``
wide (what admission charges for), each segment contributing its top ``min(that, its passing rows)``; the result is
then cut to the passing width, which leaves it exactly the merge of the segments' best.

A query without scalar clauses (the filter passes every row) is a plain search: each segment is searched as
``Search`` searches it (the same results), unless ``exact`` asks for an exhaustive search of the live rows.

Masks of recent filters are kept per segment (:class:`MaskCache`, 64 MB): a repeated filter costs no evaluation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace

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

# Bytes of recent filters' masks a node keeps (MaskCache).
MASK_CACHE_BYTES = 64 * 1024 * 1024
MaskKey = tuple[int, int, Bool]  # segment id, delete-log version of its live rows, filter


class MaskCache:
    """The rows recent filters passed in each segment (their ``LiveMask``s: the mask, its packed bits, their faiss
    selector, the passing offsets once an exact search listed them), least recently used first out beyond
    ``capacity_bytes``. Segments never change and their ids are never reused, so a key of the segment id, the
    delete-log version the live rows came from and the filter (a frozen tree) always names the same rows; entries
    of segments gone meanwhile simply age out. Filters repeat (a tenant, a category): a hit skips reading the
    columns, evaluating and packing."""

    def __init__(self, capacity_bytes: int = MASK_CACHE_BYTES) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[MaskKey, tuple[LiveMask, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def cost(mask: LiveMask) -> int:
        """What an entry may hold: its mask and bits, and the offsets of its passing rows (8 bytes each)."""
        return mask.rows + mask.rows // 8 + 8 * mask.live + 64

    def get(self, key: MaskKey, build: Callable[[], LiveMask]) -> LiveMask:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        mask = build()  # outside the lock: two searches of a new filter may both evaluate it (same result)
        size = self.cost(mask)
        if size > self.capacity_bytes:
            return mask
        with self._lock:
            if key not in self._items:
                self._items[key] = (mask, size)
                self.used_bytes += size
                while self.used_bytes > self.capacity_bytes:
                    _, (_, gone) = self._items.popitem(last=False)
                    self.used_bytes -= gone
        return mask

    def __len__(self) -> int:
        return len(self._items)


def evaluate_rows(reader: Reader, coll: Collection, seg: Segment, item: LoadedSegment, node: Bool) -> LiveMask:
    """The rows of ``seg`` (loaded as ``item``) that pass ``node`` and are live, evaluated now."""
    live = item.live
    if node == EVERYTHING:
        return replace(live, _offsets=None)  # its own copy: offsets listed for this search stay with it
    columns = reader.scalars(coll, seg, sorted(fields_of(node)), item)
    mask = evaluate(node, columns, live.rows)
    if live.mask is not None:
        mask &= live.mask
    return LiveMask.of(mask)


def passing_rows(reader: Reader, coll: Collection, seg: Segment, item: LoadedSegment, node: Bool,
                 masks: MaskCache | None = None) -> LiveMask:
    """:func:`evaluate_rows`, through ``masks`` when given."""
    if masks is None or node == EVERYTHING:
        return evaluate_rows(reader, coll, seg, item, node)
    return masks.get((seg.id, item.delete_version, node), lambda: evaluate_rows(reader, coll, seg, item, node))


class _Passing:
    """The passing rows counted over the segments of one search (segments are searched in several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.total += count


def filtered_search(reader: Reader, coll: Collection, segs: Sequence[Segment], query: HybridQuery,
                    params: SearchParams, masks: MaskCache | None = None) -> TopK:
    """The hybrid search ``query`` over ``segs``, ordered by the metric ``params`` ask for (as ``Search``); the
    segments' masks through ``masks`` when given."""
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
        part, count = search_segment(reader, coll, seg, query, width, params, masks)
        passing.add(count)
        return part

    folded = reader.fold(segs, width, hib, one)
    cut = min(width, passing.total)
    if cut == width:
        return folded
    return TopK(np.ascontiguousarray(folded.ids[:, :cut]), np.ascontiguousarray(folded.distances[:, :cut]))


def search_segment(reader: Reader, coll: Collection, seg: Segment, query: HybridQuery, width: int,
                   params: SearchParams, masks: MaskCache | None = None) -> tuple[TopK, int]:
    """One segment's top ``min(width, passing rows)`` of every query, row ids mapped from offsets, and how many of
    its rows pass. Wide searches run a block of queries at a time, as ``Reader`` does."""
    reader.engine.omp_threads.apply()
    item = reader.loaded(coll, seg)
    passing = passing_rows(reader, coll, seg, item, query.filter, masks)
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
