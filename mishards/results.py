"""Search results on the proxy (pure): decode the nodes' TopKQueryResults, merge them, encode the answer.

The merge fixes the two bugs of the original Mishards reduce: the metric's direction decides the order
(inner product descending, every other metric ascending), and parts of different widths merge into one
rectangular result of the width a single node holding all the searched segments would return.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coordinator.errors import ErrorCode, MilvusError
from coordinator.topk import NO_ID, TopK, hole_distance, merge
from milvus_wire import milvus_pb2


def decode_topk(data: bytes) -> tuple[int, int, TopK]:
    """``(status code, row_num, result)`` of a serialized TopKQueryResult.

    The result is ``row_num`` rows of ``len(ids) // row_num`` columns (row_num 0 gives a 0 x 0 result).
    Raises ``MilvusError`` (ILLEGAL_SEARCH_RESULT) when the ids and distances do not form such a rectangle.
    """
    msg = milvus_pb2.TopKQueryResult.FromString(data)
    # np.array reads the repeated fields through the buffer protocol: an order of magnitude faster than
    # np.fromiter or going through a list.
    ids = np.array(msg.ids, dtype=np.int64)
    distances = np.array(msg.distances, dtype=np.float32)
    row_num = int(msg.row_num)
    code = int(msg.status.error_code)
    if ids.size != distances.size or row_num < 0 or (row_num == 0 and ids.size) or (row_num and ids.size % row_num):
        raise MilvusError(
            f"Search result is not aligned: row_num {row_num}, {ids.size} ids, {distances.size} distances",
            ErrorCode.ILLEGAL_SEARCH_RESULT,
        )
    if row_num == 0:
        return code, 0, TopK(np.empty((0, 0), dtype=np.int64), np.empty((0, 0), dtype=np.float32))
    k = ids.size // row_num
    return code, row_num, TopK(ids.reshape(row_num, k), distances.reshape(row_num, k))


def merge_node_results(parts: Sequence[TopK], topk: int, higher_is_better: bool) -> TopK:
    """Merge the nodes' results of the same queries into one rectangular result, best first per query.

    Order: by distance in the metric's direction, ties by id (``coordinator.topk.merge``). An id seen
    more than once in a row (a replica or a retry returned the same row again) is kept once, at its best
    place. Parts with no columns (row_num 0) contribute nothing.

    Width: what a single node searching all those segments returns, ``min(topk, live rows)``; each part
    being ``min(topk, its live rows)`` wide, that is ``min(topk, sum of the part widths)``, less the
    duplicates removed from every row (so a part repeated whole by a retry does not widen the result).
    Rows are padded with id -1 (and the metric's worst distance) only where fewer real results exist.
    """
    if topk < 0:
        raise ValueError(f"topk must be >= 0, got {topk}")
    full = [p for p in parts if p.k > 0 and p.nq > 0]
    nq = max((p.nq for p in parts), default=0)
    if not full:
        return TopK.empty(nq, 0, higher_is_better)
    if any(p.nq != nq for p in full):
        raise MilvusError(
            f"Search results of different query counts: {sorted({p.nq for p in full})}",
            ErrorCode.ILLEGAL_SEARCH_RESULT,
        )
    total = sum(p.k for p in full)
    merged = merge(full, total, higher_is_better)
    ids, distances = merged.ids, merged.distances
    removed_everywhere = 0
    if len(full) > 1:
        ids, distances, removed_everywhere = _drop_duplicates(ids, distances, higher_is_better)
    width = max(0, min(topk, total - removed_everywhere))
    return TopK(np.ascontiguousarray(ids[:, :width]), np.ascontiguousarray(distances[:, :width]))


def _drop_duplicates(
    ids: np.ndarray, distances: np.ndarray, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove repeated ids from rows sorted best first (keeping the first), moving the holes to the end.

    Returns the new arrays and the smallest number of entries removed from any row.
    """
    order = np.argsort(ids, axis=1, kind="stable")  # equal ids keep their (best first) order
    by_id = np.take_along_axis(ids, order, axis=1)
    dup_by_id = np.zeros(ids.shape, dtype=bool)
    dup_by_id[:, 1:] = (by_id[:, 1:] == by_id[:, :-1]) & (by_id[:, 1:] != NO_ID)
    dup = np.empty_like(dup_by_id)
    np.put_along_axis(dup, order, dup_by_id, axis=1)
    if not dup.any():
        return ids, distances, 0
    counts = dup.sum(axis=1)
    keep_first = np.argsort(dup, axis=1, kind="stable")  # kept entries first, in their order
    ids = np.take_along_axis(ids, keep_first, axis=1)
    distances = np.take_along_axis(distances, keep_first, axis=1)
    holes = np.arange(ids.shape[1])[None, :] >= (ids.shape[1] - counts)[:, None]
    ids[holes] = NO_ID
    distances[holes] = hole_distance(higher_is_better)
    return ids, distances, int(counts.min())
