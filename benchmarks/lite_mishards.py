"""The Mishards side of ``benchmarks.lite_bench``: one standalone node per run, the project's raw gRPC stubs.

Like ``benchmarks.index_bench`` the node is ``python -m node --omp-threads 1`` with ``OMP_NUM_THREADS=1``
(storage in a fresh folder, stopped by its process id), one collection with ``index_file_size`` 1024 MB.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import recall_at
from benchmarks.index_loops import grpc_batched, grpc_serial
from benchmarks.index_node import (
    CALL_TIMEOUT_S,
    CREATE_INDEX_TIMEOUT_S,
    INDEX_FILE_SIZE_MB,
    METRIC_L2,
    NODE_ARGS,
    NODE_ENV,
    reply_ids,
    search_request,
    settle,
)
from benchmarks.lite_plan import (
    BATCH_NQ,
    OUR_SEARCHABLE,
    ClientFigures,
    IndexPlan,
    PointFigures,
    RunFigures,
    SearchPoint,
    batches,
)
from benchmarks.lite_side import SearchInputs, WorkerProcess, checked, point_figures
from benchmarks.lite_worker import cpu_seconds
from benchmarks.node_bench import check_status
from milvus_wire import milvus_pb2
from tests.support.nodeproc import ROOT, NodeProcess

COLLECTION = "lite_bench"
PROBE_POLL_CAP_S = 60.0


PYMILVUS1_ENV = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}  # its generated code predates protobuf 4
PYMILVUS1_COLLECTION = "lite_bench_pymilvus1"


@dataclass
class MishardsRun:
    figures: RunFigures
    segments: int
    pymilvus1: ClientFigures | None = None
    pymilvus1_versions: dict[str, Any] = field(default_factory=dict)


def run_pymilvus1(node: NodeProcess, workdir: Path, plan: IndexPlan, data: SearchInputs,
                  gt: np.ndarray) -> tuple[ClientFigures, dict[str, Any]]:
    """The same node through pymilvus 1.1.2 in a subprocess: an insert into a second collection (dropped
    afterwards), then the searches of every point on the benchmark collection."""
    host, _, port = node.address.rpartition(":")
    worker = WorkerProcess([sys.executable, "-m", "benchmarks.lite_pymilvus1"], workdir, PYMILVUS1_ENV, cwd=ROOT)
    try:
        versions = checked(worker.call("open", host=host, port=int(port)), "pymilvus 1.1.2 open")
        inserted = checked(worker.call("insert", collection=PYMILVUS1_COLLECTION, base=str(data.base),
                                       spans=batches(data.rows, data.batch), index_file_size=INDEX_FILE_SIZE_MB),
                           "pymilvus 1.1.2 insert")
        points = {}
        for point in plan.points:
            reply = checked(worker.call("search", collection=COLLECTION, queries=str(data.queries), nq=data.nq,
                                        k=data.k, params=json.dumps(dict(point.params)),
                                        spans=batches(data.nq, BATCH_NQ), warmup_single=data.warmup_single,
                                        warmup_batched=data.warmup_batched), "pymilvus 1.1.2 search")
            points[point.label] = point_figures(reply, gt, data.k)
        return ClientFigures(data.rows / float(inserted["insert_s"]), points), versions
    finally:
        worker.stop()


@dataclass(frozen=True)
class Inserted:
    seconds: float  # in all
    build_s: float  # building the requests
    acked: float  # perf_counter at the last acknowledgement
    cpu_s: tuple[float, float]  # CPU seconds of this process and of the node during the loop


def insert_rows(stub: Any, base: np.ndarray, spans: list[tuple[int, int]], node_pid: int) -> Inserted:
    """Insert like a Milvus 1.x client: Python lists in hand, build each InsertParam, send, wait."""
    lists = [(base[a:b].tolist(), list(range(a, b))) for a, b in spans]  # the client's data, before the clock
    build = 0.0
    client_cpu, node_cpu = time.process_time(), cpu_seconds(node_pid)
    started = time.perf_counter()
    for rows, ids in lists:
        t0 = time.perf_counter()
        req = milvus_pb2.InsertParam(collection_name=COLLECTION, row_id_array=ids,
                                     row_record_array=[milvus_pb2.RowRecord(float_data=r) for r in rows])
        build += time.perf_counter() - t0
        reply = stub.Insert(req, timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "Insert")
        if len(reply.vector_id_array) != len(ids):
            raise RuntimeError(f"Insert acknowledged {len(reply.vector_id_array)} of {len(ids)} rows")
    acked = time.perf_counter()
    cpu = (time.process_time() - client_cpu, cpu_seconds(node_pid) - node_cpu)
    return Inserted(acked - started, build, acked, cpu)


def flush_until_searchable(stub: Any, probe: np.ndarray, want: int, point: SearchPoint,
                           since: float) -> tuple[float, float]:
    """Flush, then search for the last row until it is found.

    Returns the Flush call's seconds and the seconds from ``since`` (the last acknowledgement) until found.
    """
    t0 = time.perf_counter()
    check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=CALL_TIMEOUT_S),
                 "Flush")
    flush_s = time.perf_counter() - t0
    req = search_request(COLLECTION, probe[None, :], point.params)
    req.topk = 1
    while True:
        ids = reply_ids(stub.Search(req, timeout=CALL_TIMEOUT_S))
        elapsed = time.perf_counter() - since
        if ids.size and int(ids[0, 0]) == want:
            return flush_s, elapsed
        if elapsed > PROBE_POLL_CAP_S:
            raise RuntimeError(f"row {want} not searchable {elapsed:.0f} s after Flush")


def search_point(stub: Any, data: SearchInputs, queries: np.ndarray, point: SearchPoint,
                 gt: np.ndarray) -> PointFigures:
    singles = [search_request(COLLECTION, queries[i : i + 1], point.params) for i in range(data.nq)]
    spans = batches(data.nq, BATCH_NQ)
    batched = [search_request(COLLECTION, queries[a:b], point.params) for a, b in spans]
    for req in singles[: data.warmup_single]:
        check_status(stub.Search(req, timeout=CALL_TIMEOUT_S).status, "Search")
    for req in batched[: data.warmup_batched]:
        check_status(stub.Search(req, timeout=CALL_TIMEOUT_S).status, "Search")
    lat, serial_qps = grpc_serial(stub, singles, None)
    replies: list[Any] = []
    batched_qps = grpc_batched(stub, batched, [b - a for a, b in spans], replies)
    ids = np.concatenate([reply_ids(r) for r in replies])
    lat_ms = lat * 1e3
    return PointFigures(float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99)), serial_qps, batched_qps,
                        recall_at(ids, gt[: ids.shape[0]], data.k))


def run_mishards(workdir: Path, plan: IndexPlan, data: SearchInputs, gt: np.ndarray,
                 pymilvus1: bool = False) -> MishardsRun:
    """One fresh node: insert, Flush until searchable, build the index, preload, search every point (and,
    with ``pymilvus1``, the same through pymilvus 1.1.2)."""
    base = np.load(data.base, mmap_mode="r")
    queries = np.load(data.queries)[: data.nq]
    node = NodeProcess(workdir, NODE_ARGS, env=NODE_ENV).start()
    try:
        stub = node.stub()
        schema = milvus_pb2.CollectionSchema(collection_name=COLLECTION, dimension=int(base.shape[1]),
                                             index_file_size=INDEX_FILE_SIZE_MB, metric_type=METRIC_L2)
        check_status(stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")
        assert node.proc is not None
        ins = insert_rows(stub, base, batches(data.rows, data.batch), node.proc.pid)
        last = data.rows - 1
        flush_s, searchable = flush_until_searchable(stub, np.asarray(base[last]), last, plan.points[0], ins.acked)
        reply = stub.CountCollection(milvus_pb2.CollectionName(collection_name=COLLECTION), timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "CountCollection")
        if int(reply.collection_row_count) != data.rows:
            raise RuntimeError(f"the node counts {reply.collection_row_count} rows, {data.rows} were inserted")
        segments = settle(node, COLLECTION, data.rows)  # background merges: one segment, as in index_bench
        index_type, params = plan.mishards_index()
        index_param = milvus_pb2.IndexParam(collection_name=COLLECTION, index_type=index_type,
                                            extra_params=[milvus_pb2.KeyValuePair(key="params", value=params)])
        t0 = time.perf_counter()
        check_status(stub.CreateIndex(index_param, timeout=CREATE_INDEX_TIMEOUT_S), "CreateIndex")
        t1 = time.perf_counter()
        check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=COLLECTION),
                                            timeout=CALL_TIMEOUT_S), "PreloadCollection")
        t2 = time.perf_counter()
        points = {p.label: search_point(stub, data, queries, p, gt) for p in plan.points}
        figures = RunFigures(insert_rate=data.rows / ins.seconds, ack_rate=data.rows / (ins.seconds - ins.build_s),
                             searchable_s={OUR_SEARCHABLE: searchable}, flush_s=flush_s, build_s=t1 - t0,
                             load_s=t2 - t1, points=points, insert_cpu_s=ins.cpu_s)
        run = MishardsRun(figures, len(segments))
        if pymilvus1:
            run.pymilvus1, run.pymilvus1_versions = run_pymilvus1(node, workdir / "pymilvus1", plan, data, gt)
        return run
    finally:
        node.stop()
