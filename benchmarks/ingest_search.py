"""(iii) of ``benchmarks.node_bench``: exact search right after ingest, before background merges are awaited.

The rows are inserted into a new collection the way a Milvus 1.x client does it: each ``--batch``-row
``InsertParam`` built from Python lists, then sent, at the node's default settings (a timed flush every second
writes a segment of what arrived meanwhile, and background merges combine them). The benchmark calls ``Flush``
and at once
searches: nq=1 calls, each run back to back (the order rotating) with the same query in-process over the same
rows, with the node's kernel over a numpy copy of them (the baseline of the target) and with a stock
``IndexFlatL2`` (``benchmarks.flat_baseline``), so that the load of the machine (and of the node's own merges)
weighs on every side alike. The segments the collection has are counted right after the ``Flush`` and after the last
search.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.flat_baseline import Baselines, paired_three
from benchmarks.pairing import ping_latencies, search_call
from milvus_wire import milvus_pb2

CALL_TIMEOUT_S = 120.0
TARGET_ADDED_P50_MS = 1.0  # nq=1 p50 through gRPC minus in-process, right after ingest


@dataclass(frozen=True)
class IngestRound:
    segments_at_flush: int
    segments_after: int
    grpc_lat: np.ndarray  # seconds per nq=1 Search call
    local_lat: np.ndarray  # seconds per in-process search of the same query (the node's kernel)
    ping_lat: np.ndarray  # seconds per HasCollection call (the gRPC floor)
    flush_s: float
    ingest_s: float = 0.0  # building and sending every Insert of the round
    stock_lat: np.ndarray | None = None  # seconds per stock IndexFlatL2 search of the same query

    @property
    def added_p50_ms(self) -> float:
        return float(np.median(self.grpc_lat) - np.median(self.local_lat)) * 1e3


def segment_count(stub: Any, collection: str) -> int:
    reply = stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=collection), timeout=CALL_TIMEOUT_S)
    if reply.status.error_code != 0:
        raise RuntimeError(f"ShowCollectionInfo failed: {reply.status.reason}")
    info = json.loads(reply.json_info)
    return sum(len(p.get("segments") or []) for p in info.get("partitions", []))


def search_after_ingest(stub: Any, collection: str, local: Baselines, singles: Sequence[Any],
                        single_q: Sequence[np.ndarray], k: int) -> IngestRound:
    """Flush, then at once ``len(singles)`` nq=1 searches through gRPC, interleaved with the in-process ones."""
    started = time.perf_counter()
    status = stub.Flush(milvus_pb2.FlushParam(collection_name_array=[collection]), timeout=CALL_TIMEOUT_S)
    flush_s = time.perf_counter() - started
    if status.error_code != 0:
        raise RuntimeError(f"Flush failed: {status.reason}")
    at_flush = segment_count(stub, collection)
    calls = [(search_call(stub, req), functools.partial(local.same.search, q, k),
              functools.partial(local.stock.search, q, k)) for req, q in zip(singles, single_q, strict=True)]
    times = paired_three(calls)
    after = segment_count(stub, collection)
    return IngestRound(at_flush, after, times.grpc, times.same, ping_latencies(stub, collection, len(singles)),
                       flush_s, stock_lat=times.stock)


FRESH_COLLECTION = "node_bench_fresh"
INDEX_FILE_SIZE_MB = 1024


def client_ingest_round(stub: Any, base: np.ndarray, batch: int, local: Baselines, singles: Sequence[Any],
                        single_q: Sequence[np.ndarray], k: int) -> IngestRound:
    """(iii) on a new collection: insert ``base`` like a client (build each batch's InsertParam, then send it),
    then :func:`search_after_ingest`; the collection is dropped afterwards."""
    schema = milvus_pb2.CollectionSchema(collection_name=FRESH_COLLECTION, dimension=int(base.shape[1]),
                                         index_file_size=INDEX_FILE_SIZE_MB, metric_type=1)
    if stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S).error_code != 0:
        raise RuntimeError("CreateCollection failed")
    started = time.perf_counter()
    for start in range(0, base.shape[0], batch):
        rows = base[start:start + batch]
        records = [milvus_pb2.RowRecord(float_data=r) for r in rows.tolist()]
        request = milvus_pb2.InsertParam(collection_name=FRESH_COLLECTION, row_record_array=records,
                                         row_id_array=list(range(start, start + rows.shape[0])))
        if stub.Insert(request, timeout=CALL_TIMEOUT_S).status.error_code != 0:
            raise RuntimeError("Insert failed")
    ingest_s = time.perf_counter() - started
    renamed = []
    for req in singles:
        copy = milvus_pb2.SearchParam()
        copy.CopyFrom(req)
        copy.collection_name = FRESH_COLLECTION
        renamed.append(copy)
    out = search_after_ingest(stub, FRESH_COLLECTION, local, renamed, single_q, k)
    stub.DropCollection(milvus_pb2.CollectionName(collection_name=FRESH_COLLECTION), timeout=CALL_TIMEOUT_S)
    return IngestRound(out.segments_at_flush, out.segments_after, out.grpc_lat, out.local_lat, out.ping_lat,
                       out.flush_s, ingest_s, out.stock_lat)


def report_lines(rounds: Sequence[IngestRound], rows: int, batch: int) -> tuple[list[str], float, float | None]:
    """The (iii) lines, the median of the per-repeat added p50 against the same kernel (ms) and the gRPC p50 less
    the stock ``IndexFlatL2``'s (ms; None when not measured)."""

    def p(values: np.ndarray) -> tuple[float, float, float]:
        a, b, c = np.percentile(values * 1e3, [50, 95, 99])
        return float(a), float(b), float(c)

    def med(values: Sequence[float]) -> float:
        return float(np.median(values))

    g = [p(r.grpc_lat) for r in rounds]
    loc = [p(r.local_lat) for r in rounds]
    pings = [p(r.ping_lat) for r in rounds]
    stock = [p(r.stock_lat) for r in rounds if r.stock_lat is not None]
    g50, g95, g99 = (med([x[i] for x in g]) for i in range(3))
    l50, l95, l99 = (med([x[i] for x in loc]) for i in range(3))
    f50 = med([x[0] for x in pings])
    added = [r.added_p50_ms for r in rounds]
    beyond = [a - x[0] for a, x in zip(added, pings, strict=True)]
    segs = " / ".join(f"{r.segments_at_flush} -> {r.segments_after}" for r in rounds)
    n = rounds[0].grpc_lat.shape[0]
    lines = [
        f"  (iii) right after ingest: {rows} rows into a new collection in Insert calls of {batch}, each built then "
        f"sent as a client does ({med([r.ingest_s for r in rounds]):.1f} s), default auto flush (1 s);",
        f"      Flush ({med([r.flush_s for r in rounds]) * 1e3:.0f} ms), then at once {n} nq=1 calls, each back to "
        "back with the same query in-process",
        f"      segments right after Flush -> after the last search, per repeat: {segs}",
        f"      gRPC Search               {g50:9.3f} {g95:8.3f} {g99:8.3f}",
        f"      in-process, same kernel   {l50:9.3f} {l95:8.3f} {l99:8.3f}",
        f"      added latency             {g50 - l50:+9.3f} {g95 - l95:+8.3f} {g99 - l99:+8.3f}   "
        f"[p50 per repeat: {' / '.join(f'{a:+.3f}' for a in added)} ms]",
        f"      HasCollection round trip  {f50:9.3f}   (added p50 beyond it: {med(beyond):+.3f} ms)",
    ]
    vs_stock: float | None = None
    if stock:
        s50, s95, s99 = (med([x[i] for x in stock]) for i in range(3))
        vs_stock = g50 - s50
        lines.insert(5, f"      in-process, IndexFlatL2   {s50:9.3f} {s95:8.3f} {s99:8.3f}   (stock faiss; gRPC vs "
                        f"it at p50: {vs_stock:+.3f} ms)")
    return lines, med(added), vs_stock
