"""Per-segment search indexes: one kind per Milvus 1.1 index type, built over one segment's rows.

Rows are added with the sequential ids ``0..n-1``, their row offsets within the segment, so results
are offsets (the caller maps them to row ids) and a :class:`~node.kernels.LiveMask` can serve as a
faiss ``IDSelectorBitmap``. Deleted rows are never returned, and ``k`` live results come back
whenever the index finds that many (IVF: within the ``nprobe`` probed lists).

Kinds, and how each one excludes deleted rows (and the rows a hybrid search's filter leaves out: any row mask
becomes a ``LiveMask`` through ``LiveMask.of`` and is honoured the same way; :mod:`node.filter_plan` decides when a
filtered segment goes through its index at all, with which ``nprobe`` / ``ef``):

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
kernels report them. Only FLAT honours a search-time metric (``SearchParams.metric``, Milvus 1.1's
``metric_type`` search param for IDMAP / BIN_IDMAP files); every other kind answers in the metric it was
built for. ANNOY's euclidean distance is the square-rooted one: it is squared here so that
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

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from coordinator.errors import IllegalIndexType
from coordinator.model import IndexType, MetricType
from coordinator.topk import TopK
from node.index_annoy import AnnoyKind
from node.index_base import (
    ANNOY_SEED,
    DEFAULT_EF,
    DEFAULT_NPROBE,
    DEFAULT_SEARCH_LENGTH,
    FLAT_MARKER,
    MIN_POINTS_PER_LIST,
    NSG_EXACT_KNN_MAX_ROWS,
    NSG_MIN_ROWS,
    SEED,
    TRAIN_POINTS_PER_CENTROID,
    IndexKind,
    SegmentIndex,
    binary_queries,
    finish,
    float_queries,
    rows_of,
)
from node.index_graph import HNSWKind, NSGKind
from node.index_ivf import IVFKind
from node.kernels import BinaryFlat, FloatFlat, LiveMask, exact_index, use_blas_from
from node.params import SearchParams

__all__ = [
    "ANNOY_SEED", "DEFAULT_EF", "DEFAULT_NPROBE", "DEFAULT_SEARCH_LENGTH", "INDEX_KINDS", "MIN_POINTS_PER_LIST",
    "NSG_EXACT_KNN_MAX_ROWS", "NSG_MIN_ROWS", "SEED", "TRAIN_POINTS_PER_CENTROID", "FlatKind", "FlatSegmentIndex",
    "IndexKind", "SegmentIndex", "build_index", "load_index"
]


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
        """Exact top-k under the collection's metric, or the one the search asks for (``params.metric``: Milvus
        1.1 honours it for segments searched as IDMAP / BIN_IDMAP, the only ones searched here)."""
        metric = params.metric or self.metric
        hib = metric.higher_is_better
        if isinstance(self.exact, BinaryFlat):
            q = binary_queries(queries, int(self.exact.codes.shape[1]))
        else:
            q = float_queries(queries, self.exact.dim)
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        res = self.exact.search(q, k, live, metric)
        if isinstance(self.exact, FloatFlat) and res.k == k:
            return res  # faiss' own (nq, k) int64 / float32 arrays, holes already at the metric's worst distance
        return finish(res.distances, res.ids, k, hib)

    def save(self, path: Path) -> None:
        path.write_bytes(FLAT_MARKER)


class FlatKind:
    kind = IndexType.FLAT

    def build(self, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        rows_of(vectors)
        return FlatSegmentIndex(exact_index(vectors, metric), metric)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        return self.build(vectors, metric, params)


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
