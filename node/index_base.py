"""What every per-segment index kind shares: the protocols, the tuning constants, and helpers for
rows, queries, results, training samples and faiss files (see :mod:`node.indexes` for the kinds)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from coordinator.errors import BuildIndexError, IllegalIndexType, StorageError
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node.kernels import _OVERSAMPLE_LIMIT, LiveMask
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
ANNOY_MAX_INT = 2**31 - 1  # annoy's Python binding takes n and search_k as C ints
_MMAP_FLAGS = faiss.IO_FLAG_MMAP_IFC
# The stubs bundled with faiss-cpu miss some 1.15 classes and constructor signatures.
faiss_untyped: Any = faiss
FLAT_MARKER = b"mishards FLAT index: searched exactly from the segment's rows\n"
_MIN = np.minimum.reduce  # one C call (``ndarray.min`` goes through a Python wrapper): results are small


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


def faiss_metric(metric: MetricType) -> int:
    if metric is MetricType.L2:
        return int(faiss.METRIC_L2)
    if metric is MetricType.IP:
        return int(faiss.METRIC_INNER_PRODUCT)
    raise IllegalIndexType(f"Invalid index type for collection metric type {metric.name}")


def rows_of(vectors: np.ndarray) -> int:
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {vectors.shape}")
    return int(vectors.shape[0])


def float_rows(vectors: np.ndarray) -> np.ndarray:
    rows_of(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def binary_rows(vectors: np.ndarray) -> np.ndarray:
    rows_of(vectors)
    return np.ascontiguousarray(vectors, dtype=np.uint8)


def float_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries of shape {q.shape} do not match dimension {dim}")
    return q


def float_search(index: Any, q: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(q, k, params=params)`` for queries that :func:`float_queries` made (C-contiguous float32 of
    the index's dimension): the SWIG call without the Python wrapper's checks and conversions, which cost a few
    microseconds per nq=1 search. Distances float32 and offsets int64, (nq, k) each."""
    if q.dtype != np.float32 or q.ndim != 2 or not q.flags.c_contiguous:  # faiss reads the buffer as it is
        raise ValueError(f"queries must be C-contiguous float32 rows, not {q.dtype} of shape {q.shape}")
    n = q.shape[0]
    dist = np.empty((n, k), dtype=np.float32)
    offs = np.empty((n, k), dtype=np.int64)
    index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(dist), faiss.swig_ptr(offs), params)
    return dist, offs


def binary_queries(queries: np.ndarray, nbytes: int) -> np.ndarray:
    q = np.ascontiguousarray(queries, dtype=np.uint8)
    if q.ndim != 2 or q.shape[1] != nbytes:
        raise ValueError(f"binary queries of shape {q.shape} do not match {nbytes} bytes per vector")
    return q


def int_param(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise BuildIndexError(f"Parameter list must contain: {name}")
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BuildIndexError(f"Invalid {name}: {value!r}")
    return int(value)


def need_rows(rows: int, kind: IndexType) -> None:
    if rows < 1:
        raise BuildIndexError(f"cannot build a {kind.name} index over an empty segment")


def check_live(live: LiveMask, rows: int) -> None:
    if live.rows != rows:
        raise ValueError(f"live mask covers {live.rows} rows, the index holds {rows}")


class ParamsByValue:
    """Search parameters without a selector, one object per value of the searched parameter (nprobe, ef), made
    once and shared by concurrent searches (faiss only reads them); at most ``kept`` values are remembered."""

    def __init__(self, make: Callable[[int], Any], kept: int = 64) -> None:
        self._make = make
        self._kept = kept
        self._made: dict[int, Any] = {}

    def get(self, value: int) -> Any:
        sp = self._made.get(value)
        if sp is None:
            sp = self._make(value)
            if len(self._made) < self._kept:
                self._made[value] = sp
        return sp


def finish(dist: np.ndarray, offs: np.ndarray, k: int, hib: bool) -> TopK:
    """Normalise a result: (nq, k) int64 offsets, float32 distances, worst-value holes."""
    offs = np.asarray(offs, dtype=np.int64)
    dist = np.asarray(dist, dtype=np.float32)
    width = offs.shape[1]
    if width < k:
        pad = TopK.empty(offs.shape[0], k - width, hib)
        offs = np.concatenate([offs, pad.ids], axis=1)
        dist = np.concatenate([dist, pad.distances], axis=1)
    elif width > k:
        offs, dist = offs[:, :k], dist[:, :k]
    if offs.size and _MIN(offs, axis=None) < 0:  # holes (NO_ID): their distances become the worst value
        holes = offs == NO_ID
        dist = dist.copy()
        dist[holes] = hole_distance(hib)
    return TopK(np.ascontiguousarray(offs), np.ascontiguousarray(dist))


def drop_duplicates(dist: np.ndarray, offs: np.ndarray, hib: bool) -> tuple[np.ndarray, np.ndarray]:
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


def widen(queries: np.ndarray, first: TopK, want: int, width: int, max_width: int,
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


def oversample_width(k: int, live: LiveMask) -> int:
    """First result count to ask an index without ID selectors for, to keep ``k`` live rows."""
    if live.deleted <= _OVERSAMPLE_LIMIT:
        return min(live.rows, k + live.deleted)
    # Many deletes: aim at k live rows for a uniform spread of the deleted ones, with a margin.
    return min(live.rows, max(2 * k, math.ceil(k * live.rows / max(1, live.live) * 1.25)))


def train_sample(vectors: np.ndarray, cap: int) -> np.ndarray:
    rows = vectors.shape[0]
    if rows <= cap:
        return vectors
    chosen = np.sort(np.random.default_rng(SEED).choice(rows, size=cap, replace=False))
    return np.ascontiguousarray(vectors[chosen])


def effective_nlist(nlist: int, rows: int) -> int:
    return max(1, min(nlist, rows // MIN_POINTS_PER_LIST))


def read_index(path: Path) -> Any:
    try:
        return faiss.read_index(str(path), _MMAP_FLAGS)
    except RuntimeError as exc:
        raise StorageError(f"cannot read index file {path}: {exc}") from None


def read_index_binary(path: Path) -> Any:
    try:
        return faiss.read_index_binary(str(path), _MMAP_FLAGS)
    except RuntimeError as exc:
        raise StorageError(f"cannot read index file {path}: {exc}") from None


def check_loaded(index: Any, path: Path, expected: tuple[type, ...], dim: int, rows: int,
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


def ivf_nbytes(index: Any, centroid_bytes: int) -> int:
    total = int(index.ntotal) * (int(index.code_size) + 8) + int(index.nlist) * centroid_bytes
    table = getattr(index, "precomputed_table", None)
    if table is not None:
        total += int(table.size()) * 4
    return total
