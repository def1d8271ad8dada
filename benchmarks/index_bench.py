"""ANN indexes of one node through the Milvus 1.1 wire format, side by side with the same index in-process.

    python -m benchmarks.index_bench [--rows 100000] [--queries 1000] [--kinds IVF_FLAT,HNSW,...] [--repeats 3]

One node (``--omp-threads 1``, ``OMP_NUM_THREADS=1``) and, per index kind, a fresh collection (L2,
``index_file_size`` 1024 MB so that every row lands in one segment) holding the SIFT-like rows:

a) Build: ``CreateIndex`` wall time through gRPC (the node builds the segment's index, writes and
   fsyncs the file, commits it), the size of the ``index-*`` file on the node's storage, and the time
   of :func:`node.indexes.build_index` with the same parameters over the same rows (same order) in
   this process, one faiss thread on both sides.
b) Search, per search-parameter point: recall@10 against the exact ground truth through gRPC and
   in-process (the in-process index searched with its own ``.search``), and how many result ids the
   two share; (i) nq=1, one call at a time: p50 / p95 / p99 latency both ways, the added latency of
   gRPC, and the ``HasCollection`` round trip (the gRPC floor); (ii) nq=100, k=10: QPS both ways and
   the ratio gRPC / in-process.
c) A header with the machine, versions and the exact command; a final table; d) PASS / MISS lines
   for IVF_FLAT and HNSW against the targets (a benchmark: nothing here is an assertion).

Every figure is the median over ``--repeats``; each gRPC call runs back to back with the same search in-process
(which goes first alternates), so that other work on the machine weighs on both sides alike. Only
loopback is used, every loop is bounded in count and time, and the node is stopped by its process id.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.node_bench import (
    batches,
    check_status,
    filesystem,
    fmt_rate,
    lscpu,
    median,
    percentiles,
    protobuf_text,
    row_records,
    timed,
    verdict,
)
from benchmarks.pairing import paired, ping_latencies, search_call
from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from node.index_builds import BUILD_INDEX_THRESHOLD
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask, use_blas_from
from node.params import SearchParams
from tests.support.nodeproc import NodeProcess

METRIC_L2 = 1
INDEX_FILE_SIZE_MB = 1024  # one segment holds every row (51 MB at 100k x 128, 512 MB at 1M)
K = 10
BATCH_NQ = 100
INSERT_BATCH = 10_000
WARMUP_SINGLE = 20
WARMUP_BATCHED = 2
NODE_ARGS = ("--omp-threads", "1")
# --omp-threads is applied by the node's search threads; the environment reaches every thread (builds too).
NODE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
CALL_TIMEOUT_S = 120.0
CREATE_INDEX_TIMEOUT_S = 4 * 3600.0  # CreateIndex blocks until built: 1M-row graphs take a long time
LOOP_CAP_S = 120.0  # every timed search loop also stops after this long (then reports what it did)
MB_BYTES = 1e6

KIND_ORDER = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "ANNOY", "RNSG")
TARGET_KINDS = ("IVF_FLAT", "HNSW")
TARGET_ADDED_P50_MS = 0.5  # nq=1 p50 through gRPC minus in-process
TARGET_BATCHED_RATIO = 0.9  # gRPC nq=100 QPS / in-process QPS
TARGET_BEYOND_FLOOR_MS = 0.2  # nq=1 added p50 minus the HasCollection p50 (the node's own share)


# -- what is measured ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One search-parameter point: the JSON sent through gRPC and the same values in-process."""

    label: str
    wire: dict[str, int]
    params: SearchParams


@dataclass(frozen=True)
class Spec:
    name: str
    kind: IndexType
    build: dict[str, int]
    points: tuple[Point, ...]
    variant: str = ""  # a second build of the same kind (e.g. "nlist1024"), measured as its own collection

    @property
    def label(self) -> str:
        return f"{self.name}/{self.variant}" if self.variant else self.name


# Extra points measured whenever their kind is chosen: IVF_FLAT at nlist 1024 nprobe 64 (the table).
TABLE_NLIST = 1024
TABLE_NPROBE = 64


def table_specs(kind: str) -> list[Spec]:
    """The extra builds measured with ``kind`` (HNSW M16 ef 64 is already one of HNSW's points)."""
    if kind != "IVF_FLAT":
        return []
    point = Point(f"nprobe={TABLE_NPROBE}", {"nprobe": TABLE_NPROBE}, SearchParams(nprobe=TABLE_NPROBE))
    return [Spec("IVF_FLAT", IndexType.IVF_FLAT, {"nlist": TABLE_NLIST}, (point,), f"nlist{TABLE_NLIST}")]


def specs(rows: int) -> dict[str, Spec]:
    """Build and search parameters of every kind; IVF uses nlist = 4 * sqrt(rows) (1265 at 100k)."""
    nlist = round(4 * math.sqrt(rows))

    def ivf(name: str, build: dict[str, int]) -> Spec:
        points = tuple(Point(f"nprobe={p}", {"nprobe": p}, SearchParams(nprobe=p)) for p in (1, 4, 16))
        return Spec(name, IndexType[name], build, points)

    return {
        "IVF_FLAT": ivf("IVF_FLAT", {"nlist": nlist}),
        "IVF_SQ8": ivf("IVF_SQ8", {"nlist": nlist}),
        "IVF_PQ": ivf("IVF_PQ", {"nlist": nlist, "m": 16}),
        "HNSW": Spec("HNSW", IndexType.HNSW, {"M": 16, "efConstruction": 200},
                     tuple(Point(f"ef={e}", {"ef": e}, SearchParams(ef=e)) for e in (16, 64, 128))),
        "ANNOY": Spec("ANNOY", IndexType.ANNOY, {"n_trees": 16},
                      tuple(Point(f"search_k={s}", {"search_k": s}, SearchParams(search_k=s)) for s in (1000, 10000))),
        # The RNSG example of the Milvus 1.1 documentation.
        "RNSG": Spec("RNSG", IndexType.RNSG,
                     {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100},
                     tuple(Point(f"search_length={s}", {"search_length": s}, SearchParams(search_length=s))
                           for s in (20, 45, 100))),
    }


@dataclass
class PointRound:
    grpc_lat: np.ndarray  # seconds per nq=1 call
    local_lat: np.ndarray
    grpc_serial_qps: float
    local_serial_qps: float
    grpc_batched_qps: float
    local_batched_qps: float
    ping_lat: np.ndarray  # seconds per HasCollection call right after: the gRPC round trip without search


@dataclass
class PointResult:
    point: Point
    rounds: list[PointRound] = field(default_factory=list)
    # ids (user ids = row numbers of the data set) of the first repeat, nq=100 calls and nq=1 calls
    grpc_batched_ids: np.ndarray | None = None
    local_batched_ids: np.ndarray | None = None
    grpc_single_ids: np.ndarray | None = None
    local_single_ids: np.ndarray | None = None

    def _p(self, side: str) -> list[tuple[float, float, float]]:
        return [percentiles(getattr(r, f"{side}_lat")) for r in self.rounds]

    def latency(self, side: str) -> tuple[float, float, float]:
        """Median over repeats of p50 / p95 / p99 in ms (``side`` is 'grpc', 'local' or 'ping')."""
        per = self._p(side)
        p50, p95, p99 = (median([p[i] for p in per]) for i in range(3))
        return p50, p95, p99

    @property
    def added_p50s(self) -> list[float]:
        return [g[0] - loc[0] for g, loc in zip(self._p("grpc"), self._p("local"), strict=True)]

    @property
    def added_p50(self) -> float:
        return median(self.added_p50s)

    @property
    def beyond_floor_p50(self) -> float:
        """Added p50 minus the HasCollection p50 of the same repeat: the node's search path (median)."""
        return median([a - p[0] for a, p in zip(self.added_p50s, self._p("ping"), strict=True)])

    @property
    def ratios(self) -> list[float]:
        return [r.grpc_batched_qps / r.local_batched_qps for r in self.rounds]

    @property
    def ratio(self) -> float:
        return median(self.ratios)

    def qps(self, what: str) -> float:
        return median([getattr(r, what) for r in self.rounds])

    def recalls(self, gt: np.ndarray) -> tuple[float, float]:
        assert self.grpc_batched_ids is not None and self.local_batched_ids is not None
        return recall_at(self.grpc_batched_ids, gt, K), recall_at(self.local_batched_ids, gt, K)

    @property
    def same_recall(self) -> bool:
        """gRPC returns exactly the in-process results (so recall is identical)."""
        assert self.grpc_batched_ids is not None and self.local_batched_ids is not None
        return bool(np.array_equal(self.grpc_batched_ids, self.local_batched_ids))


@dataclass
class KindResult:
    spec: Spec
    rows: int = 0
    segments: int = 0
    create_index_s: float = 0.0
    node_build_s: float | None = None  # from the node's log line (build + write + commit)
    local_build_s: float = 0.0
    index_files: list[tuple[str, int]] = field(default_factory=list)
    local_file_bytes: int = 0
    effective: Mapping[str, Any] = field(default_factory=dict)
    points: list[PointResult] = field(default_factory=list)

    @property
    def index_bytes(self) -> int:
        return sum(size for _, size in self.index_files)


# -- header ----------------------------------------------------------------------------------------


def header_lines(args: argparse.Namespace, ds: Dataset, storage: Path, kinds: Sequence[Spec]) -> list[str]:
    cpu = lscpu()
    model = cpu.get("Model name", platform.processor() or "unknown")
    try:
        cores = int(cpu["Core(s) per socket"]) * int(cpu.get("Socket(s)", "1"))
        core_text = f"{cores} cores, {cpu.get('Thread(s) per core', '?')} thread(s) per core"
    except (KeyError, ValueError):
        core_text = "cores unknown"
    cpus = cpu.get("CPU(s)", str(os.cpu_count()))
    try:
        annoy_version = importlib.metadata.version("annoy")
    except importlib.metadata.PackageNotFoundError:
        annoy_version = "?"
    lines = [
        "== Mishards index benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {model}, {cpus} CPUs ({core_text}), {platform.system()} {platform.release()} "
        f"{platform.machine()}; load average {os.getloadavg()[0]:.2f} at start",
        f"software: python {platform.python_version()}, faiss {faiss.__version__}, annoy {annoy_version}, "
        f"grpcio {grpc.__version__}, {protobuf_text()}, numpy {np.__version__}",
        f"node    : {' '.join(f'{k}={v}' for k, v in NODE_ENV.items())} python -m node {' '.join(NODE_ARGS)} "
        f"(other settings default: 1 index build thread), loopback, storage in {storage} ({filesystem(storage)}); "
        f"this process: faiss threads {faiss.omp_get_max_threads()}, "
        f"distance_compute_blas_threshold {faiss.cvar.distance_compute_blas_threshold} (node rule)",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32, L2, {ds.queries.shape[0]} held-out queries, k={K}; "
        f"a fresh collection per kind (index_file_size {INDEX_FILE_SIZE_MB} MB: one segment); "
        f"{args.repeats} repeats, medians reported",
        "kinds   : " + "; ".join(f"{s.name} {json.dumps(s.build, separators=(',', ':'))} searched at "
                                 f"{', '.join(p.label for p in s.points)}" for s in kinds),
    ]
    return lines


# -- node side -------------------------------------------------------------------------------------


def collection_name(spec: Spec) -> str:
    return f"index_bench_{spec.label.lower().replace('/', '_')}"


def load_collection(node: NodeProcess, name: str, ds: Dataset) -> None:
    stub = node.stub()
    schema = milvus_pb2.CollectionSchema(
        collection_name=name, dimension=ds.dim, index_file_size=INDEX_FILE_SIZE_MB, metric_type=METRIC_L2
    )
    check_status(stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")
    ids = np.arange(ds.rows, dtype=np.int64)
    for a, b in batches(ds.rows, INSERT_BATCH):
        req = milvus_pb2.InsertParam(collection_name=name, row_record_array=row_records(ds.base[a:b]),
                                     row_id_array=ids[a:b].tolist())
        reply = stub.Insert(req, timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "Insert")


def collection_info(stub: Any, name: str) -> dict[str, Any]:
    reply = stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S)
    check_status(reply.status, "ShowCollectionInfo")
    info: dict[str, Any] = json.loads(reply.json_info)
    return info


def segment_names(info: Mapping[str, Any]) -> list[str]:
    return [s["name"] for p in info.get("partitions", []) for s in (p.get("segments") or [])]


def settle(node: NodeProcess, name: str, rows: int) -> list[str]:
    """Flush, then wait (bounded) until background merges leave one segment; returns the segment names."""
    stub = node.stub()
    check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=CALL_TIMEOUT_S), "Flush")
    deadline = time.monotonic() + 60.0 + rows / 10_000
    while True:
        info = collection_info(stub, name)
        names = segment_names(info)
        if (len(names) == 1 and int(info.get("row_count", -1)) == rows) or time.monotonic() > deadline:
            return names
        time.sleep(0.2)


def row_order(stub: Any, name: str, segments: Sequence[str]) -> np.ndarray:
    """User ids of the node's rows in segment order (segment after segment): the order the node indexes."""
    parts = []
    for seg in segments:
        reply = stub.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=name, segment_name=seg),
                                  timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "GetVectorIDs")
        parts.append(np.asarray(reply.vector_id_array, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def index_files(storage: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in storage.glob("collections/*/*/index-*") if p.is_file()}


_BUILT_LINE = re.compile(r"built (\w+) index of segment (\d+) \((\d+) rows\) in ([0-9.]+)s")


def node_build_seconds(node: NodeProcess, kind: str, segments: Sequence[str]) -> float | None:
    """The node's own build time (build, write, commit) from its log, when it logged one per segment."""
    try:
        text = node.log_path.read_text(errors="replace")
    except OSError:
        return None
    found = {m.group(2): float(m.group(4)) for m in _BUILT_LINE.finditer(text) if m.group(1) == kind}
    if not segments or any(s not in found for s in segments):
        return None
    return sum(found[s] for s in segments)


def search_request(name: str, queries: np.ndarray, wire: Mapping[str, int]) -> Any:
    return milvus_pb2.SearchParam(
        collection_name=name,
        query_record_array=row_records(queries),
        topk=K,
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(dict(wire)))],
    )


def reply_ids(reply: Any) -> np.ndarray:
    check_status(reply.status, "Search")
    return np.asarray(reply.ids, dtype=np.int64).reshape(int(reply.row_num), -1)


# -- timed loops -----------------------------------------------------------------------------------


def grpc_serial(stub: Any, requests: Sequence[Any], keep: list[Any] | None) -> tuple[np.ndarray, float]:
    lat: list[float] = []
    started = time.perf_counter()
    for req in requests:
        t0 = time.perf_counter()
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if reply.status.error_code:
            check_status(reply.status, "Search")
        if keep is not None:
            keep.append(reply)
        if t1 - started > LOOP_CAP_S:
            break
    return np.asarray(lat), len(lat) / (time.perf_counter() - started)


def local_serial(search: Callable[[np.ndarray], Any], queries: Sequence[np.ndarray],
                 keep: list[Any] | None) -> tuple[np.ndarray, float]:
    lat: list[float] = []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        res = search(q)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if keep is not None:
            keep.append(res)
        if t1 - started > LOOP_CAP_S:
            break
    return np.asarray(lat), len(lat) / (time.perf_counter() - started)


def grpc_batched(stub: Any, requests: Sequence[Any], sizes: Sequence[int], keep: list[Any] | None) -> float:
    done = 0
    started = time.perf_counter()
    for req, n in zip(requests, sizes, strict=True):
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        if reply.status.error_code:
            check_status(reply.status, "Search")
        done += n
        if keep is not None:
            keep.append(reply)
        if time.perf_counter() - started > LOOP_CAP_S and keep is None:
            break
    return done / (time.perf_counter() - started)


def local_batched(search: Callable[[np.ndarray], Any], queries: Sequence[np.ndarray], keep: list[Any] | None) -> float:
    done = 0
    started = time.perf_counter()
    for q in queries:
        res = search(q)
        done += q.shape[0]
        if keep is not None:
            keep.append(res)
        if time.perf_counter() - started > LOOP_CAP_S and keep is None:
            break
    return done / (time.perf_counter() - started)


# -- one kind --------------------------------------------------------------------------------------


def run_kind(node: NodeProcess, ds: Dataset, spec: Spec, repeats: int, scratch: Path) -> KindResult:
    res = KindResult(spec)
    name = collection_name(spec)
    stub = node.stub()
    load_collection(node, name, ds)
    segments = settle(node, name, ds.rows)
    res.segments = len(segments)
    order = row_order(stub, name, segments)
    res.rows = int(order.shape[0])
    if res.rows != ds.rows or not np.array_equal(np.sort(order), np.arange(ds.rows)):
        raise RuntimeError(f"{name}: the node holds {res.rows} rows, not the {ds.rows} inserted")

    # a) build through gRPC, then the same index in this process over the same rows in the same order.
    before = index_files(node.storage)
    index_param = milvus_pb2.IndexParam(
        collection_name=name, index_type=int(spec.kind),
        extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(spec.build))],
    )
    reply, res.create_index_s = timed(lambda: stub.CreateIndex(index_param, timeout=CREATE_INDEX_TIMEOUT_S))
    check_status(reply, "CreateIndex")
    res.index_files = sorted((p.name, size) for p, size in index_files(node.storage).items() if p not in before)
    res.node_build_s = node_build_seconds(node, spec.name, segments)
    vectors = np.ascontiguousarray(ds.base[order])
    index: SegmentIndex
    index, res.local_build_s = timed(lambda: build_index(spec.kind, vectors, MetricType.L2, spec.build))
    res.effective = dict(index.effective_params)
    saved = scratch / f"{collection_name(spec)}.bin"
    index.save(saved)  # note: annoy re-maps the index onto the file it wrote, like the node's loaded copy
    res.local_file_bytes = saved.stat().st_size

    # b) search: preload, warm up, then the timed rounds of every point.
    check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name),
                                        timeout=CALL_TIMEOUT_S), "PreloadCollection")
    live = LiveMask.build(res.rows, np.zeros(0, dtype=np.int64))
    nq = ds.queries.shape[0]
    single_q = [np.ascontiguousarray(ds.queries[i : i + 1]) for i in range(nq)]
    spans = batches(nq, BATCH_NQ)
    batched_q = [np.ascontiguousarray(ds.queries[a:b]) for a, b in spans]
    sizes = [b - a for a, b in spans]
    for point in spec.points:
        res.points.append(search_point(stub, index, live, order, name, point, single_q, batched_q, sizes,
                                       repeats))
    check_status(stub.DropCollection(milvus_pb2.CollectionName(collection_name=name), timeout=CALL_TIMEOUT_S),
                 "DropCollection")
    del index
    saved.unlink(missing_ok=True)
    return res


def search_point(stub: Any, index: SegmentIndex, live: LiveMask, order: np.ndarray, name: str, point: Point,
                 single_q: list[np.ndarray], batched_q: list[np.ndarray], sizes: list[int],
                 repeats: int) -> PointResult:
    out = PointResult(point)
    singles = [search_request(name, q, point.wire) for q in single_q]
    batched = [search_request(name, q, point.wire) for q in batched_q]

    def search(q: np.ndarray) -> Any:
        return index.search(q, K, live, point.params)

    for i in range(min(WARMUP_SINGLE, len(singles))):
        check_status(stub.Search(singles[i], timeout=CALL_TIMEOUT_S).status, "Search")
        search(single_q[i])
    for i in range(min(WARMUP_BATCHED, len(batched))):
        check_status(stub.Search(batched[i], timeout=CALL_TIMEOUT_S).status, "Search")
        search(batched_q[i])

    def local_ids(results: Sequence[Any]) -> np.ndarray:
        offs = np.concatenate([np.asarray(r.ids) for r in results])
        return np.where(offs >= 0, order[np.maximum(offs, 0)], -1)

    single_calls = [(search_call(stub, req), functools.partial(search, q)) for req, q in zip(singles, single_q,
                                                                                            strict=True)]
    batch_calls = [(search_call(stub, req), functools.partial(search, q)) for req, q in zip(batched, batched_q,
                                                                                           strict=True)]
    for r in range(repeats):
        first = r == 0
        g_single: list[Any] | None = [] if first else None
        l_single: list[Any] | None = [] if first else None
        g_batch: list[Any] | None = [] if first else None
        l_batch: list[Any] | None = [] if first else None
        g_lat, l_lat = paired(single_calls, g_single, l_single)
        g_bat, l_bat = paired(batch_calls, g_batch, l_batch)
        done = sum(sizes[: g_bat.shape[0]])
        g = (g_lat, g_lat.shape[0] / g_lat.sum(), done / g_bat.sum())
        loc = (l_lat, l_lat.shape[0] / l_lat.sum(), done / l_bat.sum())
        pings = ping_latencies(stub, name, len(single_q))
        out.rounds.append(PointRound(g[0], loc[0], g[1], loc[1], g[2], loc[2], pings))
        if first:
            assert g_single is not None and l_single is not None and g_batch is not None and l_batch is not None
            out.grpc_batched_ids = np.concatenate([reply_ids(rp) for rp in g_batch])
            out.local_batched_ids = local_ids(l_batch)
            if len(g_single) == len(single_q) == len(l_single):
                out.grpc_single_ids = np.concatenate([reply_ids(rp) for rp in g_single])
                out.local_single_ids = local_ids(l_single)
    return out


# -- report ----------------------------------------------------------------------------------------


def compact_json(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), separators=(",", ":"))


def agreement(a: np.ndarray | None, b: np.ndarray | None) -> str:
    if a is None or b is None:
        return "n/a (loop stopped at its time cap)"
    identical = int(np.all(a == b, axis=1).sum())
    return f"{recall_at(a, b, K):.1%} of ids shared, {identical}/{a.shape[0]} result lists identical"


POINT_ROW = "  {:<18} {:>6} {:>7} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} | {:>7} {:>8} {:>5}"
SUMMARY_ROW = "  {:<9} {:>7} {:>7} {:>7} | {:<17} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7} {:>5}"


def report_kind(res: KindResult, ds: Dataset) -> list[str]:
    spec = res.spec
    raw_mb = ds.rows * ds.dim * 4 / MB_BYTES
    files = ", ".join(f"{n} {size / MB_BYTES:.1f} MB" for n, size in res.index_files) or "none found"
    node_build = "" if res.node_build_s is None else f"; the node logged {res.node_build_s:.2f} s for it"
    lines = [
        f"-- {spec.label} {compact_json(spec.build)}: node holds {res.rows} rows in {res.segments} segment(s)",
        f"  build          : CreateIndex through gRPC {res.create_index_s:8.2f} s (blocks until built{node_build})",
        f"                   in-process build_index {res.local_build_s:8.2f} s   "
        f"(gRPC / in-process {res.create_index_s / res.local_build_s:.2f}x); effective {compact_json(res.effective)}",
        f"  index on disk  : {files} (raw vectors {raw_mb:.1f} MB, stored separately); "
        f"in-process save {res.local_file_bytes / MB_BYTES:.1f} MB",
        f"  {'':18} {'recall@10':^14} | {'nq=1 gRPC ms':^20} | {'nq=1 in-process ms':^20} | {'added ms':^13} | "
        f"{'nq=100 QPS':^22}",
        POINT_ROW.format("point", "gRPC", "in-proc", "p50", "p95", "p99", "p50", "p95", "p99", "p50", "-floor",
                         "gRPC", "in-proc", "ratio"),
    ]
    for pr in res.points:
        rg, rl = pr.recalls(ds.gt_ids)
        g = pr.latency("grpc")
        loc = pr.latency("local")
        lines.append(POINT_ROW.format(
            pr.point.label, f"{rg:.3f}", f"{rl:.3f}", *(f"{x:.3f}" for x in g), *(f"{x:.3f}" for x in loc),
            f"{pr.added_p50:+.3f}", f"{pr.beyond_floor_p50:+.3f}", fmt_rate(pr.qps("grpc_batched_qps")),
            fmt_rate(pr.qps("local_batched_qps")), f"{pr.ratio:.2f}",
        ))
        n_single = min(r.grpc_lat.shape[0] for r in pr.rounds)
        capped = "" if n_single == ds.queries.shape[0] else f"; nq=1 loops stopped after {n_single} calls (time cap)"
        lines.append(
            f"      repeats: added p50 {' / '.join(f'{a:+.3f}' for a in pr.added_p50s)} ms, "
            f"nq=100 ratio {' / '.join(f'{x:.2f}' for x in pr.ratios)}; nq=1 QPS gRPC "
            f"{fmt_rate(pr.qps('grpc_serial_qps'))}, in-process {fmt_rate(pr.qps('local_serial_qps'))}{capped}"
        )
        lines.append(f"      gRPC vs in-process: nq=100 {agreement(pr.grpc_batched_ids, pr.local_batched_ids)}; "
                     f"nq=1 {agreement(pr.grpc_single_ids, pr.local_single_ids)}")
    p50, p95, p99 = ping_percentiles(res)
    lines.append(f"  HasCollection round trip p50 / p95 / p99: {p50:.3f} / {p95:.3f} / {p99:.3f} ms "
                 "(the gRPC floor, no search work; '-floor' = added p50 minus this, per repeat)")
    return lines


def ping_percentiles(res: KindResult) -> tuple[float, float, float]:
    per = [percentiles(r.ping_lat) for pr in res.points for r in pr.rounds]
    p50, p95, p99 = (median([p[i] for p in per]) for i in range(3))
    return p50, p95, p99


def final_table(results: Sequence[KindResult], ds: Dataset) -> list[str]:
    lines = [
        f"-- summary ({ds.rows} x {ds.dim}, L2, k={K}, 1 faiss thread each side; medians of repeats)",
        f"  {'':9} {'build s':^15} {'size':>7} | {'':17} {'recall@10':^20} | {'nq=1 p50 ms':^27} | "
        f"{'nq=100 QPS':^21}",
        SUMMARY_ROW.format("index", "gRPC", "in-proc", "MB", "point", "gRPC", "in-pr", "agree", "gRPC", "in-pr",
                           "added", "-floor", "gRPC", "in-proc", "ratio"),
    ]
    for res in results:
        for i, pr in enumerate(res.points):
            rg, rl = pr.recalls(ds.gt_ids)
            assert pr.grpc_batched_ids is not None and pr.local_batched_ids is not None
            agree = recall_at(pr.grpc_batched_ids, pr.local_batched_ids, K)
            head = (res.spec.label, f"{res.create_index_s:.1f}", f"{res.local_build_s:.1f}",
                    f"{res.index_bytes / MB_BYTES:.1f}") if i == 0 else ("", "", "", "")
            lines.append(SUMMARY_ROW.format(
                *head, pr.point.label, f"{rg:.3f}", f"{rl:.3f}", f"{agree:.1%}", f"{pr.latency('grpc')[0]:.3f}",
                f"{pr.latency('local')[0]:.3f}", f"{pr.added_p50:+.3f}", f"{pr.beyond_floor_p50:+.3f}",
                fmt_rate(pr.qps("grpc_batched_qps")), fmt_rate(pr.qps("local_batched_qps")), f"{pr.ratio:.2f}",
            ))
    floors = [ping_percentiles(r) for r in results]
    p50, p95, p99 = (median([f[i] for f in floors]) for i in range(3))
    lines.append(f"  gRPC floor: HasCollection round trip p50 / p95 / p99 {p50:.3f} / {p95:.3f} / {p99:.3f} ms "
                 "(median over kinds); 'agree' = share of result ids gRPC and in-process have in common")
    return lines


def target_lines(results: Sequence[KindResult], repeats: int) -> list[str]:
    lines = [f"-- targets ({repeats} repeats, medians; a point counts only where gRPC returns exactly the "
             "in-process results, i.e. at identical recall)"]
    for res in results:
        if res.spec.name not in TARGET_KINDS:
            continue
        same = all(pr.same_recall for pr in res.points)
        note = "" if same else " (results differ from in-process at: " + ", ".join(
            pr.point.label for pr in res.points if not pr.same_recall) + ")"
        added = [pr.added_p50 for pr in res.points]
        ratios = [pr.ratio for pr in res.points]
        labels = "/".join(pr.point.label.split("=")[1] for pr in res.points)
        key = res.spec.points[0].label.split("=")[0]
        beyond = "/".join(f"{pr.beyond_floor_p50:.3f}" for pr in res.points)
        added_text = "/".join(f"{a:.3f}" for a in added) + f" ms ({key} {labels})"
        ratio_text = "/".join(f"{x:.2f}" for x in ratios) + f"x ({key} {labels})"
        lines.append(f"  {res.spec.label:<8} nq=1 added latency at p50 <= {TARGET_ADDED_P50_MS:g} ms      "
                     f"{added_text:>38}   {verdict(same and max(added) <= TARGET_ADDED_P50_MS)}{note}")
        beyond_ok = same and max(pr.beyond_floor_p50 for pr in res.points) <= TARGET_BEYOND_FLOOR_MS
        lines.append(f"  {'':<8} node's share beyond the gRPC floor <= {TARGET_BEYOND_FLOOR_MS:g} ms   "
                     f"{beyond + ' ms':>38}   {verdict(beyond_ok)}")
        lines.append(f"  {res.spec.label:<8} gRPC nq={BATCH_NQ} QPS >= {TARGET_BATCHED_RATIO}x in-process  "
                     f"{ratio_text:>38}   {verdict(same and min(ratios) >= TARGET_BATCHED_RATIO)}{note}")
    if len(lines) == 1:
        lines.append("  (none of " + ", ".join(TARGET_KINDS) + " was run)")
    return lines


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.index_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows inserted (default 100000; 1000000 = full run)")
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (default 1000)")
    p.add_argument("--kinds", default=",".join(KIND_ORDER),
                   help=f"comma-separated index kinds (default {','.join(KIND_ORDER)})")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; medians are reported (default 3)")
    args = p.parse_args(argv)
    for name in ("rows", "queries", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.rows < BUILD_INDEX_THRESHOLD:
        p.error(f"--rows must be >= {BUILD_INDEX_THRESHOLD}: the node searches smaller segments exactly")
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KIND_ORDER]
    if unknown or not kinds:
        p.error(f"--kinds: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(KIND_ORDER)}")
    args.kinds = list(dict.fromkeys(kinds))
    return args


def emit(lines: Sequence[str]) -> None:
    print("\n".join(line.rstrip() for line in lines), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    faiss.omp_set_num_threads(1)
    ds = load_sift_like(args.rows, 128, args.queries)
    use_blas_from(ds.dim)  # the node's rule, so that the in-process side is like for like
    all_specs = specs(ds.rows)
    chosen = [spec for k in args.kinds for spec in (all_specs[k], *table_specs(k))]
    results: list[KindResult] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="index-bench-")))
        scratch = root / "in-process"
        scratch.mkdir()
        node = NodeProcess(root / "node", NODE_ARGS, env=NODE_ENV).start()
        stack.callback(node.stop)
        emit(header_lines(args, ds, node.storage, chosen))
        for spec in chosen:
            t0 = time.perf_counter()
            res = run_kind(node, ds, spec, args.repeats, scratch)
            results.append(res)
            emit(report_kind(res, ds))
            print(f"  ({spec.label} took {time.perf_counter() - t0:.0f} s in all)", flush=True)
    emit(final_table(results, ds))
    emit(target_lines(results, args.repeats))
    print(f"-- run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
