"""REST vs gRPC in one run, on the same node and through the proxy of a small cluster.

    python -m benchmarks.rest_bench [--rows 50000] [--dim 128] [--queries 300] [--repeats 3] [--batch 10000]
    python -m benchmarks.rest_bench --mode workers [--rows 100000] [--clients 4] [--threads 2] [--seconds 5]

``--mode workers``: REST QPS at saturation on a node with 1 and 2 worker processes (``benchmarks/rest_saturation.py``).
The default mode compares the protocols:

For each target (a standalone node; a proxy in front of a writer and one read node):
a) Insert: ``--rows`` rows in calls of ``--batch`` rows (user ids) into a fresh collection per protocol and
   repeat, one call at a time: acknowledged vectors/s. Requests are built before the clock starts (protobuf
   ``InsertParam`` / the JSON body, orjson from numpy); building them is reported separately.
b) Search after ``Flush`` (exact, k=10): nq=1 one call at a time, p50 / p99 latency; nq=100 batches, QPS. The
   REST client keeps one HTTP/1.1 connection (as the gRPC client keeps its channel) and parses the JSON reply.
c) PASS / MISS against the targets: REST search nq=1 p50 within +1 ms of gRPC; REST insert >= 50 % of gRPC's rate.

Medians over ``--repeats``; gRPC and REST alternate which goes first. Loopback only, every loop bounded,
processes stopped by their own process id.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.datasets import load_sift_like
from benchmarks.node_bench import check_status, fmt_rate, header_lines, percentiles, row_records
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess

K = 10
BATCH_NQ = 100
NODE_ARGS = ["--omp-threads", "1", "--auto-flush-interval", "0"]
TARGET_ADDED_P50_MS = 1.0
TARGET_INSERT_SHARE = 0.5
TIMEOUT = 300.0


class Rest:
    """One kept-alive HTTP/1.1 connection, as a REST client library would hold."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        reply = self.conn.getresponse()
        data = reply.read()
        return reply.status, (orjson.loads(data) if data else None)

    def close(self) -> None:
        self.conn.close()


def _ok(status: int, body: Any, what: str) -> Any:
    if status >= 300:
        raise RuntimeError(f"{what}: HTTP {status} {body}")
    return body


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def insert_rates(stub: Any, rest: Rest, base: np.ndarray, batch: int, repeat: int) -> tuple[float, float, float, float]:
    """(gRPC vectors/s, REST vectors/s, gRPC build s/batch, REST build s/batch) for one repeat."""
    spans = [(a, min(a + batch, len(base))) for a in range(0, len(base), batch)]
    names = {p: f"rest_bench_{p}_{repeat}" for p in ("grpc", "rest")}
    for name in names.values():
        check_status(stub.CreateCollection(milvus_pb2.CollectionSchema(
            collection_name=name, dimension=base.shape[1], index_file_size=1024, metric_type=1), timeout=60),
            f"create {name}")
    started = time.perf_counter()
    grpc_requests = [milvus_pb2.InsertParam(collection_name=names["grpc"], row_record_array=row_records(base[a:b]),
                                            row_id_array=list(range(a, b))) for a, b in spans]
    grpc_build = (time.perf_counter() - started) / len(spans)
    started = time.perf_counter()
    bodies = [orjson.dumps({"ids": [str(i) for i in range(a, b)], "vectors": base[a:b]},
                           option=orjson.OPT_SERIALIZE_NUMPY) for a, b in spans]
    rest_build = (time.perf_counter() - started) / len(spans)

    def by_grpc() -> None:
        for req in grpc_requests:
            check_status(stub.Insert(req, timeout=TIMEOUT).status, "insert")

    def by_rest() -> None:
        for body in bodies:
            _ok(*rest.call("POST", f"/collections/{names['rest']}/vectors", body), "insert")

    order = [("grpc", by_grpc), ("rest", by_rest)]
    seconds = {name: _timed(fn) for name, fn in (order if repeat % 2 == 0 else order[::-1])}
    for name in names.values():
        check_status(stub.DropCollection(milvus_pb2.CollectionName(collection_name=name), timeout=60), "drop")
    return len(base) / seconds["grpc"], len(base) / seconds["rest"], grpc_build, rest_build


def search_round(stub: Any, rest: Rest, name: str, queries: np.ndarray, repeat: int) -> dict[str, float]:
    singles = [milvus_pb2.SearchParam(collection_name=name, topk=K, query_record_array=row_records(q[None]),
                                      extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
               for q in queries]
    single_bodies = [orjson.dumps({"search": {"topk": K, "params": {}, "vectors": q[None]}},
                                  option=orjson.OPT_SERIALIZE_NUMPY) for q in queries]
    groups = [queries[i:i + BATCH_NQ] for i in range(0, len(queries) - BATCH_NQ + 1, BATCH_NQ)]
    batched = [milvus_pb2.SearchParam(collection_name=name, topk=K, query_record_array=row_records(g),
                                      extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
               for g in groups]
    batched_bodies = [orjson.dumps({"search": {"topk": K, "params": {}, "vectors": g}},
                                   option=orjson.OPT_SERIALIZE_NUMPY) for g in groups]
    path = f"/collections/{name}/vectors"
    out: dict[str, float] = {}

    def grpc_serial() -> None:
        lat = []
        for req in singles:
            started = time.perf_counter()
            check_status(stub.Search(req, timeout=TIMEOUT).status, "search")
            lat.append(time.perf_counter() - started)
        out["grpc_p50"], _, out["grpc_p99"] = percentiles(np.array(lat))

    def rest_serial() -> None:
        lat = []
        for body in single_bodies:
            started = time.perf_counter()
            _ok(*rest.call("PUT", path, body), "search")
            lat.append(time.perf_counter() - started)
        out["rest_p50"], _, out["rest_p99"] = percentiles(np.array(lat))

    def grpc_batched() -> None:
        def calls() -> None:
            for req in batched:
                check_status(stub.Search(req, timeout=TIMEOUT).status, "search")

        out["grpc_qps"] = len(groups) * BATCH_NQ / _timed(calls)

    def rest_batched() -> None:
        def calls() -> None:
            for body in batched_bodies:
                _ok(*rest.call("PUT", path, body), "search")

        out["rest_qps"] = len(groups) * BATCH_NQ / _timed(calls)

    for _ in range(20):  # warm the cache, the connections and both code paths
        stub.Search(singles[0], timeout=TIMEOUT)
        rest.call("PUT", path, single_bodies[0])
    pairs = [(grpc_serial, rest_serial), (grpc_batched, rest_batched)]
    for first, second in pairs:
        for fn in ((first, second) if repeat % 2 == 0 else (second, first)):
            fn()
    return out


def run_target(label: str, stub: Any, http_port: int, base: np.ndarray, queries: np.ndarray,
               args: argparse.Namespace) -> list[str]:
    rest = Rest(http_port)
    try:
        inserts = [insert_rates(stub, rest, base, args.batch, r) for r in range(args.repeats)]
        name = "rest_bench_search"
        check_status(stub.CreateCollection(milvus_pb2.CollectionSchema(
            collection_name=name, dimension=base.shape[1], index_file_size=1024, metric_type=1), timeout=60), "create")
        for a in range(0, len(base), args.batch):
            check_status(stub.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=row_records(
                base[a:a + args.batch])), timeout=TIMEOUT).status, "insert")
        check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=TIMEOUT), "flush")
        rounds = [search_round(stub, rest, name, queries, r) for r in range(args.repeats)]
    finally:
        rest.close()
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    grpc_rate = statistics.median(i[0] for i in inserts)
    rest_rate = statistics.median(i[1] for i in inserts)
    # A client that encodes each call from numpy, then sends it: build time per batch added to the send time.
    grpc_e2e = statistics.median(args.batch / (args.batch / i[0] + i[2]) for i in inserts)
    rest_e2e = statistics.median(args.batch / (args.batch / i[1] + i[3]) for i in inserts)
    added = med["rest_p50"] - med["grpc_p50"]
    share = rest_rate / grpc_rate
    return [
        f"-- {label}",
        f"   insert ({args.batch}-row calls, acknowledged): gRPC {fmt_rate(grpc_rate)} vectors/s, "
        f"REST {fmt_rate(rest_rate)} vectors/s ({share:.0%} of gRPC); each repeat "
        + ", ".join(f"{g:,.0f}/{r:,.0f}" for g, r, _, _ in inserts),
        f"   client builds one call: gRPC InsertParam {statistics.median(i[2] for i in inserts) * 1e3:.1f} ms, "
        f"REST JSON body {statistics.median(i[3] for i in inserts) * 1e3:.1f} ms; a client that builds then sends: "
        f"gRPC {fmt_rate(grpc_e2e)} vectors/s, REST {fmt_rate(rest_e2e)} vectors/s ({rest_e2e / grpc_e2e:.0%})",
        f"   search nq=1 k={K}: p50 gRPC {med['grpc_p50']:.2f} ms / REST {med['rest_p50']:.2f} ms (+{added:.2f} ms); "
        f"p99 gRPC {med['grpc_p99']:.2f} ms / REST {med['rest_p99']:.2f} ms",
        f"   search nq={BATCH_NQ} k={K}: gRPC {fmt_rate(med['grpc_qps'])} QPS, REST {fmt_rate(med['rest_qps'])} QPS "
        f"({med['rest_qps'] / med['grpc_qps']:.0%})",
        f"   {'PASS' if added <= TARGET_ADDED_P50_MS else 'MISS'} REST nq=1 p50 within +{TARGET_ADDED_P50_MS:g} ms "
        f"of gRPC; {'PASS' if share >= TARGET_INSERT_SHARE else 'MISS'} REST insert >= "
        f"{TARGET_INSERT_SHARE:.0%} of gRPC",
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rest_bench", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--mode", choices=["compare", "workers"], default="compare",
                   help="compare: REST vs gRPC; workers: REST QPS at saturation with 1 and 2 node workers")
    p.add_argument("--clients", type=int, default=4, help="workers mode: client processes")
    p.add_argument("--threads", type=int, default=2, help="workers mode: connections (one thread each) per client")
    p.add_argument("--seconds", type=float, default=5.0, help="workers mode: measured seconds per case")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.mode == "workers":
        from benchmarks import rest_saturation

        return rest_saturation.main(args)
    ds = load_sift_like(args.rows, args.dim, max(args.queries, BATCH_NQ))
    queries = ds.queries[:args.queries]
    with tempfile.TemporaryDirectory(prefix="rest_bench_") as tmp:
        root = Path(tmp)
        head = header_lines(args, ds, root)
        head[0] = "== Mishards REST vs gRPC benchmark =="
        print("\n".join(head), flush=True)
        with NodeProcess(root / "node", NODE_ARGS, http=True) as node:
            print("\n".join(run_target(f"node {node.address} (REST port {node.http_port})", node.stub(),
                                       node.http_port, ds.base, queries, args)), flush=True)
        cluster = LocalCluster(root / "cluster", readers=1, node_args=["--omp-threads", "1"])
        cluster.proxy.http = True
        with cluster:
            print("\n".join(run_target(f"proxy {cluster.proxy.address} (writer + 1 read node; REST port "
                                       f"{cluster.proxy.http_port})", cluster.stub(), cluster.proxy.http_port,
                                       ds.base, queries, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
