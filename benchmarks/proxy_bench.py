"""The proxy side by side with a direct node, and 1 vs 2 read nodes, in one run on the same data.

    python -m benchmarks.proxy_bench [--rows 100000] [--dim 128] [--queries 1000] [--repeats 3] [--seconds 10]

One cluster on loopback: a writer and two read-only nodes (``--omp-threads 1 --search-threads 1``: one
faiss thread each) on a shared SQLite catalog and storage folder, the data in ``--segments`` segments, and
two proxies: proxy A knows the writer and read node 1, proxy B the writer and both read nodes (two
replicas per segment, so each read node can serve every segment).

a) Insert, 10k-row batches: through proxy A vs directly to the writer (vectors/s acknowledged).
b) Exact search, k=10: (i) nq=1, one call at a time, latency p50/p99 through proxy A vs directly to read
   node 1 (the same node does the same work either way; the difference is the proxy); (ii) nq=100
   batches, QPS both ways. Directions alternate between repeats.
c) Scaling: ``--clients`` concurrent client threads send searches of each ``--load-nq`` size for ``--seconds``
   through proxy A (one read node) and then proxy B (two read nodes): queries per second and the ratio.
d) A paused read node: nq=1 searches one at a time through proxy B for ``--pause`` seconds with both read
   nodes serving, then for as long with read node 2 stopped (SIGSTOP, then SIGCONT): how many, p50 / p99 /
   max latency, failures (the proxy hedges a silent node's segments on the other replica).

Every figure is the median over ``--repeats``. Nothing is asserted: PASS / MISS lines compare with the
targets (proxy adds <= 1.5 ms at p50 for nq=1 and <= 10 % at nq=100; 2 read nodes >= 1.6x of 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.node_bench import lscpu, protobuf_text
from benchmarks.proxy_cluster import (
    BATCH_NQ,
    COLLECTION,
    INSERT_BATCH,
    NODE_ENV,
    READER_ARGS,
    TIMEOUT_S,
    Cluster,
    K,
    load_data,
    result_ids,
    search_request,
    start_cluster,
)
from benchmarks.proxy_measure import insert_round, load_qps, paused_round, search_round
from milvus_wire import milvus_pb2
from tests.support.waiting import poll_for

TARGET_ADDED_P50_MS = 1.5
TARGET_BATCHED_OVERHEAD = 0.10
TARGET_SCALING = 1.6


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# -- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def header(args: argparse.Namespace, ds: Dataset, root: Path) -> list[str]:
    cpu = lscpu()
    return [
        "== Mishards proxy benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {cpu.get('Model name', platform.processor() or 'unknown')}, {cpu.get('CPU(s)', os.cpu_count())} "
        f"CPUs, {platform.system()} {platform.release()}; load average {os.getloadavg()[0]:.2f} at start",
        f"software: python {platform.python_version()}, faiss {faiss.__version__}, grpcio {grpc.__version__}, "
        f"{protobuf_text()}, numpy {np.__version__}",
        f"cluster : writer + 2 read nodes ({' '.join(READER_ARGS)}, "
        f"{' '.join(f'{k}={v}' for k, v in NODE_ENV.items())}), SQLite catalog, storage in {root}; "
        f"proxy A = writer + read node 1, proxy B = writer + both (R=2)",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32 in {args.segments} segments, k={K}; "
        f"{args.repeats} repeats, medians reported",
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.proxy_bench", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (nq=1 calls per repeat)")
    p.add_argument("--segments", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads in the scaling test")
    p.add_argument("--load-nq", default="10,50", help="queries per search in the scaling test (comma separated)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scaling run")
    p.add_argument("--insert-rows", type=int, default=50_000, help="rows per insert run (0: skip)")
    p.add_argument("--pause", type=float, default=5.0, help="seconds read node 2 stays paused in d) (0: skip)")
    return p.parse_args(argv)


def emit(lines: Sequence[str]) -> None:
    print("\n".join(lines), flush=True)

def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ds = load_sift_like(args.rows, args.dim, args.queries)
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        root = Path(tmp)
        emit(header(args, ds, root))
        cluster = start_cluster(root)
        try:
            return run(args, ds, cluster)
        finally:
            cluster.stop()


def run(args: argparse.Namespace, ds: Dataset, cluster: Cluster) -> int:
    proxy_a = cluster.stub(cluster.proxy_one.address)
    proxy_b = cluster.stub(cluster.proxy_two.address)
    writer = cluster.stub(cluster.writer.address)
    reader = cluster.stub(cluster.readers[0].address)
    load_data(proxy_a, ds, args.segments)
    count_of: Callable[[Any], int] = lambda s: int(s.CountCollection(  # noqa: E731
        milvus_pb2.CollectionName(collection_name=COLLECTION)).collection_row_count)
    for r in cluster.readers:
        poll_for(lambda r=r: count_of(cluster.stub(r.address)) == ds.rows, 60,  # type: ignore[misc]
                 what="read nodes to see the data")

    singles = [search_request(ds.queries[i:i + 1]) for i in range(ds.queries.shape[0])]
    batches = [search_request(ds.queries[s:s + BATCH_NQ]) for s in range(0, ds.queries.shape[0], BATCH_NQ)]
    # Warm-up (loads every segment on both read nodes) and a correctness check of both paths.
    found = {label: np.concatenate([result_ids(stub.Search(b, timeout=TIMEOUT_S), BATCH_NQ) for b in batches])
             for label, stub in (("proxy A", proxy_a), ("proxy B", proxy_b), ("direct", reader))}
    emit(["", "recall@10 vs exact ground truth: " + ", ".join(
        f"{label} {recall_at(ids, ds.gt_ids, K):.4f}" for label, ids in found.items())])

    lines: list[str] = []
    if args.insert_rows:
        vectors = ds.base[: args.insert_rows]
        rounds = [insert_round(proxy_a, writer, vectors, i) for i in range(args.repeats)]
        via, direct = median([r[0] for r in rounds]), median([r[1] for r in rounds])
        lines += ["", f"a) insert {INSERT_BATCH}-row batches, {len(vectors)} rows: through the proxy {via:,.0f} vec/s, "
                  f"direct {direct:,.0f} vec/s, ratio {via / direct:.2f}"]

    stubs = {"proxy": proxy_a, "direct": reader}
    s_rounds = [search_round(stubs, singles, batches, i) for i in range(args.repeats)]
    p50 = {k: median([r.p50[k] for r in s_rounds]) for k in stubs}
    p99 = {k: median([r.p99[k] for r in s_rounds]) for k in stubs}
    qps = {k: median([r.qps[k] for r in s_rounds]) for k in stubs}
    added = p50["proxy"] - p50["direct"]
    overhead = 1 - qps["proxy"] / qps["direct"]
    lines += [
        "",
        "b) exact search, k=10, proxy A vs read node 1 directly",
        "   | path | nq=1 p50 ms | nq=1 p99 ms | nq=100 QPS |",
        "   |---|---|---|---|",
        *(f"   | {k} | {p50[k]:.2f} | {p99[k]:.2f} | {qps[k]:,.0f} |" for k in stubs),
        f"   proxy adds {added:+.2f} ms at p50 (nq=1); nq=100 QPS {qps['proxy'] / qps['direct']:.2f}x of direct "
        f"({overhead:+.1%} overhead)",
    ]

    scaling: dict[int, float] = {}
    for nq in (int(v) for v in str(args.load_nq).split(",")):
        load_requests = [search_request(ds.queries[s:s + nq]) for s in range(0, ds.queries.shape[0] - nq + 1, nq)]
        one: list[float] = []
        two: list[float] = []
        for i in range(args.repeats):
            pair = [("one", proxy_a), ("two", proxy_b)]
            if i % 2:
                pair.reverse()
            for label, stub in pair:
                (one if label == "one" else two).append(load_qps(stub, load_requests, nq, args.clients, args.seconds))
        q1, q2 = median(one), median(two)
        scaling[nq] = q2 / q1
        lines += ["", f"c) {args.clients} clients, nq={nq}, {args.seconds:.0f} s each: 1 read node "
                  f"{q1:,.0f} QPS, 2 read nodes {q2:,.0f} QPS: {q2 / q1:.2f}x (rounds: 1 node "
                  f"{', '.join(f'{v:,.0f}' for v in one)}; 2 nodes {', '.join(f'{v:,.0f}' for v in two)})"]

    if args.pause:
        lines += ["", f"d) nq=1 searches one at a time through proxy B for {args.pause:g} s each (2 replicas)",
                  "   | read nodes | searches | p50 ms | p99 ms | max ms | failed |", "   |---|---|---|---|---|---|",
                  *paused_round(proxy_b, cluster.readers[1], singles, args.pause)]

    lines += [
        "",
        "targets:",
        f"  {verdict(added <= TARGET_ADDED_P50_MS)} proxy adds <= {TARGET_ADDED_P50_MS} ms at p50, nq=1 "
        f"({added:+.2f} ms)",
        f"  {verdict(overhead <= TARGET_BATCHED_OVERHEAD)} proxy costs <= {TARGET_BATCHED_OVERHEAD:.0%} at nq=100 "
        f"({overhead:+.1%})",
        *(f"  {verdict(ratio >= TARGET_SCALING)} 2 read nodes >= {TARGET_SCALING}x the QPS of 1, nq={nq} "
          f"({ratio:.2f}x)" for nq, ratio in scaling.items()),
    ]
    emit(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
