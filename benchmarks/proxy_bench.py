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
import itertools
import os
import platform
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.node_bench import lscpu, percentiles, protobuf_text, row_records
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_port, poll_for

COLLECTION = "proxy_bench"
K = 10
BATCH_NQ = 100
INSERT_BATCH = 10_000
READER_ARGS = ("--omp-threads", "1", "--search-threads", "1")
NODE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
TIMEOUT_S = 120.0

TARGET_ADDED_P50_MS = 1.5
TARGET_BATCHED_OVERHEAD = 0.10
TARGET_SCALING = 1.6


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def check(status: Any, what: str) -> None:
    if status.error_code != 0:
        raise RuntimeError(f"{what} failed: error_code {status.error_code}: {status.reason}")


def search_request(queries: np.ndarray) -> Any:
    return milvus_pb2.SearchParam(collection_name=COLLECTION, query_record_array=row_records(queries), topk=K)


def result_ids(reply: Any, nq: int) -> np.ndarray:
    check(reply.status, "Search")
    return np.array(reply.ids, dtype=np.int64).reshape(nq, -1)


@dataclass
class Cluster:
    writer: NodeProcess
    readers: list[NodeProcess]
    proxy_one: ProxyProcess  # writer + read node 1
    proxy_two: ProxyProcess  # writer + both read nodes
    channels: list[grpc.Channel] = field(default_factory=list)

    def stub(self, address: str) -> Any:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.channels.append(channel)
        return milvus_pb2_grpc.MilvusServiceStub(channel)

    def stop(self) -> None:
        for channel in self.channels:
            channel.close()
        for proxy in (self.proxy_one, self.proxy_two):
            proxy.stop()
        for node in (self.writer, *self.readers):
            node.stop()


def start_cluster(root: Path) -> Cluster:
    meta = f"sqlite:///{root / 'meta.sqlite'}"
    storage = root / "shared"
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    writer = NodeProcess(root / "w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval", "0"],
                         meta_uri=meta, storage=storage, env=NODE_ENV)
    readers = [NodeProcess(root / f"r{i}", ["--role", "ro", "--port", str(ports[i + 1]), *READER_ARGS],
                           meta_uri=meta, storage=storage, env=NODE_ENV) for i in range(2)]
    one = ProxyProcess(root / "p1", f"static://{addrs[0]}=rw,{addrs[1]}=ro", ["--meta-uri", meta])
    two = ProxyProcess(root / "p2", f"static://{addrs[0]}=rw,{addrs[1]}=ro,{addrs[2]}=ro",
                       ["--meta-uri", meta, "--replication", "2"])
    cluster = Cluster(writer, readers, one, two)
    try:
        for node in (writer, *readers):
            node.start()
        one.start()
        two.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


# -- a) insert -------------------------------------------------------------------------------------


def insert_rate(stub: Any, name: str, vectors: np.ndarray) -> float:
    requests = [milvus_pb2.InsertParam(collection_name=name, row_record_array=row_records(vectors[s:s + INSERT_BATCH]))
                for s in range(0, len(vectors), INSERT_BATCH)]
    started = time.perf_counter()
    for request in requests:
        check(stub.Insert(request, timeout=TIMEOUT_S).status, "Insert")
    return len(vectors) / (time.perf_counter() - started)


def insert_round(proxy: Any, writer: Any, vectors: np.ndarray, round_no: int) -> tuple[float, float]:
    """(through the proxy, direct) vectors/s, each into a fresh collection, dropped afterwards."""
    rates: dict[str, float] = {}
    order = [("proxy", proxy), ("direct", writer)]
    if round_no % 2:
        order.reverse()
    for label, stub in order:
        name = f"insert_{label}_{round_no}"
        check(stub.CreateCollection(milvus_pb2.CollectionSchema(
            collection_name=name, dimension=vectors.shape[1], index_file_size=1024, metric_type=1)), "Create")
        rates[label] = insert_rate(stub, name, vectors)
        check(writer.DropCollection(milvus_pb2.CollectionName(collection_name=name)), "Drop")
    return rates["proxy"], rates["direct"]


# -- b) search: proxy vs direct --------------------------------------------------------------------


def serial_latencies(stub: Any, requests: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(requests))
    for i, request in enumerate(requests):
        started = time.perf_counter()
        reply = stub.Search(request, timeout=TIMEOUT_S)
        out[i] = time.perf_counter() - started
        check(reply.status, "Search")
    return out


def batched_qps(stub: Any, requests: Sequence[Any]) -> float:
    started = time.perf_counter()
    for request in requests:
        check(stub.Search(request, timeout=TIMEOUT_S).status, "Search")
    return len(requests) * BATCH_NQ / (time.perf_counter() - started)


@dataclass
class SearchRound:
    p50: dict[str, float]
    p99: dict[str, float]
    qps: dict[str, float]


def search_round(stubs: dict[str, Any], singles: Sequence[Any], batches: Sequence[Any], round_no: int) -> SearchRound:
    order = list(stubs.items())
    if round_no % 2:
        order.reverse()
    p50: dict[str, float] = {}
    p99: dict[str, float] = {}
    qps: dict[str, float] = {}
    for label, stub in order:
        lat = serial_latencies(stub, singles)
        p50[label], _, p99[label] = percentiles(lat)
        qps[label] = batched_qps(stub, batches)
    return SearchRound(p50, p99, qps)


# -- c) scaling with read nodes ----------------------------------------------------------------------


def load_qps(stub: Any, requests: Sequence[Any], nq: int, clients: int, seconds: float) -> float:
    """Queries per second answered by ``clients`` threads sending ``requests`` round robin for ``seconds``."""
    done = [0] * clients
    errors: list[str] = []
    stop = threading.Event()

    def client(slot: int) -> None:
        i = slot
        while not stop.is_set():
            reply = stub.Search(requests[i % len(requests)], timeout=TIMEOUT_S)
            if reply.status.error_code:
                errors.append(reply.status.reason)
                return
            done[slot] += 1
            i += clients

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    time.sleep(min(2.0, seconds))  # ramp-up, not measured (a benchmark duration, not a wait for state)
    before = sum(done)
    started = time.perf_counter()
    time.sleep(seconds)
    finished = sum(done) - before
    elapsed = time.perf_counter() - started
    stop.set()
    for t in threads:
        t.join(timeout=TIMEOUT_S)
    if errors:
        raise RuntimeError(f"search failed under load: {errors[0]}")
    return finished * nq / elapsed


# -- d) a paused read node ----------------------------------------------------------------------------


def timed_searches(stub: Any, requests: Sequence[Any], seconds: float) -> tuple[np.ndarray, int]:
    """Latencies of nq=1 searches sent one at a time for ``seconds``, and how many failed."""
    latencies: list[float] = []
    failed = 0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            reply = stub.Search(requests[i % len(requests)], timeout=TIMEOUT_S)
            failed += reply.status.error_code != 0
        except grpc.RpcError:
            failed += 1
        latencies.append(time.perf_counter() - started)
        i += 1
    return np.array(latencies), failed


def paused_round(stub: Any, node: NodeProcess, requests: Sequence[Any], seconds: float) -> list[str]:
    lines = []
    for label in ("both serving", "node 2 paused"):
        paused = label != "both serving"
        assert node.proc is not None
        if paused:
            os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            lat, failed = timed_searches(stub, requests, seconds)
        finally:
            if paused:
                os.kill(node.proc.pid, signal.SIGCONT)
        p50, _, p99 = percentiles(lat)
        lines.append(f"   | {label} | {len(lat):,} | {p50:.2f} | {p99:.2f} | {lat.max() * 1000:.0f} | {failed} |")
    return lines


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


def load_data(stub: Any, ds: Dataset, segments: int) -> None:
    size_mb = max(1, int(ds.base.nbytes / segments / 2**20 * 1.5))  # a segment holds 1/segments, none merge
    check(stub.CreateCollection(milvus_pb2.CollectionSchema(
        collection_name=COLLECTION, dimension=ds.dim, index_file_size=size_mb, metric_type=1)), "Create")
    ids = np.arange(ds.rows, dtype=np.int64)
    bounds = np.linspace(0, ds.rows, segments + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        for s in range(lo, hi, INSERT_BATCH):
            e = min(hi, s + INSERT_BATCH)
            check(stub.Insert(milvus_pb2.InsertParam(collection_name=COLLECTION, row_record_array=row_records(
                ds.base[s:e]), row_id_array=ids[s:e].tolist()), timeout=TIMEOUT_S).status, "Insert")
        check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[COLLECTION]), timeout=TIMEOUT_S), "Flush")


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
