"""``mishards bench``: load an ann-benchmarks file's train set into a fresh collection, then for each index build
it, sweep its search parameter, and measure recall@k and QPS at nq=1 (several client threads) and batched."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mishards_tools.bench_plan import IndexPlan, plan_indexes, recall
from mishards_tools.connection import Endpoint, ToolError, check, connect
from mishards_tools.datasets_hdf5 import Hdf5Dataset, read_ground_truth

log = logging.getLogger(__name__)

SMALL_SEGMENT = 4096  # rows: smaller segments get no index built (Milvus 1.1's rule)


@dataclass(frozen=True)
class BenchSettings:
    path: Path
    endpoint: Endpoint = field(default_factory=Endpoint)
    indexes: tuple[str, ...] = ("IVF_FLAT", "HNSW")
    sweep: dict[str, tuple[int, ...]] = field(default_factory=dict)
    build: dict[str, tuple[int, ...]] = field(default_factory=dict)
    k: int = 10
    threads: tuple[int, ...] = (1, 4)
    queries: int = 1000  # at most this many test queries
    batch_nq: int = 100
    collection: str = ""
    keep: bool = False
    label: str = ""
    index_file_size: int = 1024


@dataclass(frozen=True)
class Point:
    """One (index, parameter value) measurement."""

    index: str
    param: str
    value: int
    recall: float
    qps_nq1: dict[str, float]  # client threads -> queries per second, one query per call
    p50_ms: float  # nq=1 latency, single thread
    p99_ms: float
    qps_batched: float
    build_seconds: float
    build: dict[str, int]


def search_ids(client: Any, name: str, k: int, queries: np.ndarray, params: dict[str, int]) -> tuple[Any, Any]:
    status, result = client.search(name, k, queries, params=params)
    check(status, f"search {params}")
    return np.asarray(result.ids), np.asarray(result.distances)


def measure_nq1(clients: list[Any], name: str, k: int, queries: np.ndarray, params: dict[str, int],
                threads: int) -> tuple[float, np.ndarray, np.ndarray, list[float]]:
    """Every query alone, ``threads`` callers at once: (QPS, ids, distances, latencies in seconds)."""
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    dist = np.zeros((len(queries), k), dtype=np.float64)
    latencies: list[float] = [0.0] * len(queries)
    next_row = iter(range(len(queries)))
    lock = threading.Lock()

    def worker(client: Any) -> None:
        while True:
            with lock:
                row = next(next_row, None)
            if row is None:
                return
            began = time.perf_counter()
            got_ids, got_dist = search_ids(client, name, k, queries[row:row + 1], params)
            latencies[row] = time.perf_counter() - began
            width = min(k, got_ids.shape[1])
            ids[row, :width] = got_ids[0, :width]
            dist[row, :width] = got_dist[0, :width]

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench") as pool:
        for future in [pool.submit(worker, clients[i % len(clients)]) for i in range(threads)]:
            future.result()
    return len(queries) / (time.perf_counter() - began), ids, dist, latencies


def measure_batched(client: Any, name: str, k: int, queries: np.ndarray, params: dict[str, int],
                    batch: int) -> float:
    began = time.perf_counter()
    for start in range(0, len(queries), batch):
        search_ids(client, name, k, queries[start:start + batch], params)
    return len(queries) / (time.perf_counter() - began)


def load_train(client: Any, name: str, path: Path, index_file_size: int, err: TextIO) -> tuple[int, float]:
    """Create ``name`` and insert the train rows with ids = row numbers (the ground truth's ids); (rows, s)."""
    from mishards_client import MetricType

    data = Hdf5Dataset(path, "train")
    info = data.info
    status, exists = client.has_collection(name)
    check(status, "has_collection")
    if exists:
        check(client.drop_collection(name), f"drop_collection {name!r}")
    param = {"collection_name": name, "dimension": info.dimension, "index_file_size": index_file_size,
             "metric_type": MetricType[info.metric or "L2"]}
    check(client.create_collection(param), f"create_collection {name!r}")
    began = time.perf_counter()
    for chunk in data.chunks(10_000):
        ids = np.arange(chunk.start, chunk.stop, dtype=np.int64)
        status, _ = client.insert(name, chunk.vectors, ids=ids)
        check(status, f"insert of train rows {chunk.start}..{chunk.stop - 1}")
    check(client.flush([name]), "flush")
    seconds = time.perf_counter() - began
    data.close()
    err.write(f"loaded {info.rows:,} train vectors of dimension {info.dimension} in {seconds:.1f} s\n")
    if info.rows < SMALL_SEGMENT:
        err.write(f"note: Milvus 1.1 (and Mishards) search segments under {SMALL_SEGMENT} rows exactly, without "
                  f"their index: this run measures exact search\n")
    return info.rows, seconds


def build_index(client: Any, name: str, plan: IndexPlan) -> float:
    from mishards_client import IndexType

    began = time.perf_counter()
    if plan.index == "FLAT":
        check(client.drop_index(name), "drop_index (FLAT)")
    else:
        check(client.create_index(name, IndexType[plan.index], plan.build), f"create_index {plan.index}")
    return time.perf_counter() - began


def run_bench(settings: BenchSettings, err: TextIO, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Every measurement as a JSON-ready dict (see README, "Import and benchmark tools")."""
    queries, truth, truth_dist, distance = read_ground_truth(settings.path)
    queries = queries[:settings.queries]
    truth, truth_dist = truth[:len(queries)], None if truth_dist is None else truth_dist[:len(queries)]
    if truth.shape[1] < settings.k:
        raise ToolError(f"{settings.path}: the ground truth has {truth.shape[1]} neighbours a query; --k "
                        f"{settings.k} needs as many")
    source = Hdf5Dataset(settings.path, "train")
    rows = source.info.rows
    dimension = source.info.dimension
    source.close()
    plans = plan_indexes(list(settings.indexes), rows, dimension, settings.k, settings.sweep, settings.build)
    name = settings.collection or f"bench_{os.getpid()}_{int(clock())}"
    clients = [connect(settings.endpoint) for _ in range(max(settings.threads))]
    points: list[Point] = []
    failures: dict[str, str] = {}
    try:
        main = clients[0]
        rows, load_seconds = load_train(main, name, settings.path, settings.index_file_size, err)
        for plan in plans:
            try:
                build_seconds = build_index(main, name, plan)
            except ToolError as exc:
                failures[plan.index] = str(exc)
                err.write(f"{plan.index}: {exc}; skipped\n")
                continue
            err.write(f"{plan.index} {plan.build} built in {build_seconds:.1f} s\n")
            for value in plan.values:
                params = {plan.param: value} if plan.param else {}
                search_ids(main, name, settings.k, queries[:8], params)  # warm: load segments, index
                qps: dict[str, float] = {}
                ids = dist = None
                lat: list[float] = []
                for threads in settings.threads:
                    rate, got_ids, got_dist, got_lat = measure_nq1(clients, name, settings.k, queries, params,
                                                                    threads)
                    qps[str(threads)] = rate
                    if ids is None:
                        ids, dist, lat = got_ids, got_dist, got_lat
                assert ids is not None and dist is not None
                batched = measure_batched(main, name, settings.k, queries, params, settings.batch_nq)
                point = Point(plan.index, plan.param, value,
                              recall(ids, dist, truth, truth_dist, settings.k, distance), qps,
                              float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3), batched,
                              build_seconds, plan.build)
                points.append(point)
                err.write(f"  {plan.param or '-'}={value}: recall {point.recall:.3f}, "
                          f"nq=1 {max(qps.values()):,.0f} q/s, batched {batched:,.0f} q/s\n")
    finally:
        if not settings.keep:
            try:
                clients[0].drop_collection(name)
            except Exception as exc:  # the endpoint may be gone: report, keep the figures
                log.warning("could not drop %s: %s", name, exc)
        for client in clients:
            client.close()
    return {"label": settings.label or settings.endpoint.uri, "endpoint": settings.endpoint.uri,
            "dataset": settings.path.name, "distance": distance, "rows": rows, "dimension": dimension,
            "queries": len(queries), "k": settings.k, "threads": list(settings.threads),
            "batch_nq": settings.batch_nq, "load_seconds": load_seconds, "collection": name,
            "finished": clock(), "failures": failures, "points": [asdict(p) for p in points]}
