"""Top-k result arrays and their merge (pure numpy, metric-aware)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_ID = -1


@dataclass(frozen=True, slots=True)
class TopK:
    """Per-query results: ``ids`` (nq, k) int64 with -1 holes, ``distances`` (nq, k) float32."""

    ids: np.ndarray
    distances: np.ndarray

    @property
    def nq(self) -> int:
        return int(self.ids.shape[0])

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    @staticmethod
    def empty(nq: int, k: int, higher_is_better: bool) -> TopK:
        return TopK(
            ids=np.full((nq, k), NO_ID, dtype=np.int64),
            distances=np.full((nq, k), hole_distance(higher_is_better), dtype=np.float32),
        )


def result_width(topk: int, rows: int) -> int:
    """k', the width of a search's result rows, as Milvus 1.1.1 computes it: ``min(topk, rows)`` over the rows of
    the searched segments. 1.1 counts a file's ``row_count`` from its catalog row, which a flush lowers by the
    deletes it applies (``MemTable::ApplyDeletes``), so deleted rows do not count: ``rows`` are the live rows.
    0 (nothing to search) makes the reply ``row_num`` 0, as 1.1 answers when no result id is left."""
    return max(0, min(topk, rows))


def by_id_rows(found: Sequence[int], total: int, part: TopK, higher_is_better: bool) -> TopK:
    """SearchByID's answer: one row per requested id, row ``found[i]`` is ``part``'s row i, every other row (an id
    not found) all holes. Rows are at least one column wide so that the reply keeps them all (``row_num`` =
    ``total``): Milvus 1.1 answers a row per id even when none was found (holes ``topk`` wide there)."""
    width = max(1, part.k)
    if len(found) == total and part.k == width:
        return part
    full = TopK.empty(total, width, higher_is_better)
    rows = np.asarray(found, dtype=np.int64)
    full.ids[rows, :part.k] = part.ids
    full.distances[rows, :part.k] = part.distances
    return full


def hole_distance(higher_is_better: bool) -> float:
    """The distance reported next to a -1 id: the worst possible value for the metric."""
    info = np.finfo(np.float32)
    return float(info.min if higher_is_better else info.max)


def merge(parts: Sequence[TopK], k: int, higher_is_better: bool) -> TopK:
    """Merge partial results of the same queries into the best ``k`` per query.

    Parts may have different widths. Holes sort last; ties are broken by id so that the result is
    deterministic. Duplicate ids (the same row seen twice) are not removed here.
    """
    if not parts:
        raise ValueError("nothing to merge")
    nq = parts[0].nq
    ids = np.concatenate([p.ids for p in parts], axis=1)
    dist = np.concatenate([p.distances for p in parts], axis=1)
    key = -dist.astype(np.float64) if higher_is_better else dist.astype(np.float64)
    holes = ids == NO_ID
    order = np.lexsort((ids, key, holes), axis=-1)[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_dist = np.take_along_axis(dist, order, axis=1)
    width = out_ids.shape[1]
    if width < k:
        pad = TopK.empty(nq, k - width, higher_is_better)
        out_ids = np.concatenate([out_ids, pad.ids], axis=1)
        out_dist = np.concatenate([out_dist, pad.distances], axis=1)
    holes = out_ids == NO_ID
    if holes.any():
        out_dist = out_dist.copy()
        out_dist[holes] = hole_distance(higher_is_better)
    return TopK(ids=np.ascontiguousarray(out_ids), distances=np.ascontiguousarray(out_dist, dtype=np.float32))


# Bound on the temporaries of one row block of :func:`merge_rows`: the concatenated ids and distances, the
# float64 sort key, the hole mask and lexsort's int64 order, about 41 bytes per merged column and row.
MERGE_BLOCK_BYTES = 32 * 1024 * 1024
MERGE_BYTES_PER_CELL = 41


def merge_rows(parts: Sequence[TopK], k: int, higher_is_better: bool, out: TopK | None = None,
               block_bytes: int = MERGE_BLOCK_BYTES) -> TopK:
    """:func:`merge`, a block of rows at a time, into ``out`` (allocated when None): the same result, but the
    temporaries stay under ``block_bytes`` whatever nq and k are, so a wide merge costs its output and little
    more. ``out`` may be one of ``parts`` (an accumulator folded into): each block is merged before it is written.
    """
    if not parts:
        raise ValueError("nothing to merge")
    nq = parts[0].nq
    if out is None:
        out = TopK.empty(nq, k, higher_is_better)
    if out.nq != nq or out.k != k:
        raise ValueError(f"output is {out.nq} x {out.k}, expected {nq} x {k}")
    columns = max(1, sum(p.k for p in parts))
    rows = max(1, block_bytes // (columns * MERGE_BYTES_PER_CELL))
    for start in range(0, nq, rows):
        block = slice(start, min(nq, start + rows))
        merged = merge([TopK(p.ids[block], p.distances[block]) for p in parts], k, higher_is_better)
        out.ids[block] = merged.ids
        out.distances[block] = merged.distances
    return out
