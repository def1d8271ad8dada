"""One node through the Milvus 1.1 wire format, side by side with faiss in-process, in one run.

    python -m benchmarks.node_bench [--rows 100000] [--dim 128] [--queries 1000] [--repeats 3]

a) Insert: a fresh node per repeat, batches of ``--batch`` rows through ``Insert`` (the WAL is always
   on: a batch is acknowledged once fsynced). Requests are built before the clock starts; building them
   (client-side protobuf) is timed and reported separately.
b) Exact search after ``Flush``: (i) nq=1, one call at a time: latency percentiles through gRPC and of the
   same search in this process, both with the node's kernel over a numpy copy of the rows (the baseline of the
   targets: same kernel, same memory layout) and with a stock ``IndexFlatL2`` (``benchmarks.flat_baseline``);
   (ii) nq=100 batches, k=10: QPS both ways and the ratio. The node runs with ``--omp-threads 1`` and this
   process with ``faiss.omp_set_num_threads(1)``.
   (iii) Right after ingest (``benchmarks.ingest_search``): on each repeat's node, the rows again into a new
   collection the way a client sends them (each batch built, then sent), ``Flush`` and search at once, without
   waiting for merges, each nq=1 call run back to back with the same query in-process (both baselines).
c) A header with the machine, versions and the exact command; d) PASS / MISS against the targets.

Every figure is the median over ``--repeats``; each gRPC call runs back to back with the same search in-process
(the order rotates). Only
loopback is used, every loop is bounded, and nodes are stopped by their own process id.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.flat_baseline import Baselines, paired_three
from benchmarks.ingest_search import TARGET_ADDED_P50_MS as TARGET_INGEST_ADDED_MS
from benchmarks.ingest_search import IngestRound, client_ingest_round
from benchmarks.ingest_search import report_lines as ingest_lines
from benchmarks.node_bench_common import (
    batches,
    check_status,
    filesystem,
    fmt_rate,
    lscpu,
    machine_line,
    median,
    percentiles,
    protobuf_text,
    row_records,
    timed,
    verdict,
)
from benchmarks.node_bench_insert import (
    COLLECTION,
    InsertReport,
    create_collection,
    insert_once,
    report_insert,
    wire_costs,
)
from benchmarks.pairing import paired, ping_latencies, search_call
from milvus_wire import milvus_pb2
from node.kernels import use_blas_from
from tests.support.nodeproc import NodeProcess

# Names other benchmarks import from here (they live in node_bench_common).
__all__ = ["batches", "check_status", "filesystem", "fmt_rate", "header_lines", "lscpu", "main", "median",
           "percentiles", "protobuf_text", "row_records", "timed", "verdict"]

K = 10
BATCH_NQ = 100
WARMUP_SINGLE = 20
WARMUP_BATCHED = 2
NODE_ARGS = ("--omp-threads", "1")
# --omp-threads is applied by the node's main thread only; the environment reaches every thread.
NODE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
CALL_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 60.0

TARGET_INSERT_RATE = 100_000.0  # vectors/s acknowledged
TARGET_BATCHED_RATIO = 0.8  # gRPC nq=100 QPS / in-process QPS
TARGET_ADDED_P50_MS = 1.0  # nq=1 p50 through gRPC minus in-process


def header_lines(args: argparse.Namespace, ds: Dataset, storage: Path) -> list[str]:
    return [
        "== Mishards node benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        machine_line(),
        f"software: python {platform.python_version()}, faiss {faiss.__version__}, grpcio {grpc.__version__}, "
        f"{protobuf_text()}, numpy {np.__version__}",
        f"node    : {' '.join(f'{k}={v}' for k, v in NODE_ENV.items())} python -m node {' '.join(NODE_ARGS)} "
        f"(other settings default), loopback, storage in {storage} ({filesystem(storage)}); "
        f"this process: faiss threads {faiss.omp_get_max_threads()}",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32, {ds.queries.shape[0]} held-out queries, "
        f"k={K}; {args.repeats} repeats, medians reported",
    ]


def search_request(queries: np.ndarray) -> Any:
    return milvus_pb2.SearchParam(
        collection_name=COLLECTION,
        query_record_array=row_records(queries),
        topk=K,
        extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")],
    )


# -- b) search -------------------------------------------------------------------------------------


@dataclass
class SearchRound:
    grpc_lat: np.ndarray  # seconds per nq=1 call
    local_lat: np.ndarray  # the same query in-process, the node's kernel over a numpy copy of the rows
    stock_lat: np.ndarray  # the same query in-process, stock faiss IndexFlatL2
    grpc_serial_qps: float
    local_serial_qps: float
    grpc_batched_qps: float
    local_batched_qps: float
    ping_lat: np.ndarray  # seconds per HasCollection call: the round trip without search work


def settle(node: NodeProcess, rows: int) -> tuple[int, int]:
    """Flush, then wait (bounded) until background merges leave one segment; returns (segments, rows)."""
    stub = node.stub()
    check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=CALL_TIMEOUT_S),
                 "Flush")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    segments, count = -1, -1
    while True:
        reply = stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=COLLECTION), timeout=CALL_TIMEOUT_S)
        check_status(reply.status, "ShowCollectionInfo")
        info = json.loads(reply.json_info)
        segments = sum(len(p.get("segments") or []) for p in info.get("partitions", []))
        count = int(info.get("row_count", -1))
        if (segments == 1 and count == rows) or time.monotonic() > deadline:
            return segments, count
        time.sleep(0.2)


def search_round(stub: Any, local: Baselines, singles: list[Any], single_q: list[np.ndarray],
                 batched: list[Any], batched_q: list[np.ndarray], replies: list[Any] | None) -> SearchRound:
    """(i) and (ii): each gRPC call back to back with the same search in-process (nq=1: both baselines, the order
    rotating; nq=100: the node's kernel, which goes first alternates), then the HasCollection floor. QPS is the
    queries over the summed call times of a side."""
    singles_trio = [(search_call(stub, req), functools.partial(local.same.search, q, K),
                     functools.partial(local.stock.search, q, K)) for req, q in zip(singles, single_q, strict=True)]
    one = paired_three(singles_trio, replies)
    batched_paired = [(search_call(stub, req), functools.partial(local.same.search, q, K))
                      for req, q in zip(batched, batched_q, strict=True)]
    grpc_b, local_b = paired(batched_paired)
    done = sum(q.shape[0] for q in batched_q[: grpc_b.shape[0]])
    return SearchRound(one.grpc, one.same, one.stock, one.grpc.shape[0] / one.grpc.sum(),
                       one.same.shape[0] / one.same.sum(), done / grpc_b.sum(), done / local_b.sum(),
                       ping_latencies(stub, COLLECTION, len(singles)))


def default_blas_batched_qps(index: faiss.Index, batched_q: list[np.ndarray], repeats: int) -> tuple[int, int, float]:
    """In-process nq=100 QPS with faiss's default BLAS threshold; returns (default, node's, QPS).

    faiss uses BLAS only when ``nq * d >= distance_compute_blas_threshold`` (128000 by default, i.e.
    nq >= 1000 at d=128). The node switches to BLAS from ``BLAS_MIN_QUERIES`` queries on, and the
    in-process baseline above does the same (like for like); this line shows what stock faiss does.
    """
    node_threshold = int(faiss.cvar.distance_compute_blas_threshold)
    default = 128000
    faiss.cvar.distance_compute_blas_threshold = default
    try:
        index.search(batched_q[0], K)
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            for q in batched_q:
                index.search(q, K)
            rates.append(sum(q.shape[0] for q in batched_q) / (time.perf_counter() - started))
    finally:
        faiss.cvar.distance_compute_blas_threshold = node_threshold
    return default, node_threshold, median(rates)


# -- report ----------------------------------------------------------------------------------------


def report_search(rounds: list[SearchRound], ds: Dataset, segments: int, count: int,
                  grpc_ids: np.ndarray, local_ids: np.ndarray,
                  blas: tuple[int, int, float] | None) -> tuple[list[str], float, float]:
    nq = ds.queries.shape[0]
    g = [percentiles(r.grpc_lat) for r in rounds]
    loc = [percentiles(r.local_lat) for r in rounds]
    stock = [percentiles(r.stock_lat) for r in rounds]
    g50, g95, g99 = (median([p[i] for p in g]) for i in range(3))
    l50, l95, l99 = (median([p[i] for p in loc]) for i in range(3))
    s50, s95, s99 = (median([p[i] for p in stock]) for i in range(3))
    vs_stock = [gp[0] - sp[0] for gp, sp in zip(g, stock, strict=True)]
    added = [gp[0] - lp[0] for gp, lp in zip(g, loc, strict=True)]
    pings = [percentiles(r.ping_lat) for r in rounds]
    p50, p95, p99 = (median([p[i] for p in pings]) for i in range(3))
    added_p50 = median(added)
    gqs, lqs = median([r.grpc_serial_qps for r in rounds]), median([r.local_serial_qps for r in rounds])
    gqb, lqb = median([r.grpc_batched_qps for r in rounds]), median([r.local_batched_qps for r in rounds])
    ratios = [r.grpc_batched_qps / r.local_batched_qps for r in rounds]
    ratio = median(ratios)
    n_batched = len(batches(nq, BATCH_NQ))
    lines = [
        f"  after Flush and the background merges: node holds {count} rows in {segments} segment(s)",
        f"  (i) nq=1, {nq} calls one at a time   p50 ms   p95 ms   p99 ms        QPS",
        f"      gRPC Search               {g50:9.3f} {g95:8.3f} {g99:8.3f} {fmt_rate(gqs):>10}",
        f"      in-process, same kernel   {l50:9.3f} {l95:8.3f} {l99:8.3f} {fmt_rate(lqs):>10}",
        f"      in-process, IndexFlatL2   {s50:9.3f} {s95:8.3f} {s99:8.3f}   (stock faiss: its own storage)",
        f"      added latency             {g50 - l50:+9.3f} {g95 - l95:+8.3f} {g99 - l99:+8.3f}   "
        f"[p50 per repeat: {' / '.join(f'{a:+.3f}' for a in added)} ms]",
        f"      gRPC vs stock IndexFlatL2 {g50 - s50:+9.3f} {g95 - s95:+8.3f} {g99 - s99:+8.3f}   "
        f"[p50 per repeat: {' / '.join(f'{a:+.3f}' for a in vs_stock)} ms; not a target]",
        f"      HasCollection round trip  {p50:9.3f} {p95:8.3f} {p99:8.3f}   (gRPC floor: no search work)",
        f"  (ii) nq={BATCH_NQ}, k={K}, {n_batched} calls               QPS",
        f"      gRPC Search               {fmt_rate(gqb):>9}",
        f"      in-process, same kernel   {fmt_rate(lqb):>9}",
        f"      ratio gRPC / in-process   {ratio:9.2f}   [repeats {' / '.join(f'{r:.2f}' for r in ratios)}]",
        f"  results: recall@{K} vs exact ground truth: gRPC {recall_at(grpc_ids, ds.gt_ids, K):.3f}, "
        f"in-process {recall_at(local_ids, ds.gt_ids, K):.3f}; "
        f"gRPC ids agree with in-process for {recall_at(grpc_ids, local_ids, K):.1%}",
    ]
    if blas is not None:
        default, node_threshold, qps = blas
        lines.insert(-1, f"      (info) in-process with stock faiss (distance_compute_blas_threshold {default} "
                         f"instead of the node's {node_threshold}): {fmt_rate(qps)} QPS; not a target")
    return lines, ratio, added_p50


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.node_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows inserted (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="float dimension (default 128)")
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; medians are reported (default 3)")
    p.add_argument("--batch", type=int, default=10_000, help="rows per Insert call (default 10000)")
    p.add_argument("--ingest-queries", type=int, default=300,
                   help="nq=1 calls of (iii), right after each repeat's ingest (default 300)")
    args = p.parse_args(argv)
    for name in ("rows", "dim", "queries", "repeats", "batch", "ingest_queries"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    faiss.omp_set_num_threads(1)
    ds = load_sift_like(args.rows, args.dim, args.queries)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="node-bench-")))
        print("\n".join(header_lines(args, ds, root)), flush=True)
        # a) insert, a fresh node per repeat; the last one stays up for the searches.
        local = Baselines.of(ds.base)
        index = local.stock
        use_blas_from(int(index.d))  # the node's rule, so that the baseline is like for like
        single_q = [np.ascontiguousarray(ds.queries[i : i + 1]) for i in range(ds.queries.shape[0])]
        singles = [search_request(q) for q in single_q]
        fresh = min(args.ingest_queries, len(singles))
        ingest: list[IngestRound] = []
        rep = InsertReport()
        node: NodeProcess | None = None
        for r in range(args.repeats):
            if node is not None:
                node.stop()
            node = NodeProcess(root / f"node-{r}", NODE_ARGS, env=NODE_ENV).start()
            stack.callback(node.stop)
            create_collection(node, ds.dim)
            rep.runs.append(insert_once(node, ds, args.batch))
            ingest.append(client_ingest_round(node.stub(), ds.base, args.batch, local, singles[:fresh],
                                              single_q[:fresh], K))
        assert node is not None
        wire_costs(ds, args.batch, rep)
        lines, insert_rate = report_insert(rep, ds, args.batch)
        print("\n".join(lines), flush=True)
        lines, ingest_added, ingest_vs_stock = ingest_lines(ingest, ds.rows, args.batch)
        print(f"-- b) exact search (FLAT, L2), {ds.rows} rows; in-process: the node's kernel (faiss knn_L2sqr) over a "
              "numpy copy of the same rows, and a stock faiss.IndexFlatL2", flush=True)
        print("\n".join(lines), flush=True)

        # b) search on the last node.
        segments, count = settle(node, ds.rows)
        stub = node.stub()
        check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=COLLECTION),
                                            timeout=CALL_TIMEOUT_S), "PreloadCollection")
        spans = batches(ds.queries.shape[0], BATCH_NQ)
        batched_q = [np.ascontiguousarray(ds.queries[a:b]) for a, b in spans]
        batched = [search_request(q) for q in batched_q]
        for i in range(min(WARMUP_SINGLE, len(singles))):
            check_status(stub.Search(singles[i], timeout=CALL_TIMEOUT_S).status, "Search")
            local.same.search(single_q[i], K)
            index.search(single_q[i], K)
        for i in range(min(WARMUP_BATCHED, len(batched))):
            check_status(stub.Search(batched[i], timeout=CALL_TIMEOUT_S).status, "Search")
            local.same.search(batched_q[i], K)

        replies: list[Any] = []
        rounds = [
            search_round(stub, local, singles, single_q, batched, batched_q, replies=replies if r == 0 else None)
            for r in range(args.repeats)
        ]
        for reply in replies:
            check_status(reply.status, "Search")
        width = min(K, ds.rows)
        grpc_ids = np.array([list(rp.ids) for rp in replies], dtype=np.int64).reshape(-1, width)
        _, local_ids = index.search(ds.queries, K)
        try:
            blas: tuple[int, int, float] | None = default_blas_batched_qps(index, batched_q, args.repeats)
        except AttributeError:  # a faiss build without the tunable
            blas = None
        lines, ratio, added_p50 = report_search(rounds, ds, segments, count, grpc_ids, local_ids, blas)
        print("\n".join(lines), flush=True)

    targets = [
        (f"insert >= {fmt_rate(TARGET_INSERT_RATE)} vectors/s acknowledged", f"{fmt_rate(insert_rate)} vectors/s",
         insert_rate >= TARGET_INSERT_RATE),
        (f"gRPC nq={BATCH_NQ} QPS >= {TARGET_BATCHED_RATIO}x in-process", f"{ratio:.2f}x",
         ratio >= TARGET_BATCHED_RATIO),
        (f"nq=1 added latency at p50 <= {TARGET_ADDED_P50_MS:g} ms (vs same kernel)", f"{added_p50:.3f} ms",
         added_p50 <= TARGET_ADDED_P50_MS),
        (f"right after ingest: nq=1 added p50 <= {TARGET_INGEST_ADDED_MS:g} ms (vs same kernel)",
         f"{ingest_added:.3f} ms", ingest_added <= TARGET_INGEST_ADDED_MS),
    ]
    if ingest_vs_stock is not None:
        # The issue's own baseline: "the same index in-process", a stock IndexFlatL2 searched in the caller.
        targets.append((f"right after ingest: nq=1 p50 <= stock IndexFlatL2 in-process + {TARGET_INGEST_ADDED_MS:g} ms",
                        f"{ingest_vs_stock:+.3f} ms", ingest_vs_stock <= TARGET_INGEST_ADDED_MS))
    print(f"-- d) targets ({args.repeats} repeats, medians)")
    for label, value, ok in targets:
        print(f"  {label:<66} {value:>12}   {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
