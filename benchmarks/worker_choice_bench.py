"""Which worker of a node a proxy's search goes to: the one with the fewest calls in flight (``least_busy``)
against round robin, side by side in one run.

    python -m benchmarks.worker_choice_bench [--rows 50000] [--heavy-nq 200] [--light-threads 2]
                                             [--seconds 5] [--repeats 2]

A standalone node with ``--workers 2`` (one faiss thread and one search thread per worker) holds ``--rows``
SIFT-like 128-d vectors in one FLAT collection. This process reaches it the way a proxy does, through
:class:`mishards.worker_channels.SpreadChannel` (the node's workers from ``Cmd("mishards_workers")``): one
thread sends heavy searches (nq ``--heavy-nq``) back to back while ``--light-threads`` threads send nq=1
searches back to back. Reported per policy: the light searches' p50 / p99 latency and QPS, the heavy ones'
QPS. Round robin is ``least_busy`` replaced by the turn alone; the two policies alternate, ``--repeats``
rounds each, and the medians are printed with the ratio round robin / least busy. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import numpy as np

import mishards.worker_channels as wc
from benchmarks.datasets import load_sift_like
from benchmarks.node_bench import row_records
from benchmarks.proxy_cluster import INSERT_BATCH, NODE_ENV, READER_ARGS, TIMEOUT_S, K, check
from milvus_wire import milvus_pb2
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.waiting import poll_for

SEARCH = wc.SERVICE + "Search"
NAME = "choice"


def round_robin(in_flight: Sequence[int], start: int) -> int:
    return start % len(in_flight)


def search_request(queries: np.ndarray) -> bytes:
    return bytes(milvus_pb2.SearchParam(collection_name=NAME, query_record_array=row_records(queries),
                                        topk=K).SerializeToString())


def closed_loop(call: Callable[[bytes], bytes], requests: list[bytes], stop: threading.Event,
                latencies: list[float]) -> None:
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        reply = milvus_pb2.TopKQueryResult.FromString(call(requests[i % len(requests)]))
        latencies.append(time.perf_counter() - started)
        check(reply.status, "Search")
        i += 1


def one_round(spread: wc.SpreadChannel, light: list[bytes], heavy: list[bytes], threads: int,
              seconds: float) -> dict[str, float]:
    call = spread.unary_unary(SEARCH)
    stop = threading.Event()
    light_lat: list[list[float]] = [[] for _ in range(threads)]
    heavy_lat: list[float] = []
    runners = [threading.Thread(target=closed_loop, args=(call, heavy, stop, heavy_lat))]
    runners += [threading.Thread(target=closed_loop, args=(call, light, stop, lat)) for lat in light_lat]
    for t in runners:
        t.start()
    time.sleep(seconds)  # the measured window (a benchmark, not a test)
    stop.set()
    for t in runners:
        t.join()
    flat = sorted(x for lat in light_lat for x in lat)
    return {"light_p50_ms": 1000 * flat[len(flat) // 2], "light_p99_ms": 1000 * flat[int(len(flat) * 0.99)],
            "light_qps": len(flat) / seconds, "heavy_qps": len(heavy_lat) / seconds}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--heavy-nq", type=int, default=200)
    p.add_argument("--light-threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    ds = load_sift_like(rows=args.rows)
    with tempfile.TemporaryDirectory(prefix="choice-bench-") as tmp:
        node = NodeProcess(Path(tmp) / "node", ["--workers", "2", "--auto-flush-interval", "0", *READER_ARGS],
                           env=NODE_ENV).start()
        channels: dict[str, grpc.Channel] = {}

        def plain(address: str) -> grpc.Channel:
            if address not in channels:
                channels[address] = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
            return channels[address]

        try:
            stub = node.stub()
            check(stub.CreateCollection(milvus_pb2.CollectionSchema(
                collection_name=NAME, dimension=ds.dim, index_file_size=1024, metric_type=1)), "Create")
            for s in range(0, ds.rows, INSERT_BATCH):
                check(stub.Insert(milvus_pb2.InsertParam(collection_name=NAME,
                                                         row_record_array=row_records(ds.base[s:s + INSERT_BATCH])),
                                  timeout=TIMEOUT_S).status, "Insert")
            check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[NAME]), timeout=TIMEOUT_S), "Flush")
            directory = wc.WorkerDirectory(plain)
            poll_for(lambda: len(directory.workers(node.address)) == 2, 30, what="the node's workers")
            spread = wc.SpreadChannel(node.address, plain(node.address), directory, plain)
            light = [search_request(ds.queries[i:i + 1]) for i in range(200)]
            heavy = [search_request(np.take(ds.queries, range(i, i + args.heavy_nq), axis=0, mode="wrap"))
                     for i in range(0, 1000, 100)]
            policies = {"round robin": round_robin, "least busy": wc.least_busy}
            results: dict[str, list[dict[str, float]]] = {name: [] for name in policies}
            one_round(spread, light, heavy, args.light_threads, 1.0)  # warm both workers' caches
            for _ in range(args.repeats):
                for name, choose in policies.items():
                    wc.least_busy = choose
                    results[name].append(one_round(spread, light, heavy, args.light_threads, args.seconds))
            wc.least_busy = policies["least busy"]
        finally:
            for channel in channels.values():
                channel.close()
            node.stop()
    keys = ("light_p50_ms", "light_p99_ms", "light_qps", "heavy_qps")
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in keys} for name, runs in results.items()}
    print(f"rows {args.rows}, heavy nq {args.heavy_nq} (1 thread), light nq 1 ({args.light_threads} threads), "
          f"{args.seconds:g} s x {args.repeats} per policy, medians")
    print(f"{'':14}" + "".join(f"{k:>14}" for k in keys))
    for name, values in medians.items():
        print(f"{name:14}" + "".join(f"{values[k]:14.2f}" for k in keys))
    rr, lb = medians["round robin"], medians["least busy"]
    print("round robin / least busy: " + ", ".join(f"{k} {rr[k] / lb[k]:.2f}x" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
