"""Timed search loops, one side at a time: nq=1 calls one after another (latencies and QPS) and batched calls
(QPS), through gRPC or in-process; each loop is bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.index_node import CALL_TIMEOUT_S
from benchmarks.node_bench import check_status

LOOP_CAP_S = 120.0  # every timed search loop also stops after this long (then reports what it did)


def grpc_serial(stub: Any, requests: Sequence[Any], keep: list[Any] | None) -> tuple[np.ndarray, float]:
    lat: list[float] = []
    started = time.perf_counter()
    for req in requests:
        t0 = time.perf_counter()
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if reply.status.error_code:
            check_status(reply.status, "Search")
        if keep is not None:
            keep.append(reply)
        if t1 - started > LOOP_CAP_S:
            break
    return np.asarray(lat), len(lat) / (time.perf_counter() - started)


def local_serial(search: Callable[[np.ndarray], Any], queries: Sequence[np.ndarray],
                 keep: list[Any] | None) -> tuple[np.ndarray, float]:
    lat: list[float] = []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        res = search(q)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if keep is not None:
            keep.append(res)
        if t1 - started > LOOP_CAP_S:
            break
    return np.asarray(lat), len(lat) / (time.perf_counter() - started)


def grpc_batched(stub: Any, requests: Sequence[Any], sizes: Sequence[int], keep: list[Any] | None) -> float:
    done = 0
    started = time.perf_counter()
    for req, n in zip(requests, sizes, strict=True):
        reply = stub.Search(req, timeout=CALL_TIMEOUT_S)
        if reply.status.error_code:
            check_status(reply.status, "Search")
        done += n
        if keep is not None:
            keep.append(reply)
        if time.perf_counter() - started > LOOP_CAP_S and keep is None:
            break
    return done / (time.perf_counter() - started)


def local_batched(search: Callable[[np.ndarray], Any], queries: Sequence[np.ndarray], keep: list[Any] | None) -> float:
    done = 0
    started = time.perf_counter()
    for q in queries:
        res = search(q)
        done += q.shape[0]
        if keep is not None:
            keep.append(res)
        if time.perf_counter() - started > LOOP_CAP_S and keep is None:
            break
    return done / (time.perf_counter() - started)
