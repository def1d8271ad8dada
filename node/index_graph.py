"""Graph kinds: HNSW (faiss ``IndexHNSWFlat``, ID selector, widening ``ef``, exact scan at the end) and
RNSG (faiss ``IndexNSGFlat`` over an exact or NNDescent knn graph, oversampling)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from coordinator.errors import BuildIndexError
from coordinator.model import IndexType, MetricType
from coordinator.topk import TopK
from node.index_base import (
    DEFAULT_EF,
    DEFAULT_SEARCH_LENGTH,
    NSG_EXACT_KNN_MAX_ROWS,
    NSG_MIN_ROWS,
    ParamsByValue,
    SegmentIndex,
    check_live,
    check_loaded,
    drop_duplicates,
    faiss_metric,
    faiss_untyped,
    finish,
    float_queries,
    float_rows,
    float_search,
    int_param,
    need_rows,
    oversample_width,
    read_index,
    rows_of,
    widen,
)
from node.kernels import LiveMask, _drop_deleted, use_blas_from
from node.params import SearchParams

# -- HNSW ---------------------------------------------------------------------------------------


def hnsw_params(ef: int) -> Any:
    sp = faiss_untyped.SearchParametersHNSW()
    sp.efSearch = ef
    return sp


class HNSWSegmentIndex:
    """HNSW over float rows; it cannot remove ids, so deleted rows are filtered by an ID selector."""

    def __init__(self, index: Any, metric: MetricType) -> None:
        self.kind = IndexType.HNSW
        self.metric = metric
        self.index = index
        self._params = ParamsByValue(hnsw_params)
        self.effective_params: dict[str, Any] = {
            "M": int(index.hnsw.nb_neighbors(1)),
            "efConstruction": int(index.hnsw.efConstruction),
        }

    @property
    def nbytes(self) -> int:
        hnsw = self.index.hnsw
        graph = int(hnsw.neighbors.size()) * 4 + int(hnsw.offsets.size()) * 8 + int(hnsw.levels.size()) * 4
        return graph + int(self.index.ntotal) * int(self.index.d) * 4

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        q = float_queries(queries, int(self.index.d))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        rows = int(self.index.ntotal)
        check_live(live, rows)
        ef = max(params.ef or DEFAULT_EF, k)

        def run(qs: np.ndarray, width: int) -> TopK:
            if live.live <= width:
                # A walk of width >= the live rows costs more than scanning them (and the filtered
                # graph may not even reach them all): scan the stored vectors exactly.
                return self._exact(qs, k, live)
            if live.deleted:
                sp = hnsw_params(width)
                sp.sel = live.selector()
            else:
                sp = self._params.get(width)
            dist, offs = float_search(self.index, qs, k, sp)
            return finish(dist, offs, k, hib)

        return widen(q, run(q, ef), min(k, live.live), ef, rows, run)

    def _exact(self, queries: np.ndarray, k: int, live: LiveMask) -> TopK:
        storage = faiss.downcast_index(self.index.storage)
        sp = faiss.SearchParameters()
        if live.deleted:
            sp.sel = live.selector()
        use_blas_from(int(self.index.d))
        dist, offs = storage.search(queries, k, params=sp)
        return finish(dist, offs, k, self.metric.higher_is_better)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


class HNSWKind:
    kind = IndexType.HNSW

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        x = float_rows(vectors)
        rows, dim = x.shape
        need_rows(rows, self.kind)
        index = faiss.IndexHNSWFlat(dim, int_param(params, "M"), faiss_metric(metric))
        index.hnsw.efConstruction = int_param(params, "efConstruction")
        try:
            index.add(x)
        except RuntimeError as exc:
            raise BuildIndexError(f"HNSW build failed: {exc}") from None
        return HNSWSegmentIndex(index, metric)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        index = read_index(path)
        check_loaded(index, path, (faiss.IndexHNSWFlat,), int(vectors.shape[1]), rows_of(vectors),
                      faiss_metric(metric))
        return HNSWSegmentIndex(index, metric)


# -- RNSG ---------------------------------------------------------------------------------------


def _knn_graph(x: np.ndarray, fmetric: int, gk: int) -> np.ndarray:
    """Exact ``gk`` nearest neighbours of every row, excluding the row itself (int64, rows x gk)."""
    rows, dim = x.shape
    flat = faiss.IndexFlat(dim, fmetric)
    flat.add(x)
    graph = np.empty((rows, gk), dtype=np.int64)
    block = 4096
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        _, nbrs = flat.search(x[start:stop], gk + 1)
        # Drop the row itself wherever it appears (duplicates and IP can move it), else the last one.
        not_self = nbrs != np.arange(start, stop)[:, None]
        keep = np.argsort(~not_self, axis=1, kind="stable")[:, :gk]
        graph[start:stop] = np.take_along_axis(nbrs, keep, axis=1)
    return graph


class NSGSegmentIndex:
    """RNSG (faiss IndexNSGFlat), or an exact flat index for segments too small for NSG.

    faiss' NSG accepts no search parameters: the search length is a field of the index, set under a
    lock, and deleted rows are dropped from an oversampled result.
    """

    def __init__(self, index: Any, metric: MetricType) -> None:
        self.kind = IndexType.RNSG
        self.metric = metric
        self.index = index
        self.is_graph = isinstance(index, faiss.IndexNSG)
        self._lock = threading.Lock()
        self.effective_params: dict[str, Any] = {}
        if self.is_graph:
            nsg = index.nsg
            self.effective_params = {
                "search_length": int(nsg.L),
                "out_degree": int(nsg.R),
                "candidate_pool_size": int(nsg.C),
                "knng": int(index.GK),
            }

    @property
    def nbytes(self) -> int:
        rows = int(self.index.ntotal)
        graph = rows * int(self.index.nsg.R) * 4 if self.is_graph else 0
        return graph + rows * int(self.index.d) * 4

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        q = float_queries(queries, int(self.index.d))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        rows = int(self.index.ntotal)
        check_live(live, rows)
        if not self.is_graph:
            sp = faiss.SearchParameters()
            if live.deleted:
                sp.sel = live.selector()
            dist, offs = self.index.search(q, k, params=sp)
            return finish(dist, offs, k, hib)
        search_length = min(params.search_length or DEFAULT_SEARCH_LENGTH, rows)

        def run(qs: np.ndarray, width: int) -> TopK:
            # NSG's search pool is max(search_L, width): both must stay <= rows (else faiss never returns).
            with self._lock:
                self.index.nsg.search_L = search_length
                dist, offs = self.index.search(qs, width)
            # faiss' NSG can report a row twice with METRIC_INNER_PRODUCT (seen with faiss 1.15.1).
            dist, offs = drop_duplicates(dist, offs, hib)
            if live.deleted:
                res = _drop_deleted(dist, offs, live, k, hib)
                return finish(res.distances, res.ids, k, hib)
            return finish(dist, offs, k, hib)

        width = oversample_width(k, live) if live.deleted else min(k, rows)
        return widen(q, run(q, width), min(k, live.live), width, rows, run)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


class NSGKind:
    kind = IndexType.RNSG

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        x = float_rows(vectors)
        rows, dim = x.shape
        need_rows(rows, self.kind)
        fmetric = faiss_metric(metric)
        out_degree = int_param(params, "out_degree")
        search_length = int_param(params, "search_length")
        pool = int_param(params, "candidate_pool_size")
        knng = int_param(params, "knng")
        if rows < NSG_MIN_ROWS:
            flat = faiss.IndexFlat(dim, fmetric)
            flat.add(x)
            return NSGSegmentIndex(flat, metric)
        index = faiss_untyped.IndexNSGFlat(dim, out_degree, fmetric)
        gk = min(knng, rows - 1)
        index.GK = gk
        index.nsg.L = min(search_length, rows)
        index.nsg.C = pool
        index.nsg.search_L = min(DEFAULT_SEARCH_LENGTH, rows)  # also used while building
        try:
            if rows <= NSG_EXACT_KNN_MAX_ROWS:
                index.build(x, _knn_graph(x, fmetric, gk))
            else:
                index.build_type = 1  # NNDescent
                index.add(x)
        except RuntimeError as exc:
            raise BuildIndexError(f"RNSG build failed: {exc}") from None
        return NSGSegmentIndex(index, metric)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        index = read_index(path)
        check_loaded(index, path, (faiss.IndexNSGFlat, faiss.IndexFlat), int(vectors.shape[1]), rows_of(vectors),
                      faiss_metric(metric))
        return NSGSegmentIndex(index, metric)
