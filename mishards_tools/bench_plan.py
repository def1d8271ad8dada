"""Pure decisions of ``mishards bench``: which index gets which build parameters, which search parameter is swept
over which values, and recall@k against an ann-benchmarks ground truth (tolerant of ties)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mishards_tools.connection import ToolError


@dataclass(frozen=True)
class IndexPlan:
    index: str  # IndexType name
    build: dict[str, int]
    param: str  # search parameter swept ('' for FLAT: one point)
    values: tuple[int, ...]


SWEPT = {"IVF_FLAT": "nprobe", "IVF_SQ8": "nprobe", "IVF_SQ8H": "nprobe", "IVF_PQ": "nprobe", "HNSW": "ef",
         "RNSG": "search_length", "ANNOY": "search_k", "FLAT": ""}
DEFAULT_SWEEP = {"nprobe": (1, 2, 4, 8, 16, 32, 64, 128), "ef": (16, 32, 64, 128, 256, 512),
                 "search_length": (10, 20, 40, 80), "search_k": (100, 500, 2000, 10000, 50000)}


def default_nlist(rows: int) -> int:
    """4 * sqrt(rows), at least 1, at most 16384 and at most rows / 39 (faiss wants 39 training points a list)."""
    return max(1, min(16384, int(4 * math.sqrt(rows)), rows // 39))


def default_pq_m(dimension: int) -> int:
    """The largest of 16, 8, 4, 2, 1 that divides the dimension."""
    return next(m for m in (16, 8, 4, 2, 1) if dimension % m == 0)


def parse_pairs(text: str, what: str) -> dict[str, tuple[int, ...]]:
    """``"nprobe=1,4,16 ef=32,64"`` (spaces or semicolons between names) as {name: values}."""
    out: dict[str, tuple[int, ...]] = {}
    for item in text.replace(";", " ").split():
        name, sep, values = item.partition("=")
        try:
            parsed = tuple(int(v) for v in values.split(",") if v)
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed:
            raise ToolError(f"{what} {item!r}: expected NAME=V1,V2,... with integer values")
        out[name] = parsed
    return out


def plan_indexes(indexes: list[str], rows: int, dimension: int, k: int, sweep: dict[str, tuple[int, ...]],
                 build: dict[str, tuple[int, ...]]) -> list[IndexPlan]:
    """One plan per requested index: build parameters (defaults for this size, overridden by ``build``) and the
    swept values (``sweep`` or the defaults, limited to what the index allows: nprobe <= nlist, ef >= k)."""
    plans = []
    for raw in indexes:
        index = raw.strip().upper()
        if index not in SWEPT:
            raise ToolError(f"unknown index {raw!r} (known: {', '.join(SWEPT)})")
        params: dict[str, int] = {}
        if index.startswith("IVF"):
            params["nlist"] = default_nlist(rows)
            if index == "IVF_PQ":
                params["m"] = default_pq_m(dimension)
        elif index == "HNSW":
            params.update(M=16, efConstruction=200)
        elif index == "ANNOY":
            params["n_trees"] = 8
        elif index == "RNSG":
            params.update(search_length=45, out_degree=50, candidate_pool_size=300, knng=100)
        for name in params:
            if name in build:
                params[name] = build[name][0]
        param = SWEPT[index]
        values: tuple[int, ...] = (0,)
        if param:
            values = sweep.get(param, DEFAULT_SWEEP[param])
            if param == "nprobe":
                values = tuple(v for v in values if v <= params["nlist"]) or (params["nlist"],)
            if param == "ef":
                values = tuple(v for v in values if v >= k) or (k,)
        plans.append(IndexPlan(index, params, param, tuple(values)))
    return plans


def file_distances(server: np.ndarray, distance: str) -> np.ndarray:
    """Server distances in the file's terms: squared L2 -> euclidean; inner product of unit vectors -> 1 - cos;
    hamming and jaccard as they are."""
    if distance == "euclidean":
        return np.sqrt(np.maximum(server.astype(np.float64), 0.0))
    if distance in ("angular", "cosine"):
        return 1.0 - server.astype(np.float64)
    if distance in ("hamming", "jaccard"):
        return server.astype(np.float64)  # the same quantity on both sides
    return -server.astype(np.float64)  # dot: larger is nearer


def recall(ids: np.ndarray, distances: np.ndarray, truth: np.ndarray, truth_distances: np.ndarray | None,
           k: int, distance: str) -> float:
    """Mean recall@k. With the file's distances (ann-benchmarks' way) a result counts when it is no farther than
    the k-th true neighbour (ties and near-ties are not misses); without them, by id."""
    ids = ids[:, :k]
    if truth_distances is not None and distance in ("euclidean", "angular", "cosine", "hamming", "jaccard"):
        limit = truth_distances[:, k - 1:k]
        got = file_distances(distances[:, :k], distance)
        hits = (got <= limit + 1e-3 * np.abs(limit) + 1e-6) & (ids >= 0)
        return float(hits.sum() / (k * len(ids)))
    truth = truth[:, :k]
    found = sum(len(np.intersect1d(row[row >= 0], gt)) for row, gt in zip(ids, truth, strict=True))
    return float(found / (k * len(ids)))
