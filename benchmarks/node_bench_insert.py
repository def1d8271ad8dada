"""a) of ``benchmarks.node_bench``: Insert through gRPC (a fresh node per repeat, requests built before the clock
starts), the per-batch protobuf costs measured in this process, and the lines reporting them."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset
from benchmarks.node_bench_common import batches, check_status, fmt_rate, median, row_records, timed
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess

COLLECTION = "node_bench"
METRIC_L2 = 1
INDEX_FILE_SIZE_MB = 1024  # one segment holds every row of the default run (51 MB)
CALL_TIMEOUT_S = 120.0


def insert_request(vectors: np.ndarray, ids: np.ndarray) -> Any:
    return milvus_pb2.InsertParam(
        collection_name=COLLECTION, row_record_array=row_records(vectors), row_id_array=ids.tolist()
    )



@dataclass
class InsertRun:
    rate: float  # vectors/s acknowledged (requests pre-built)
    build_s: float  # building every InsertParam of the run
    call_s: list[float]  # per Insert call


@dataclass
class InsertReport:
    runs: list[InsertRun] = field(default_factory=list)
    serialize_s: float = 0.0  # per batch, median (inside the gRPC call)
    parse_s: float = 0.0  # per batch: FromString of the node's Insert request type
    request_type: str = "InsertParam"
    decode_s: float | None = None  # per batch: node.convert.vectors on the parsed request
    decode_note: str = ""


def create_collection(node: NodeProcess, dim: int) -> None:
    schema = milvus_pb2.CollectionSchema(
        collection_name=COLLECTION, dimension=dim, index_file_size=INDEX_FILE_SIZE_MB, metric_type=METRIC_L2
    )
    check_status(node.stub().CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")


def insert_once(node: NodeProcess, ds: Dataset, batch: int) -> InsertRun:
    spans = batches(ds.rows, batch)
    ids = np.arange(ds.rows, dtype=np.int64)
    requests, build_s = timed(lambda: [insert_request(ds.base[a:b], ids[a:b]) for a, b in spans])
    stub = node.stub()
    calls: list[float] = []
    started = time.perf_counter()
    for req, (a, b) in zip(requests, spans, strict=True):
        t0 = time.perf_counter()
        reply = stub.Insert(req, timeout=CALL_TIMEOUT_S)
        calls.append(time.perf_counter() - t0)
        check_status(reply.status, "Insert")
        if len(reply.vector_id_array) != b - a:
            raise RuntimeError(f"Insert acknowledged {len(reply.vector_id_array)} of {b - a} rows")
    elapsed = time.perf_counter() - started
    return InsertRun(ds.rows / elapsed, build_s, calls)


def node_insert_type() -> Any:
    """The message type the node decodes Insert requests into (a raw-bytes fast-path type when it has one)."""
    try:
        from node import server
    except ImportError:
        return milvus_pb2.InsertParam
    return getattr(server, "FAST_REQUESTS", {}).get("Insert") or milvus_pb2.InsertParam


def wire_costs(ds: Dataset, batch: int, report: InsertReport) -> None:
    """Per-batch protobuf costs measured in this process: client serialize, server parse and decode."""
    n = min(batch, ds.rows)
    req = insert_request(ds.base[:n], np.arange(n, dtype=np.int64))
    request_type = node_insert_type()
    report.request_type = request_type.__name__
    serialize: list[float] = []
    parse: list[float] = []
    decode: list[float] = []
    for _ in range(3):
        payload, s = timed(req.SerializeToString)
        serialize.append(s)
        parsed, p = timed(functools.partial(request_type.FromString, payload))
        parse.append(p)
    report.serialize_s = median(serialize)
    report.parse_s = median(parse)
    try:  # the node's own decoder; internal API, so tolerate drift
        from coordinator.model import Collection, IdMode, IndexType, MetricType
        from node import convert

        coll = Collection(
            id=1, name=COLLECTION, dimension=ds.dim, metric=MetricType.L2, index_file_size_mb=INDEX_FILE_SIZE_MB,
            index_type=IndexType.FLAT, index_params="{}", id_mode=IdMode.USER, created_us=0, flushed_lsn=0,
        )
        for _ in range(3):
            _, d = timed(lambda: convert.vectors(parsed.row_record_array, coll))
            decode.append(d)
        report.decode_s = median(decode)
    except (ImportError, TypeError, AttributeError) as exc:
        report.decode_note = f"n/a ({type(exc).__name__}: {exc})"
    report.decode_note = report.decode_note or f"{len(payload) / 1e6:.1f} MB per batch on the wire"



def report_insert(rep: InsertReport, ds: Dataset, batch: int) -> tuple[list[str], float]:
    n_batches = len(batches(ds.rows, batch))
    rates = [r.rate for r in rep.runs]
    rate = median(rates)
    build_batch = median([r.build_s / n_batches for r in rep.runs])
    build_rate = median([ds.rows / r.build_s for r in rep.runs])
    call_p50 = median([float(np.median(r.call_s)) for r in rep.runs])
    combined = median([ds.rows / (r.build_s + ds.rows / r.rate) for r in rep.runs])
    build_share = median([r.build_s / (r.build_s + ds.rows / r.rate) for r in rep.runs])
    per = min(batch, ds.rows)
    lines = [
        f"-- a) insert: {ds.rows} rows in {n_batches} Insert calls of {batch} rows (user ids), "
        f"a fresh node per repeat",
        f"  acknowledged (WAL fsynced)   : {fmt_rate(rate):>9} vectors/s   "
        f"[repeats {' / '.join(fmt_rate(r) for r in rates)}]; Insert call p50 {call_p50 * 1e3:.0f} ms",
        f"  client builds InsertParam    : {build_batch * 1e3:9.0f} ms per batch = {fmt_rate(build_rate)} vectors/s "
        f"(not in the rate above)",
        f"  client that builds then sends: {fmt_rate(combined):>9} vectors/s; building is {build_share:.0%} "
        f"of its time",
        f"  inside each call, client     : SerializeToString {rep.serialize_s * 1e3:.1f} ms ({rep.decode_note})",
    ]
    decode = "n/a" if rep.decode_s is None else f"{rep.decode_s * 1e3:.0f} ms"
    share = "" if rep.decode_s is None else (
        f" = {(rep.parse_s + rep.decode_s) / call_p50:.0%} of the call p50"
    )
    lines.append(
        f"  inside each call, server est.: {rep.request_type}.FromString {rep.parse_s * 1e3:.1f} ms + "
        f"node.convert.vectors {decode} "
        f"per {per} rows{share} (measured in this process)"
    )
    return lines, rate

