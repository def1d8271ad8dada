"""Per-segment search indexes: one kind per Milvus 1.1 index type, built over one segment's rows.

Rows are added with the sequential ids ``0..n-1``, their row offsets within the segment, so results
are offsets (the caller maps them to row ids) and a :class:`~node.kernels.LiveMask` can serve as a
faiss ``IDSelectorBitmap``. Deleted rows are never returned, and ``k`` live results come back
whenever the index finds that many (IVF: within the ``nprobe`` probed lists).

Kinds, and how each one excludes deleted rows:

=============  ====================================  ==================================================
kind           structure                             deletes
=============  ====================================  ==================================================
FLAT           ``kernels.exact_index``               the exact kernels' own handling
IVF_FLAT       ``IndexIVFFlat`` (float)              ID selector (``SearchParametersIVF.sel``)
IVF_FLAT       ``IndexBinaryIVF`` (HAMMING)          oversample ``k + deleted`` (few), else candidates
IVF_FLAT       ``IndexBinaryIVF`` (JACCARD/TANIMOTO) candidate rows of the probed lists, masked
IVF_SQ8        ``IndexIVFScalarQuantizer`` QT_8bit   ID selector
IVF_PQ         ``IndexIVFPQ``                        ID selector
HNSW           ``IndexHNSWFlat``                     ID selector (``SearchParametersHNSW.sel``)
RNSG           ``IndexNSGFlat``                      oversample and drop (faiss' NSG takes no params)
ANNOY          ``annoy.AnnoyIndex``                  oversample and drop
=============  ====================================  ==================================================

Where results can fall short of ``k`` live rows because of deletes (HNSW's filtered graph walk,
NSG, ANNOY), the queries concerned are searched again with a doubled width (``ef``, result count)
until they have ``k`` live results or the width covers the whole segment. HNSW scans its stored
vectors exactly (with the selector) once the width reaches the number of live rows: such a walk
costs more than the scan, and a filtered graph may not reach every live row. faiss' NSG can list
a row twice with inner product; repeats are dropped (and the query widened if that leaves holes).

Effective build parameters (small segments must always build; what was used is exposed as
``SegmentIndex.effective_params``, stored in the index file, and read back by ``load``):

- IVF: ``nlist = min(nlist, max(1, rows // 39))`` (faiss wants 39 training points per list).
  Training uses every row up to ``256 * nlist`` rows (``256 * max(nlist, 2**nbits)`` for IVF_PQ),
  beyond that a sorted sample drawn with the fixed seed :data:`SEED`.
- IVF_PQ: ``nbits`` (default 8) is lowered until ``2**nbits <= rows`` (at least 1); a training set
  smaller than ``2**nbits`` points (one row) is repeated to that size.
- HNSW: ``M`` and ``efConstruction`` as given.
- RNSG: ``out_degree`` -> R, ``search_length`` -> construction search length L, ``candidate_pool_size``
  -> candidate pool C (the roles of these knowhere parameters in the same algorithm),
  ``knng`` -> GK; L and GK are capped at ``rows`` and ``rows - 1``. faiss' NSG loops forever when
  a search pool exceeds the row count, so every search length is capped at ``rows`` too. The knn
  graph is exact (brute force) up to :data:`NSG_EXACT_KNN_MAX_ROWS` rows, NNDescent beyond.
  Segments under :data:`NSG_MIN_ROWS` rows (too small for faiss' knn-graph check) get an exact flat
  index instead; their ``effective_params`` are ``{}``.
- ANNOY: ``n_trees`` as given; built single-threaded with seed :data:`ANNOY_SEED` (reproducible).

Search parameters missing from ``SearchParams`` (the collection's index type changed since this
segment was built) fall back to :data:`DEFAULT_NPROBE`, :data:`DEFAULT_EF`,
:data:`DEFAULT_SEARCH_LENGTH` and annoy's default ``search_k``. ``nprobe`` is capped at ``nlist``;
``ef`` is raised to ``k``; ``search_k <= 0`` means annoy's default (``n_trees * n``).

Distances: L2 is squared euclidean (ascending), IP the raw inner product (descending), as the exact
kernels report them. ANNOY's euclidean distance is the square-rooted one: it is squared here so that
ANNOY segments merge consistently with faiss segments (Milvus 1.1 reported annoy's own value).

Files: faiss indexes are written with ``write_index`` / ``write_index_binary`` and read back with
``IO_FLAG_MMAP_IFC``, which maps codes and inverted lists from the file (plain ``IO_FLAG_MMAP`` turns
IVF lists into ``OnDiskInvertedLists``, which start prefetch threads on every search). ANNOY files
are memory-mapped by annoy itself; note that ``AnnoyIndex.save`` also re-maps the index onto the
file it just wrote. FLAT writes a small marker file and rebuilds from the rows on load.

Threads: faiss releases the GIL and uses the calling thread's OpenMP setting; nothing here changes
global faiss state except :func:`node.kernels.use_blas_from` before flat-like (coarse quantizer)
searches. NSG reads its search length from the shared index object, so NSG searches of one segment
are serialised by a lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

import annoy
import faiss
import numpy as np

from coordinator.errors import BuildIndexError, IllegalIndexType, StorageError
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node.kernels import _OVERSAMPLE_LIMIT, BinaryFlat, FloatFlat, LiveMask, _drop_deleted, exact_index, use_blas_from
from node.params import SearchParams

SEED = 1234  # training-sample seed (faiss' own k-means seed is also fixed)
ANNOY_SEED = 42
MIN_POINTS_PER_LIST = 39
TRAIN_POINTS_PER_CENTROID = 256
NSG_MIN_ROWS = 10
NSG_EXACT_KNN_MAX_ROWS = 50_000
DEFAULT_NPROBE = 16
DEFAULT_EF = 64
DEFAULT_SEARCH_LENGTH = 64
_ANNOY_MAX_INT = 2**31 - 1  # annoy's Python binding takes n and search_k as C ints
_MMAP_FLAGS = faiss.IO_FLAG_MMAP_IFC
# The stubs bundled with faiss-cpu miss some 1.15 classes and constructor signatures.
_faiss: Any = faiss
_FLAT_MARKER = b"mishards FLAT index: searched exactly from the segment's rows\n"


class SegmentIndex(Protocol):
    """A built (or loaded) index over the rows of one segment; results are row offsets."""

    kind: IndexType
    metric: MetricType

    @property
    def effective_params(self) -> Mapping[str, Any]:
        """The build parameters actually used (after the small-segment reductions)."""
        ...

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the index (for cache accounting)."""
        ...

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        """Offsets and distances, best first; -1 holes only when fewer than k live rows are found."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to exactly ``path`` (the caller makes it atomic)."""
        ...


class IndexKind(Protocol):
    kind: IndexType

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex: ...

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        """Read an index written by ``save``; ``vectors`` are the segment's rows (typically mmapped)."""
        ...


# -- shared helpers -----------------------------------------------------------------------------


def _faiss_metric(metric: MetricType) -> int:
    if metric is MetricType.L2:
        return int(faiss.METRIC_L2)
    if metric is MetricType.IP:
        return int(faiss.METRIC_INNER_PRODUCT)
    raise IllegalIndexType(f"Invalid index type for collection metric type {metric.name}")


def _rows_of(vectors: np.ndarray) -> int:
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {vectors.shape}")
    return int(vectors.shape[0])


def _float_rows(vectors: np.ndarray) -> np.ndarray:
    _rows_of(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _binary_rows(vectors: np.ndarray) -> np.ndarray:
    _rows_of(vectors)
    return np.ascontiguousarray(vectors, dtype=np.uint8)


def _float_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries of shape {q.shape} do not match dimension {dim}")
    return q


def _binary_queries(queries: np.ndarray, nbytes: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.uint8)
    if q.ndim != 2 or q.shape[1] != nbytes:
        raise ValueError(f"binary queries of shape {q.shape} do not match {nbytes} bytes per vector")
    return q


def _int_param(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise BuildIndexError(f"Parameter list must contain: {name}")
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BuildIndexError(f"Invalid {name}: {value!r}")
    return int(value)


def _need_rows(rows: int, kind: IndexType) -> None:
    if rows < 1:
        raise BuildIndexError(f"cannot build a {kind.name} index over an empty segment")


def _check_live(live: LiveMask, rows: int) -> None:
    if live.rows != rows:
        raise ValueError(f"live mask covers {live.rows} rows, the index holds {rows}")


def _finish(dist: np.ndarray, offs: np.ndarray, k: int, hib: bool) -> TopK:
    """Normalise a result: (nq, k) int64 offsets, float32 distances, worst-value holes."""
    offs = np.asarray(offs, dtype=np.int64)
    dist = np.asarray(dist).astype(np.float32)
    width = offs.shape[1]
    if width < k:
        pad = TopK.empty(offs.shape[0], k - width, hib)
        offs = np.concatenate([offs, pad.ids], axis=1)
        dist = np.concatenate([dist, pad.distances], axis=1)
    elif width > k:
        offs, dist = offs[:, :k], dist[:, :k]
    holes = offs == NO_ID
    if holes.any():
        dist = dist.copy()
        dist[holes] = hole_distance(hib)
    return TopK(np.ascontiguousarray(offs), np.ascontiguousarray(dist))


def _drop_duplicates(dist: np.ndarray, offs: np.ndarray, hib: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first (best) occurrence of each offset of a row; later ones become trailing holes."""
    order = np.argsort(offs, axis=1, kind="stable")
    ranked = np.take_along_axis(offs, order, axis=1)
    again = np.zeros(ranked.shape, dtype=bool)
    again[:, 1:] = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] != NO_ID)
    if not again.any():
        return dist, offs
    dup = np.empty_like(again)
    np.put_along_axis(dup, order, again, axis=1)
    offs = np.where(dup, NO_ID, offs)
    keep = np.argsort(offs == NO_ID, axis=1, kind="stable")
    offs = np.take_along_axis(offs, keep, axis=1)
    dist = np.take_along_axis(dist, keep, axis=1).astype(np.float32)
    dist[offs == NO_ID] = hole_distance(hib)
    return dist, offs


def _found(top: TopK) -> np.ndarray:
    return np.asarray((top.ids != NO_ID).sum(axis=1))


def _widen(queries: np.ndarray, first: TopK, want: int, width: int, max_width: int,
           rerun: Callable[[np.ndarray, int], TopK]) -> TopK:
    """Search again, with a doubled width each time, the queries that found fewer than ``want`` rows."""
    pending = np.flatnonzero(_found(first) < want)
    if pending.size == 0 or width >= max_width:
        return first
    ids, dist = first.ids.copy(), first.distances.copy()
    while pending.size and width < max_width:
        width = min(max_width, width * 2)
        part = rerun(queries[pending], width)
        ids[pending] = part.ids
        dist[pending] = part.distances
        pending = pending[_found(part) < want]
    return TopK(ids, dist)


def _oversample_width(k: int, live: LiveMask) -> int:
    """First result count to ask an index without ID selectors for, to keep ``k`` live rows."""
    if live.deleted <= _OVERSAMPLE_LIMIT:
        return min(live.rows, k + live.deleted)
    # Many deletes: aim at k live rows for a uniform spread of the deleted ones, with a margin.
    return min(live.rows, max(2 * k, math.ceil(k * live.rows / max(1, live.live) * 1.25)))


def _train_sample(vectors: np.ndarray, cap: int) -> np.ndarray:
    rows = vectors.shape[0]
    if rows <= cap:
        return vectors
    chosen = np.sort(np.random.default_rng(SEED).choice(rows, size=cap, replace=False))
    return np.ascontiguousarray(vectors[chosen])


def _effective_nlist(nlist: int, rows: int) -> int:
    return max(1, min(nlist, rows // MIN_POINTS_PER_LIST))


def _read_index(path: Path) -> Any:
    try:
        return faiss.read_index(str(path), _MMAP_FLAGS)
    except RuntimeError as exc:
        raise StorageError(f"cannot read index file {path}: {exc}") from None


def _read_index_binary(path: Path) -> Any:
    try:
        return faiss.read_index_binary(str(path), _MMAP_FLAGS)
    except RuntimeError as exc:
        raise StorageError(f"cannot read index file {path}: {exc}") from None


def _check_loaded(index: Any, path: Path, expected: tuple[type, ...], dim: int, rows: int,
                  metric: int | None) -> None:
    if not any(isinstance(index, t) for t in expected):
        names = "/".join(t.__name__ for t in expected)
        raise StorageError(f"index file {path} holds a {type(index).__name__}, expected {names}")
    if int(index.d) != dim or int(index.ntotal) != rows:
        raise StorageError(
            f"index file {path} holds {index.ntotal} rows of dimension {index.d}; "
            f"the segment has {rows} rows of dimension {dim}"
        )
    if metric is not None and int(index.metric_type) != metric:
        raise StorageError(f"index file {path} was built for another metric")


def _ivf_nbytes(index: Any, centroid_bytes: int) -> int:
    total = int(index.ntotal) * (int(index.code_size) + 8) + int(index.nlist) * centroid_bytes
    table = getattr(index, "precomputed_table", None)
    if table is not None:
        total += int(table.size()) * 4
    return total


# -- FLAT ---------------------------------------------------------------------------------------


class FlatSegmentIndex:
    """FLAT as an index kind: the exact kernels, nothing stored beyond a marker file."""

    def __init__(self, exact: FloatFlat | BinaryFlat, metric: MetricType) -> None:
        self.kind = IndexType.FLAT
        self.metric = metric
        self.exact = exact
        self.effective_params: dict[str, Any] = {}

    @property
    def nbytes(self) -> int:
        return self.exact.nbytes

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        if isinstance(self.exact, BinaryFlat):
            q = _binary_queries(queries, int(self.exact.codes.shape[1]))
        else:
            q = _float_queries(queries, int(self.exact.index.d))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        res = self.exact.search(q, k, live)
        return _finish(res.distances, res.ids, k, hib)

    def save(self, path: Path) -> None:
        path.write_bytes(_FLAT_MARKER)


class FlatKind:
    kind = IndexType.FLAT

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        _rows_of(vectors)
        return FlatSegmentIndex(exact_index(vectors, metric), metric)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        return self.build(vectors, metric, params)


# -- IVF (float) --------------------------------------------------------------------------------


class IVFSegmentIndex:
    """IVF_FLAT / IVF_SQ8 / IVF_PQ over float rows; deleted rows are excluded by an ID selector."""

    def __init__(self, kind: IndexType, index: Any, metric: MetricType) -> None:
        self.kind = kind
        self.metric = metric
        self.index = index
        self.effective_params: dict[str, Any] = {"nlist": int(index.nlist)}
        if kind is IndexType.IVF_PQ:
            self.effective_params["m"] = int(index.pq.M)
            self.effective_params["nbits"] = int(index.pq.nbits)

    @property
    def nbytes(self) -> int:
        return _ivf_nbytes(self.index, int(self.index.d) * 4)

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        dim = int(self.index.d)
        q = _float_queries(queries, dim)
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        _check_live(live, int(self.index.ntotal))
        nprobe = min(params.nprobe or DEFAULT_NPROBE, int(self.index.nlist))
        sp = faiss.SearchParametersIVF()
        sp.nprobe = nprobe
        if live.deleted:
            sp.sel = live.selector()
        use_blas_from(dim)  # the coarse quantizer search is a flat search
        dist, offs = self.index.search(q, k, params=sp)
        return _finish(dist, offs, k, hib)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


_IVF_TYPES: dict[IndexType, type] = {
    IndexType.IVF_FLAT: faiss.IndexIVFFlat,
    IndexType.IVF_SQ8: faiss.IndexIVFScalarQuantizer,
    IndexType.IVF_PQ: faiss.IndexIVFPQ,
}


def _build_float_ivf(kind: IndexType, vectors: np.ndarray, metric: MetricType,
                     params: Mapping[str, Any]) -> IVFSegmentIndex:
    x = _float_rows(vectors)
    rows, dim = x.shape
    _need_rows(rows, kind)
    fmetric = _faiss_metric(metric)
    nlist = _effective_nlist(_int_param(params, "nlist"), rows)
    quantizer = faiss.IndexFlat(dim, fmetric)
    centroids = nlist
    index: Any
    if kind is IndexType.IVF_FLAT:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, fmetric)
    elif kind is IndexType.IVF_SQ8:
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, fmetric)
    else:
        m = _int_param(params, "m")
        if dim % m:
            raise BuildIndexError(f"IVF_PQ: m={m} does not divide the dimension {dim}")
        nbits = min(_int_param(params, "nbits", 8), max(1, math.floor(math.log2(rows))))
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, fmetric)
        centroids = max(nlist, 2**nbits)
    train = _train_sample(x, TRAIN_POINTS_PER_CENTROID * centroids)
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
        total = _ivf_nbytes(self.index, int(self.index.code_size))
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
        q = _binary_queries(queries, int(self.index.code_size))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), False)
        rows = int(self.index.ntotal)
        _check_live(live, rows)
        nprobe = min(params.nprobe or DEFAULT_NPROBE, int(self.index.nlist))
        if self.metric is MetricType.HAMMING and live.deleted <= _OVERSAMPLE_LIMIT:
            sp = faiss.SearchParametersIVF()
            sp.nprobe = nprobe
            if live.deleted == 0:
                dist, offs = self.index.search(q, k, params=sp)
                return _finish(dist, offs, k, False)
            dist, offs = self.index.search(q, min(rows, k + live.deleted), params=sp)
            res = _drop_deleted(dist, offs, live, k, False)
            return _finish(res.distances, res.ids, k, False)
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
    x = _binary_rows(vectors)
    rows, nbytes = x.shape
    _need_rows(rows, IndexType.IVF_FLAT)
    nlist = _effective_nlist(_int_param(params, "nlist"), rows)
    quantizer = faiss.IndexBinaryFlat(nbytes * 8)
    index = faiss.IndexBinaryIVF(quantizer, nbytes * 8, nlist)
    try:
        index.train(_train_sample(x, TRAIN_POINTS_PER_CENTROID * nlist))
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
        rows = _rows_of(vectors)
        if metric.is_binary:
            if self.kind is not IndexType.IVF_FLAT or metric not in _BINARY_IVF_METRICS:
                raise IllegalIndexType("Invalid index type for collection metric type")
            codes = _binary_rows(vectors)
            index = _read_index_binary(path)
            _check_loaded(index, path, (faiss.IndexBinaryIVF,), int(codes.shape[1]) * 8, rows, None)
            return BinaryIVFSegmentIndex(index, codes, metric)
        index = _read_index(path)
        _check_loaded(index, path, (_IVF_TYPES[self.kind],), int(vectors.shape[1]), rows, _faiss_metric(metric))
        return IVFSegmentIndex(self.kind, index, metric)


# -- HNSW ---------------------------------------------------------------------------------------


class HNSWSegmentIndex:
    """HNSW over float rows; it cannot remove ids, so deleted rows are filtered by an ID selector."""

    def __init__(self, index: Any, metric: MetricType) -> None:
        self.kind = IndexType.HNSW
        self.metric = metric
        self.index = index
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
        q = _float_queries(queries, int(self.index.d))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        rows = int(self.index.ntotal)
        _check_live(live, rows)
        ef = max(params.ef or DEFAULT_EF, k)

        def run(qs: np.ndarray, width: int) -> TopK:
            if live.live <= width:
                # A walk of width >= the live rows costs more than scanning them (and the filtered
                # graph may not even reach them all): scan the stored vectors exactly.
                return self._exact(qs, k, live)
            sp = _faiss.SearchParametersHNSW()
            sp.efSearch = width
            if live.deleted:
                sp.sel = live.selector()
            dist, offs = self.index.search(qs, k, params=sp)
            return _finish(dist, offs, k, hib)

        return _widen(q, run(q, ef), min(k, live.live), ef, rows, run)

    def _exact(self, queries: np.ndarray, k: int, live: LiveMask) -> TopK:
        storage = faiss.downcast_index(self.index.storage)
        sp = faiss.SearchParameters()
        if live.deleted:
            sp.sel = live.selector()
        use_blas_from(int(self.index.d))
        dist, offs = storage.search(queries, k, params=sp)
        return _finish(dist, offs, k, self.metric.higher_is_better)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


class HNSWKind:
    kind = IndexType.HNSW

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        x = _float_rows(vectors)
        rows, dim = x.shape
        _need_rows(rows, self.kind)
        index = faiss.IndexHNSWFlat(dim, _int_param(params, "M"), _faiss_metric(metric))
        index.hnsw.efConstruction = _int_param(params, "efConstruction")
        try:
            index.add(x)
        except RuntimeError as exc:
            raise BuildIndexError(f"HNSW build failed: {exc}") from None
        return HNSWSegmentIndex(index, metric)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        index = _read_index(path)
        _check_loaded(index, path, (faiss.IndexHNSWFlat,), int(vectors.shape[1]), _rows_of(vectors),
                      _faiss_metric(metric))
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
        q = _float_queries(queries, int(self.index.d))
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        rows = int(self.index.ntotal)
        _check_live(live, rows)
        if not self.is_graph:
            sp = faiss.SearchParameters()
            if live.deleted:
                sp.sel = live.selector()
            dist, offs = self.index.search(q, k, params=sp)
            return _finish(dist, offs, k, hib)
        search_length = min(params.search_length or DEFAULT_SEARCH_LENGTH, rows)

        def run(qs: np.ndarray, width: int) -> TopK:
            # NSG's search pool is max(search_L, width): both must stay <= rows (else faiss never returns).
            with self._lock:
                self.index.nsg.search_L = search_length
                dist, offs = self.index.search(qs, width)
            # faiss' NSG can report a row twice with METRIC_INNER_PRODUCT (seen with faiss 1.15.1).
            dist, offs = _drop_duplicates(dist, offs, hib)
            if live.deleted:
                res = _drop_deleted(dist, offs, live, k, hib)
                return _finish(res.distances, res.ids, k, hib)
            return _finish(dist, offs, k, hib)

        width = _oversample_width(k, live) if live.deleted else min(k, rows)
        return _widen(q, run(q, width), min(k, live.live), width, rows, run)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


class NSGKind:
    kind = IndexType.RNSG

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        x = _float_rows(vectors)
        rows, dim = x.shape
        _need_rows(rows, self.kind)
        fmetric = _faiss_metric(metric)
        out_degree = _int_param(params, "out_degree")
        search_length = _int_param(params, "search_length")
        pool = _int_param(params, "candidate_pool_size")
        knng = _int_param(params, "knng")
        if rows < NSG_MIN_ROWS:
            flat = faiss.IndexFlat(dim, fmetric)
            flat.add(x)
            return NSGSegmentIndex(flat, metric)
        index = _faiss.IndexNSGFlat(dim, out_degree, fmetric)
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
        index = _read_index(path)
        _check_loaded(index, path, (faiss.IndexNSGFlat, faiss.IndexFlat), int(vectors.shape[1]), _rows_of(vectors),
                      _faiss_metric(metric))
        return NSGSegmentIndex(index, metric)


# -- ANNOY --------------------------------------------------------------------------------------


def _annoy_metric(metric: MetricType) -> Literal["euclidean", "dot"]:
    if metric is MetricType.L2:
        return "euclidean"
    if metric is MetricType.IP:
        return "dot"
    raise IllegalIndexType(f"Invalid index type for collection metric type {metric.name}")


class AnnoySegmentIndex:
    """ANNOY forest; no deletes, so deleted rows are dropped from an oversampled result.

    L2 distances are squared (annoy reports the square-rooted euclidean distance).
    """

    def __init__(self, index: annoy.AnnoyIndex, dim: int, metric: MetricType, file_bytes: int | None) -> None:
        self.kind = IndexType.ANNOY
        self.metric = metric
        self.index = index
        self.dim = dim
        self.rows = int(index.get_n_items())
        self.effective_params: dict[str, Any] = {"n_trees": int(index.get_n_trees())}
        self._file_bytes = file_bytes

    @property
    def nbytes(self) -> int:
        if self._file_bytes is not None:
            return self._file_bytes
        # Estimate of annoy's node array: one node per row plus the split nodes of every tree.
        node = 16 + 4 * self.dim + (4 if self.metric is MetricType.IP else 0)
        per_leaf = max(2, node // 4 - 3)
        return int(node * self.rows * (1 + 2.5 * self.effective_params["n_trees"] / per_leaf))

    def search(self, queries: np.ndarray, k: int, live: LiveMask, params: SearchParams) -> TopK:
        hib = self.metric.higher_is_better
        q = _float_queries(queries, self.dim)
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        _check_live(live, self.rows)
        search_k = params.search_k if params.search_k is not None and params.search_k > 0 else -1

        def run(qs: np.ndarray, width: int) -> TopK:
            # A caller's search_k is meant for k results: scale it with the oversampled width.
            sk = search_k if search_k < 0 or width <= k else min(_ANNOY_MAX_INT, search_k * width // k)
            sk = min(sk, _ANNOY_MAX_INT)
            offs = np.full((qs.shape[0], width), NO_ID, dtype=np.int64)
            dist = np.full((qs.shape[0], width), hole_distance(hib), dtype=np.float32)
            for i, vector in enumerate(qs.tolist()):
                ids, dists = self.index.get_nns_by_vector(vector, width, sk, True)
                offs[i, : len(ids)] = ids
                dist[i, : len(ids)] = dists
            if self.metric is MetricType.L2:
                found = offs != NO_ID
                dist[found] = np.square(dist[found])
            if live.deleted:
                res = _drop_deleted(dist, offs, live, k, hib)
                return _finish(res.distances, res.ids, k, hib)
            return _finish(dist, offs, k, hib)

        if not live.deleted:
            return run(q, min(k, self.rows))
        width = _oversample_width(k, live)
        return _widen(q, run(q, width), min(k, live.live), width, self.rows, run)

    def save(self, path: Path) -> None:
        try:
            saved = self.index.save(str(path))
        except OSError as exc:
            raise StorageError(f"cannot write index file {path}: {exc}") from None
        if not saved:
            raise StorageError(f"cannot write index file {path}")
        self._file_bytes = path.stat().st_size


class AnnoyKind:
    kind = IndexType.ANNOY

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        x = _float_rows(vectors)
        rows, dim = x.shape
        _need_rows(rows, self.kind)
        if rows > _ANNOY_MAX_INT:
            raise BuildIndexError("ANNOY ids are 32-bit: segment too large")
        index = annoy.AnnoyIndex(dim, _annoy_metric(metric))
        index.set_seed(ANNOY_SEED)
        for offset, row in enumerate(x):
            index.add_item(offset, row)
        index.build(_int_param(params, "n_trees"), n_jobs=1)
        return AnnoySegmentIndex(index, dim, metric, None)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        rows = _rows_of(vectors)
        dim = int(vectors.shape[1])
        index = annoy.AnnoyIndex(dim, _annoy_metric(metric))
        try:
            index.load(str(path))
        except OSError as exc:
            raise StorageError(f"cannot read index file {path}: {exc}") from None
        if int(index.get_n_items()) != rows:
            raise StorageError(f"index file {path} holds {index.get_n_items()} rows; the segment has {rows}")
        return AnnoySegmentIndex(index, dim, metric, path.stat().st_size)


# -- registry -----------------------------------------------------------------------------------

INDEX_KINDS: Mapping[IndexType, IndexKind] = MappingProxyType({
    IndexType.FLAT: FlatKind(),
    IndexType.IVF_FLAT: IVFKind(IndexType.IVF_FLAT),
    IndexType.IVF_SQ8: IVFKind(IndexType.IVF_SQ8),
    IndexType.IVF_PQ: IVFKind(IndexType.IVF_PQ),
    IndexType.HNSW: HNSWKind(),
    IndexType.RNSG: NSGKind(),
    IndexType.ANNOY: AnnoyKind(),
})


def _kind(kind: IndexType, metric: MetricType) -> IndexKind:
    found = INDEX_KINDS.get(kind)
    if found is None:
        raise IllegalIndexType(f"Unsupported index type: {int(kind)}")
    if metric.is_binary and kind not in (IndexType.FLAT, IndexType.IVF_FLAT):
        raise IllegalIndexType("Invalid index type for collection metric type")
    return found


def build_index(kind: IndexType, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
    """Build the index of one segment's rows (row offsets become the index ids).

    k-means training computes distances through faiss' process-wide BLAS switch, which searches move
    (see ``kernels.use_blas_from``); setting it for this dimension first makes a build not depend on
    what was searched before it.
    """
    if not metric.is_binary and vectors.ndim == 2:
        use_blas_from(int(vectors.shape[1]))
    return _kind(kind, metric).build(vectors, metric, params)


def load_index(kind: IndexType, path: Path, vectors: np.ndarray, metric: MetricType,
               params: Mapping[str, Any]) -> SegmentIndex:
    """Load an index written by ``SegmentIndex.save``; ``vectors`` are the segment's rows."""
    return _kind(kind, metric).load(Path(path), vectors, metric, params)
