"""The scale benchmark's settings and index kinds: node threads and cache, build and search parameters per kind."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from benchmarks.datasets import CACHE_DIR
from coordinator.model import IndexType

K = 10
BATCH_NQ = 100
INSERT_BATCH = 10_000
INDEX_FILE_SIZE_MB = 1024
CACHE_SIZE = "16GB"  # every kind fits: the cache never evicts during the measurement
BUILD_THREADS = 2
SEARCH_THREADS = 1
CALL_TIMEOUT_S = 600.0
CREATE_INDEX_TIMEOUT_S = 3 * 3600.0
SETTLE_TIMEOUT_S = 600.0
LOOP_CAP_S = 60.0
WARMUP = 20
DEFAULT_WORKDIR = CACHE_DIR / "scale"

FLOAT_KINDS = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "ANNOY")
BINARY_KINDS = ("BIN_FLAT", "BIN_IVF_FLAT")
KIND_ORDER = FLOAT_KINDS + BINARY_KINDS


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    data: str  # "float" or "binary"
    index_type: IndexType
    build: Mapping[str, int]
    points: tuple[tuple[str, Mapping[str, int]], ...]


def specs(rows: int) -> dict[str, Spec]:
    """Build and search parameters; float IVF uses nlist = 4 * sqrt(rows) (4000 at 1M), as index_bench.

    Binary IVF uses nlist = sqrt(rows) (1000 at 1M): faiss trains it with k-means over the bits as 256
    floats, twice the work per centroid of the 128-d float IVF, so nlist 4000 would take about 9 minutes
    at 1M with 2 threads (twice IVF_FLAT's 276 s measured here).
    """
    nlist = round(4 * math.sqrt(rows))
    probes = tuple((f"nprobe={p}", {"nprobe": p}) for p in (4, 16, 64))
    exact: tuple[tuple[str, Mapping[str, int]], ...] = (("exact", {}),)
    return {
        "FLAT": Spec("FLAT", "float", IndexType.FLAT, {}, exact),
        "IVF_FLAT": Spec("IVF_FLAT", "float", IndexType.IVF_FLAT, {"nlist": nlist}, probes),
        "IVF_SQ8": Spec("IVF_SQ8", "float", IndexType.IVF_SQ8, {"nlist": nlist}, probes),
        "IVF_PQ": Spec("IVF_PQ", "float", IndexType.IVF_PQ, {"nlist": nlist, "m": 16}, probes),
        "HNSW": Spec("HNSW", "float", IndexType.HNSW, {"M": 16, "efConstruction": 200},
                     tuple((f"ef={e}", {"ef": e}) for e in (32, 64, 128))),
        "ANNOY": Spec("ANNOY", "float", IndexType.ANNOY, {"n_trees": 16},
                      tuple((f"search_k={s}", {"search_k": s}) for s in (1000, 10000))),
        "BIN_FLAT": Spec("BIN_FLAT", "binary", IndexType.FLAT, {}, exact),
        "BIN_IVF_FLAT": Spec("BIN_IVF_FLAT", "binary", IndexType.IVF_FLAT, {"nlist": round(math.sqrt(rows))},
                             probes),
    }


def node_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}


def node_args(threads: int, role: str = "standalone") -> list[str]:
    return ["--role", role, "--omp-threads", str(threads), "--cache-size", CACHE_SIZE]


def collection_name(data: str) -> str:
    return f"scale_{data}"
