"""Side-by-side timing shared by the node benchmarks: each gRPC call back to back with its in-process twin, and the
gRPC floor (a trivial RPC on the same channel)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2

CALL_TIMEOUT_S = 120.0
LOOP_CAP_S = 120.0  # a paired loop stops after this much gRPC time (unless its results are kept)


def paired(calls: Sequence[tuple[Callable[[], Any], Callable[[], Any]]], keep_grpc: list[Any] | None = None,
           keep_local: list[Any] | None = None, ping: Callable[[], Any] | None = None,
           ping_s: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of each gRPC call and of its in-process twin, run back to back (which goes first alternates), so
    that bursts of other work on the machine weigh on both sides alike. Stops after LOOP_CAP_S of gRPC time
    unless results are kept. With ``ping`` (a trivial call on the same channel), it runs after each pair and its
    seconds go to ``ping_s``: the floor as a search leaves the caches (the interleaved floor)."""
    grpc_s: list[float] = []
    local_s: list[float] = []
    for i, (remote, local) in enumerate(calls):
        order = ((remote, grpc_s, keep_grpc), (local, local_s, keep_local))
        for fn, times, keep in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
            if keep is not None:
                keep.append(out)
        if ping is not None and ping_s is not None:
            t0 = time.perf_counter()
            ping()
            ping_s.append(time.perf_counter() - t0)
        if sum(grpc_s) > LOOP_CAP_S and keep_grpc is None:
            break
    return np.asarray(grpc_s), np.asarray(local_s)


def search_call(stub: Any, req: Any) -> Callable[[], Any]:
    """A Search call of ``req`` that raises on an error status and returns the reply."""

    def call() -> Any:
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        if reply.status.error_code != 0:
            raise RuntimeError(f"Search failed: error_code {reply.status.error_code}: {reply.status.reason}")
        return reply

    return call


def ping_call(stub: Any, collection: str) -> Callable[[], Any]:
    """One HasCollection call on ``stub``'s channel: the gRPC round trip with no search work."""
    ping = milvus_pb2.CollectionName(collection_name=collection)

    def call() -> Any:
        return stub.HasCollection(ping, timeout=CALL_TIMEOUT_S)

    return call


def ping_latencies(stub: Any, collection: str, calls: int) -> np.ndarray:
    """Seconds of each of ``calls`` HasCollection calls in a loop: the gRPC round trip with no search work (the
    warm-loop floor)."""
    ping = ping_call(stub, collection)
    out = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        ping()
        out[i] = time.perf_counter() - t0
    return out
