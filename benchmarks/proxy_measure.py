"""The proxy benchmark's measurements: insert rates, serial and batched searches, load, a paused read node."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from benchmarks.node_bench import percentiles, row_records
from benchmarks.proxy_cluster import BATCH_NQ, INSERT_BATCH, TIMEOUT_S, check
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess

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


@dataclass(frozen=True)
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
