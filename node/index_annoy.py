"""The ANNOY kind: ``annoy.AnnoyIndex`` built single-threaded with a fixed seed, squared L2 distances,
oversampling past deleted rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import annoy
import numpy as np

from coordinator.errors import BuildIndexError, IllegalIndexType, StorageError
from coordinator.model import IndexType, MetricType
from coordinator.topk import NO_ID, TopK, hole_distance
from node.index_base import (
    ANNOY_MAX_INT,
    ANNOY_SEED,
    SegmentIndex,
    check_live,
    finish,
    float_queries,
    float_rows,
    int_param,
    need_rows,
    oversample_width,
    rows_of,
    widen,
)
from node.kernels import LiveMask, _drop_deleted
from node.params import SearchParams

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
        q = float_queries(queries, self.dim)
        if k <= 0 or q.shape[0] == 0 or live.live == 0:
            return TopK.empty(q.shape[0], max(k, 0), hib)
        check_live(live, self.rows)
        search_k = params.search_k if params.search_k is not None and params.search_k > 0 else -1

        def run(qs: np.ndarray, width: int) -> TopK:
            # A caller's search_k is meant for k results: scale it with the oversampled width.
            sk = search_k if search_k < 0 or width <= k else min(ANNOY_MAX_INT, search_k * width // k)
            sk = min(sk, ANNOY_MAX_INT)
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
                return finish(res.distances, res.ids, k, hib)
            return finish(dist, offs, k, hib)

        if not live.deleted:
            return run(q, min(k, self.rows))
        width = oversample_width(k, live)
        return widen(q, run(q, width), min(k, live.live), width, self.rows, run)

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
        x = float_rows(vectors)
        rows, dim = x.shape
        need_rows(rows, self.kind)
        if rows > ANNOY_MAX_INT:
            raise BuildIndexError("ANNOY ids are 32-bit: segment too large")
        index = annoy.AnnoyIndex(dim, _annoy_metric(metric))
        index.set_seed(ANNOY_SEED)
        for offset, row in enumerate(x):
            index.add_item(offset, row)
        index.build(int_param(params, "n_trees"), n_jobs=1)
        return AnnoySegmentIndex(index, dim, metric, None)

    def load(self, path: Path, vectors: np.ndarray, metric: MetricType, params: Mapping[str, Any]) -> SegmentIndex:
        rows = rows_of(vectors)
        dim = int(vectors.shape[1])
        index = annoy.AnnoyIndex(dim, _annoy_metric(metric))
        try:
            index.load(str(path))
        except OSError as exc:
            raise StorageError(f"cannot read index file {path}: {exc}") from None
        if int(index.get_n_items()) != rows:
            raise StorageError(f"index file {path} holds {index.get_n_items()} rows; the segment has {rows}")
        return AnnoySegmentIndex(index, dim, metric, path.stat().st_size)
