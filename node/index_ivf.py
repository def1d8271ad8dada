"""IVF kinds: IVF_FLAT, IVF_SQ8 and IVF_PQ over float rows (faiss ``IndexIVF*`` with an ID selector),
and IVF_FLAT over binary rows (``IndexBinaryIVF``; Jaccard and Tanimoto from the probed lists' candidates)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from coordinator.errors import BuildIndexError, IllegalIndexType
from coordinator.model import IndexType, MetricType
from coordinator.topk import TopK
from node.index_base import (
    DEFAULT_NPROBE,
    TRAIN_POINTS_PER_CENTROID,
    ParamsByValue,
    SegmentIndex,
    binary_queries,
    binary_rows,
    check_live,
    check_loaded,
    effective_nlist,
    faiss_metric,
    finish,
    float_queries,
    float_rows,
    float_search,
    int_param,
    ivf_nbytes,
    need_rows,
    read_index,
    read_index_binary,
    rows_of,
    train_sample,
)
from node.kernels import _OVERSAMPLE_LIMIT, LiveMask, _drop_deleted, use_blas_from
from node.params import SearchParams

# -- IVF (float) --------------------------------------------------------------------------------


def ivf_params(nprobe: int) -> Any:
    sp = faiss.SearchParametersIVF()
    sp.nprobe = nprobe
    return sp


class IVFSegmentIndex:
    """IVF_FLAT / IVF_SQ8 / IVF_PQ over float rows; deleted rows are excluded by an ID selector."""

    def __init__(self, kind: IndexType, index: Any, metric: MetricType) -> None:
        self.kind = kind
        self.metric = metric
        self.index = index
        self._nlist = int(index.nlist)
        self._dim = int(index.d)
        self._params = ParamsByValue(ivf_params)
        self.effective_params: dict[str, Any] = {"nlist": self._nlist}
        if kind is IndexType.IVF_PQ:
            self.effective_params["m"] = int(index.pq.M)
            self.effective_params["nbits"] = int(index.pq.nbits)

    @property
    def nbytes(self) -> int:
        return ivf_nbytes(self.index, int(self.index.d) * 4)

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        dim = self._dim
        q = float_queries(queries, dim)
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        check_live(live, int(self.index.ntotal))
        nprobe = min(params.nprobe or DEFAULT_NPROBE, self._nlist)
        if live.deleted:
            sp = ivf_params(nprobe)
            sp.sel = live.selector()
        else:
            sp = self._params.get(nprobe)
        use_blas_from(dim)  # the coarse quantizer search is a flat search
        dist, offs = float_search(self.index, q, k, sp)
        return finish(dist, offs, k, hib)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


_IVF_TYPES: dict[IndexType, type] = {
    IndexType.IVF_FLAT: faiss.IndexIVFFlat,
    IndexType.IVF_SQ8: faiss.IndexIVFScalarQuantizer,
    IndexType.IVF_PQ: faiss.IndexIVFPQ,
}


def _build_float_ivf(kind: IndexType, vectors: np.ndarray, metric: MetricType,
                     params: Mapping[str, Any]) -> IVFSegmentIndex:
    x = float_rows(vectors)
    rows, dim = x.shape
    need_rows(rows, kind)
    fmetric = faiss_metric(metric)
    nlist = effective_nlist(int_param(params, "nlist"), rows)
    quantizer = faiss.IndexFlat(dim, fmetric)
    centroids = nlist
    index: Any
    if kind is IndexType.IVF_FLAT:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, fmetric)
    elif kind is IndexType.IVF_SQ8:
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, fmetric)
    else:
        m = int_param(params, "m")
        if dim % m:
            raise BuildIndexError(f"IVF_PQ: m={m} does not divide the dimension {dim}")
        nbits = min(int_param(params, "nbits", 8), max(1, math.floor(math.log2(rows))))
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, fmetric)
        centroids = max(nlist, 2**nbits)
    train = train_sample(x, TRAIN_POINTS_PER_CENTROID * centroids)
    if kind is IndexType.IVF_PQ and train.shape[0] < 2**index.pq.nbits:
        train = np.ascontiguousarray(np.resize(train, (2 ** int(index.pq.nbits), int(dim))))
    try:
        index.train(train)
        index.add(x)
    except RuntimeError as exc:
        raise BuildIndexError(f"{kind.name} build failed: {exc}") from None
    return IVFSegmentIndex(kind, index, metric)


# -- IVF (binary) -------------------------------------------------------------------------------


def _set_distance(metric: MetricType, inter: np.ndarray, q_pop: int, b_pop: np.ndarray) -> np.ndarray:
    """Binary distances of one query to candidate rows (formulas of ``kernels.BinaryFlat``)."""
    if metric is MetricType.HAMMING:
        return (q_pop + b_pop - 2 * inter).astype(np.float32)
    inter_f = inter.astype(np.float64)
    union = float(q_pop) + b_pop.astype(np.float64) - inter_f
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric is MetricType.JACCARD:
            out = np.where(union > 0, 1.0 - inter_f / union, 0.0)
        elif metric is MetricType.TANIMOTO:
            out = np.where(union > 0, -np.log2(inter_f / union), 0.0)
        else:
            raise IllegalIndexType(f"Invalid index type for collection metric type {metric.name}")
    return out.astype(np.float32)


class BinaryIVFSegmentIndex:
    """Binary IVF_FLAT: HAMMING searched by faiss; JACCARD/TANIMOTO computed exactly on the rows of
    the ``nprobe`` lists closest (in Hamming distance) to each query."""

    def __init__(self, index: Any, vectors: np.ndarray, metric: MetricType) -> None:
        self.kind = IndexType.IVF_FLAT
        self.metric = metric
        self.index = index
        self.vectors = vectors
        self.effective_params: dict[str, Any] = {"nlist": int(index.nlist)}
        self._lists: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def nbytes(self) -> int:
        total = ivf_nbytes(self.index, int(self.index.code_size))
        if self._lists is not None:
            total += int(self._lists[0].nbytes + self._lists[1].nbytes)
        return total

    def lists(self) -> tuple[np.ndarray, np.ndarray]:
        """Row offsets grouped by inverted list, and the start of each list (CSR form)."""
        if self._lists is None:
            invlists = self.index.invlists
            nlist = int(self.index.nlist)
            bounds = np.zeros(nlist + 1, dtype=np.int64)
            parts = []
            for no in range(nlist):
                size = int(invlists.list_size(no))
                bounds[no + 1] = bounds[no] + size
                if size:
                    ptr = invlists.get_ids(no)
                    parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
                    invlists.release_ids(no, ptr)
            order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            self._lists = (order, bounds)
        return self._lists

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        q = binary_queries(queries, int(self.index.code_size))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), False)
        rows = int(self.index.ntotal)
        check_live(live, rows)
        nprobe = min(params.nprobe or DEFAULT_NPROBE, int(self.index.nlist))
        if self.metric is MetricType.HAMMING and live.deleted <= _OVERSAMPLE_LIMIT:
            sp = ivf_params(nprobe)
            if live.deleted == 0:
                dist, offs = self.index.search(q, k, params=sp)
                return finish(dist, offs, k, False)
            dist, offs = self.index.search(q, min(rows, k + live.deleted), params=sp)
            res = _drop_deleted(dist, offs, live, k, False)
            return finish(res.distances, res.ids, k, False)
        return self._candidate_search(q, k, live, nprobe)

    def _candidate_search(self, q: np.ndarray, k: int, live: LiveMask, nprobe: int) -> TopK:
        order, bounds = self.lists()
        _, probed = self.index.quantizer.search(q, nprobe)
        q_pops = np.bitwise_count(q).sum(axis=1, dtype=np.int64)
        out = TopK.empty(q.shape[0], k, False)
        for i in range(q.shape[0]):
            lists = probed[i][probed[i] >= 0]
            cand = np.concatenate([order[bounds[no]:bounds[no + 1]] for no in lists]) if lists.size else order[:0]
            if live.mask is not None:
                cand = cand[live.mask[cand]]
            if cand.size == 0:
                continue
            codes = np.asarray(self.vectors[cand])
            inter = np.bitwise_count(codes & q[i]).sum(axis=1, dtype=np.int64)
            b_pop = np.bitwise_count(codes).sum(axis=1, dtype=np.int64)
            dist = _set_distance(self.metric, inter, int(q_pops[i]), b_pop)
            if cand.size > k:
                # Keep every row tied with the k-th distance, so that ties are broken by offset.
                keep = dist <= np.partition(dist, k - 1)[k - 1]
                cand, dist = cand[keep], dist[keep]
            best = np.lexsort((cand, dist))[:k]
            out.ids[i, : best.size] = cand[best]
            out.distances[i, : best.size] = dist[best]
        return out

    def save(self, path: Path) -> None:
        faiss.write_index_binary(self.index, str(path))


_BINARY_IVF_METRICS = frozenset({MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO})


def _build_binary_ivf(vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> BinaryIVFSegmentIndex:
    if metric not in _BINARY_IVF_METRICS:
        raise IllegalIndexType("Invalid index type for collection metric type")
    x = binary_rows(vectors)
    rows, nbytes = x.shape
    need_rows(rows, IndexType.IVF_FLAT)
    nlist = effective_nlist(int_param(params, "nlist"), rows)
    quantizer = faiss.IndexBinaryFlat(nbytes * 8)
    index = faiss.IndexBinaryIVF(quantizer, nbytes * 8, nlist)
    try:
        index.train(train_sample(x, TRAIN_POINTS_PER_CENTROID * nlist))
        index.add(x)
    except RuntimeError as exc:
        raise BuildIndexError(f"IVF_FLAT build failed: {exc}") from None
    return BinaryIVFSegmentIndex(index, x, metric)


class IVFKind:
    """IVF_FLAT (float or binary), IVF_SQ8 and IVF_PQ."""

    def __init__(self, kind: IndexType) -> None:
        self.kind = kind

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        if metric.is_binary:
            if self.kind is not IndexType.IVF_FLAT:
                raise IllegalIndexType("Invalid index type for collection metric type")
            return _build_binary_ivf(vectors, metric, params)
        return _build_float_ivf(self.kind, vectors, metric, params)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        rows = rows_of(vectors)
        if metric.is_binary:
            if self.kind is not IndexType.IVF_FLAT or metric not in _BINARY_IVF_METRICS:
                raise IllegalIndexType("Invalid index type for collection metric type")
            codes = binary_rows(vectors)
            index = read_index_binary(path)
            check_loaded(index, path, (faiss.IndexBinaryIVF,), int(codes.shape[1]) * 8, rows, None)
            return BinaryIVFSegmentIndex(index, codes, metric)
        index = read_index(path)
        check_loaded(index, path, (_IVF_TYPES[self.kind],), int(vectors.shape[1]), rows, faiss_metric(metric))
        return IVFSegmentIndex(self.kind, index, metric)
