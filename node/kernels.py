"""Exact (FLAT) search kernels for every Milvus 1.1 metric, over one segment's rows.

Float L2 / IP and binary HAMMING use faiss; JACCARD, TANIMOTO, SUBSTRUCTURE and SUPERSTRUCTURE,
which stock faiss lacks for bit vectors, use numpy popcounts. Every kernel takes the
segment's live-row mask, so deleted rows are excluded inside the search itself.
Results are row *offsets* within the segment (-1 for holes) and float32 distances; L2 is squared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from coordinator.model import MetricType
from coordinator.topk import NO_ID, TopK, hole_distance, merge

# Below this many deleted rows, searching k + deleted rows and dropping them afterwards is cheaper
# than a faiss ID selector, which leaves the BLAS code path.
_OVERSAMPLE_LIMIT = 2048
# Bound on the temporary (queries x rows x bytes) array of the numpy binary kernels.
_BINARY_BLOCK_BYTES = 32 * 1024 * 1024
# faiss computes flat distances with BLAS when queries x dimension reaches a global threshold
# (default 128000, i.e. 1,000 queries at d=128). Measured here, BLAS wins from about 8 queries on,
# whatever the dimension, and loses badly below; so the threshold follows each search's dimension.
BLAS_MIN_QUERIES = 8


def use_blas_from(dimension: int) -> None:
    """Make faiss switch to BLAS at BLAS_MIN_QUERIES queries of this dimension (a process-wide knob;
    concurrent searches of other dimensions can only change which code path runs, not results)."""
    wanted = BLAS_MIN_QUERIES * dimension
    if faiss.cvar.distance_compute_blas_threshold != wanted:
        faiss.cvar.distance_compute_blas_threshold = wanted


class OmpThreads:
    """The faiss / OpenMP thread count for searches.

    OpenMP keeps this count per calling thread, so setting it once at start does not reach the
    gRPC and search worker threads: :meth:`apply` sets it, lazily, in whichever thread searches.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._local = threading.local()

    def apply(self) -> None:
        if getattr(self._local, "count", None) != self.count:
            faiss.omp_set_num_threads(self.count)
            self._local.count = self.count


@dataclass
class LiveMask:
    """Which rows of a segment a search may return ("live"); ``None`` arrays mean every row.

    Built from a segment's deletes (:meth:`build`), or from any row mask (:meth:`of`: a hybrid search's filter
    ANDed with the live rows), which every index kind then honours exactly as it honours deletes.
    """

    rows: int
    deleted_offsets: np.ndarray  # sorted int64 (empty for a mask built by ``of``, which counts instead)
    mask: np.ndarray | None = None  # bool, True = live
    bitmap: np.ndarray | None = None  # packed little-endian bits of ``mask`` (kept alive for faiss)
    _selector: Any = field(default=None, repr=False)
    _excluded: int | None = field(default=None, repr=False)  # rows ``mask`` leaves out, when built by ``of``
    _offsets: np.ndarray | None = field(default=None, repr=False)

    @staticmethod
    def build(rows: int, deleted_offsets: np.ndarray) -> LiveMask:
        deleted = np.unique(np.asarray(deleted_offsets, dtype=np.int64))
        if deleted.size == 0:
            return LiveMask(rows, deleted)
        mask = np.ones(rows, dtype=bool)
        mask[deleted] = False
        return LiveMask(rows, deleted, mask, np.packbits(mask, bitorder="little"))

    @staticmethod
    def of(mask: np.ndarray, bitmap: np.ndarray | None = None) -> LiveMask:
        """The rows ``mask`` passes (bool, one per row); ``bitmap`` may give its packed little-endian bits."""
        mask = np.ascontiguousarray(mask, dtype=bool)
        rows = int(mask.shape[0])
        excluded = rows - int(np.count_nonzero(mask))
        if excluded == 0:
            return LiveMask(rows, np.zeros(0, dtype=np.int64))
        if bitmap is None:
            bitmap = np.packbits(mask, bitorder="little")
        return LiveMask(rows, np.zeros(0, dtype=np.int64), mask, bitmap, _excluded=excluded)

    @property
    def deleted(self) -> int:
        """Rows a search may not return (deleted, or left out by the mask)."""
        return int(self.deleted_offsets.size) if self._excluded is None else self._excluded

    @property
    def live(self) -> int:
        return self.rows - self.deleted

    def offsets(self) -> np.ndarray:
        """The offsets of the live rows, ascending (computed once)."""
        if self._offsets is None:
            if self.mask is None:
                self._offsets = np.arange(self.rows, dtype=np.int64)
            else:
                self._offsets = np.flatnonzero(self.mask).astype(np.int64, copy=False)
        return self._offsets

    def selector(self) -> Any:
        if self._selector is None:
            assert self.bitmap is not None
            self._selector = faiss.IDSelectorBitmap(self.rows, faiss.swig_ptr(self.bitmap))
        return self._selector


def _drop_deleted(dist: np.ndarray, offs: np.ndarray, live: LiveMask, k: int, hib: bool) -> TopK:
    """Remove deleted offsets from an oversampled result, keeping the best ``k`` of each row."""
    assert live.mask is not None
    ok = offs >= 0
    ok[ok] = live.mask[offs[ok]]
    # Stable partition of each row: live entries first, in their original order.
    order = np.argsort(~ok, axis=1, kind="stable")[:, :k]
    offs = np.take_along_axis(np.where(ok, offs, NO_ID), order, axis=1)
    # float32 copy: binary (HAMMING) distances arrive as int32, which cannot hold the hole value.
    dist = np.take_along_axis(dist, order, axis=1).astype(np.float32)
    dist[offs == NO_ID] = hole_distance(hib)
    return TopK(offs, dist)


def _faiss_search(index: Any, queries: np.ndarray, k: int, live: LiveMask, hib: bool) -> TopK:
    if live.deleted == 0:
        dist, offs = index.search(queries, k)
        return TopK(offs, dist)
    if live.deleted <= _OVERSAMPLE_LIMIT:
        wide = min(live.rows, k + live.deleted)
        dist, offs = index.search(queries, wide)
        return _drop_deleted(dist, offs, live, k, hib)
    params = faiss.SearchParameters()
    params.sel = live.selector()
    dist, offs = index.search(queries, k, params=params)
    return TopK(offs, dist)


def _knn(rows: np.ndarray, queries: np.ndarray, k: int, live: LiveMask, metric: MetricType) -> TopK:
    """Exact top-k of float32 ``queries`` over float32 ``rows`` under ``metric`` (L2 or IP), whatever metric the
    rows' index was built for: faiss' brute-force kernels (those an ``IndexFlat`` search runs), deletes handled
    as :func:`_faiss_search` does (oversampled when few, else an ID selector)."""

    def run(width: int, sel: Any = None) -> TopK:
        return _knn_call(rows, queries, width, metric, sel)

    if live.deleted == 0:
        return run(k)
    if live.deleted <= _OVERSAMPLE_LIMIT:
        wide = run(min(live.rows, k + live.deleted))
        return _drop_deleted(wide.distances, wide.ids, live, k, metric.higher_is_better)
    return run(k, live.selector())


def _knn_call(rows: np.ndarray, queries: np.ndarray, width: int, metric: MetricType, sel: Any = None) -> TopK:
    """faiss' brute-force top ``width`` of float32 ``queries`` over float32 ``rows`` (both C-contiguous) under L2 or
    IP, restricted to the rows ``sel`` selects (an ``IDSelectorArray`` computes only the listed rows' distances)."""
    nq, dim = queries.shape
    n = int(rows.shape[0])
    dist = np.empty((nq, width), dtype=np.float32)
    offs = np.empty((nq, width), dtype=np.int64)
    q, x = faiss.swig_ptr(queries), faiss.swig_ptr(rows)
    if metric is MetricType.IP:
        faiss.knn_inner_product(q, x, dim, nq, n, width, faiss.swig_ptr(dist), faiss.swig_ptr(offs), sel)
    else:
        faiss.knn_L2sqr(q, x, dim, nq, n, width, faiss.swig_ptr(dist), faiss.swig_ptr(offs), None, sel)
    return TopK(offs, dist)


class FloatFlat:
    """Exact L2 (squared) or inner-product search over float32 rows; a search may ask for the other metric.

    The rows are a copy in memory numpy allocates, searched with faiss' brute-force kernels (``knn_L2sqr`` /
    ``knn_inner_product``, what ``IndexFlat.search`` runs, with the same results). numpy asks the kernel for
    transparent huge pages for arrays of 4 MB and more (``madvise``), which faiss' own ``IndexFlat`` storage
    does not get where THP is ``madvise`` only: a one-query scan of 100k x 128 rows takes a third to a half less
    over huge pages (benchmarks/README.md, issue 14).
    """

    def __init__(self, vectors: np.ndarray, metric: MetricType) -> None:
        self.metric = metric
        self._rows = np.array(vectors, dtype=np.float32, order="C", copy=True)
        if self._rows.ndim != 2:
            raise ValueError(f"rows of shape {self._rows.shape} are not a matrix")
        self.dim = int(self._rows.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes)

    def rows(self) -> np.ndarray:
        """The stored rows (the index's own copy, no allocation)."""
        return self._rows

    def search(self, queries: np.ndarray, k: int, live: LiveMask, metric: MetricType | None = None) -> TopK:
        use_blas_from(self.dim)
        return _knn(self._rows, queries, k, live, metric or self.metric)


class BinaryFlat:
    """Exact search over packed bit vectors for HAMMING, JACCARD, TANIMOTO, SUB- and SUPERSTRUCTURE; a search
    may ask for any of them, whatever the collection's."""

    def __init__(self, codes: np.ndarray, metric: MetricType) -> None:
        self.metric = metric
        self.codes = np.ascontiguousarray(codes, dtype=np.uint8)
        self.index: faiss.IndexBinaryFlat | None = None
        self._popcounts: np.ndarray | None = None
        if metric is MetricType.HAMMING:
            self.index = faiss.IndexBinaryFlat(self.codes.shape[1] * 8)
            self.index.add(self.codes)
        else:
            self.popcounts()

    @property
    def nbytes(self) -> int:
        counts = self._popcounts
        return int(self.codes.nbytes) + (int(counts.nbytes) if counts is not None else 0)

    def popcounts(self) -> np.ndarray:
        """Bits set in each row (computed once; a HAMMING collection needs them only for another metric)."""
        counts = self._popcounts
        if counts is None:
            counts = np.bitwise_count(self.codes).sum(axis=1, dtype=np.int32)
            self._popcounts = counts
        return counts

    def search(self, queries: np.ndarray, k: int, live: LiveMask, metric: MetricType | None = None) -> TopK:
        metric = metric or self.metric
        if metric is MetricType.HAMMING and self.index is not None:
            res = _faiss_search(self.index, queries, k, live, False)
            return TopK(res.ids, res.distances.astype(np.float32))
        return self._numpy_search(queries, k, live, metric)

    def _numpy_search(self, queries: np.ndarray, k: int, live: LiveMask, metric: MetricType) -> TopK:
        nq, nbytes = queries.shape
        rows = self.codes.shape[0]
        q_pop = np.bitwise_count(queries).sum(axis=1, dtype=np.int32)
        popcounts = self.popcounts()
        block = max(1, _BINARY_BLOCK_BYTES // max(1, nq * nbytes))
        best = TopK.empty(nq, 0, False)
        for start in range(0, rows, block):
            stop = min(rows, start + block)
            chunk = self.codes[start:stop]
            inter = np.bitwise_count(queries[:, None, :] & chunk[None, :, :]).sum(axis=2, dtype=np.int32)
            dist = _distance(metric, inter, q_pop, popcounts[start:stop])
            if live.mask is not None:
                dist[:, ~live.mask[start:stop]] = np.nan
            kk = min(k, stop - start)
            part = np.argpartition(dist, kk - 1, axis=1)[:, :kk] if kk < stop - start else (
                np.broadcast_to(np.arange(stop - start), (nq, stop - start))
            )
            d = np.take_along_axis(dist, part, axis=1)
            offs = (part + start).astype(np.int64)
            offs = np.where(np.isnan(d), NO_ID, offs)
            best = merge([best, TopK(offs, d.astype(np.float32))], k, False)
        return best


def _distance(metric: MetricType, inter: np.ndarray, q_pop: np.ndarray, b_pop: np.ndarray) -> np.ndarray:
    """Binary distances (queries x rows) from the bits the queries and rows share and the bits each has set;
    NaN for rows that are no candidate at all (SUB- / SUPERSTRUCTURE)."""
    q = q_pop[:, None].astype(np.float64)
    b = b_pop[None, :].astype(np.float64)
    inter_f = inter.astype(np.float64)
    union = q + b - inter_f
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric is MetricType.HAMMING:
            return q + b - 2.0 * inter_f
        if metric is MetricType.JACCARD:
            return np.where(union > 0, 1.0 - inter_f / union, 0.0)
        if metric is MetricType.TANIMOTO:
            return np.where(union > 0, -np.log2(inter_f / union), 0.0)
        # As the faiss fork of Milvus 1.1 (Sub/SuperstructureComputer, query = a, row = b):
        # SUBSTRUCTURE matches (a & b) == a, SUPERSTRUCTURE matches (a & b) == b.
        if metric is MetricType.SUBSTRUCTURE:
            # Rows of which the query is a substructure (query bits all set in the row).
            matched = inter == q_pop[:, None]
            return np.where(matched, np.where(q > 0, 1.0 - inter_f / q, 0.0), np.nan)
        if metric is MetricType.SUPERSTRUCTURE:
            # Rows of which the query is a superstructure (row bits all set in the query).
            matched = inter == b_pop[None, :]
            return np.where(matched, np.where(b > 0, 1.0 - inter_f / b, 0.0), np.nan)
    raise ValueError(f"no binary kernel for {metric.name}")


# Rows gathered at a time by :func:`exact_rows` (16,384 float rows of dimension 128).
GATHER_BLOCK_BYTES = 8 * 1024 * 1024


def exact_rows(vectors: np.ndarray, offsets: np.ndarray, queries: np.ndarray, k: int, metric: MetricType) -> TopK:
    """Exact top-``k`` of ``queries`` among the rows ``offsets`` (int64) of ``vectors`` (a segment's stored rows,
    typically memory-mapped) under ``metric``; results are offsets into ``vectors``, ``k`` wide, -1 holes past the
    rows found. The cost is that of the chosen rows, not of the segment:

    - fewer than BLAS_MIN_QUERIES float queries: faiss computes the distances of the listed rows where they lie (an
      ``IDSelectorArray``, no copy);
    - otherwise the rows are copied a block of GATHER_BLOCK_BYTES at a time into one buffer and searched with the
      kernels above (faiss' BLAS path for float queries, the popcount kernels for bits), each block's best merged
      into the result."""
    hib = metric.higher_is_better
    nq = int(queries.shape[0])
    count = int(offsets.shape[0])
    if k <= 0 or count == 0 or nq == 0:
        return TopK.empty(nq, max(k, 0), hib)
    if (not metric.is_binary and nq < BLAS_MIN_QUERIES and vectors.dtype == np.float32
            and vectors.flags.c_contiguous):
        chosen = np.ascontiguousarray(offsets, dtype=np.int64)
        listed = faiss.IDSelectorArray(count, faiss.swig_ptr(chosen))
        found = _knn_call(vectors, np.ascontiguousarray(queries, dtype=np.float32), min(k, count), metric, listed)
        return found if found.k == k else merge([found], k, hib)
    width = int(vectors.shape[1])
    block = max(1, GATHER_BLOCK_BYTES // max(1, width * vectors.dtype.itemsize))
    buffer = np.empty((min(block, count), width), dtype=vectors.dtype)
    if not metric.is_binary:
        use_blas_from(width)
    best: TopK | None = None
    for start in range(0, count, block):
        chosen = offsets[start:start + block]
        rows = buffer[: chosen.shape[0]]
        np.take(vectors, chosen, axis=0, out=rows, mode="clip")
        kk = min(k, int(chosen.shape[0]))
        everything = LiveMask(int(chosen.shape[0]), _NO_ROWS)
        if metric.is_binary:
            part = BinaryFlat(rows, metric).search(queries, kk, everything, metric)
        else:
            part = _knn(rows, queries, kk, everything, metric)
        local = np.asarray(part.ids)
        ids = np.where(local >= 0, chosen[np.maximum(local, 0)], NO_ID)
        found = TopK(ids, np.asarray(part.distances, dtype=np.float32))
        best = found if best is None else merge([best, found], k, hib)
    assert best is not None
    return best if best.k == k else merge([best], k, hib)


_NO_ROWS = np.zeros(0, dtype=np.int64)


def exact_index(vectors: np.ndarray, metric: MetricType) -> FloatFlat | BinaryFlat:
    """The exact search structure for one segment's stored vectors."""
    if metric.is_binary:
        return BinaryFlat(vectors, metric)
    return FloatFlat(vectors, metric)
