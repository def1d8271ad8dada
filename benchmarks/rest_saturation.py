"""REST QPS at saturation on a standalone node with 1 and then 2 worker processes (``--workers``), one run.

    python -m benchmarks.rest_bench --mode workers [--rows 100000] [--clients 4] [--threads 2] [--seconds 5]
                                                   [--repeats 1]

``--clients`` client processes, each with ``--threads`` threads and a kept-alive HTTP/1.1 connection of its own
per thread (connections to the node's REST port land on either worker, ``SO_REUSEPORT``), send pre-built JSON
bodies in a closed loop: searches (k=10, nq=1 and nq=10) of the 100k SIFT-like set in 4 segments, FLAT and
IVF_FLAT (nlist 512, nprobe 16), as ``benchmarks/saturation_bench.py`` measures over gRPC, and
``GET /collections/{name}`` (a metadata call: a secondary worker forwards it to the primary). Every process
runs one faiss thread. Nothing is asserted; the ratios 2 workers / 1 worker are printed with a PASS / MISS
line for the IVF_FLAT nq=1 search (>= 1.3x).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.datasets import Dataset, load_sift_like
from benchmarks.node_bench import lscpu
from benchmarks.saturation_bench import (
    NPROBE,
    SERVER_ARGS,
    SERVER_ENV,
    WARMUP_S,
    Load,
    build_data,
    cpu_seconds,
    median_load,
    pids_of,
)
from tests.support.nodeproc import NodeProcess

K = 10
CHECK_EVERY = 20  # a client parses one reply in this many (it must be a success)
TIMEOUT_S = 120.0
TARGET_RATIO = 1.3
# (label, method, collection, nq): nq 0 is the metadata call
CASES = (("FLAT search", "PUT", "sat_flat", 1), ("IVF_FLAT search", "PUT", "sat_ivf", 1),
         ("IVF_FLAT search", "PUT", "sat_ivf", 10), ("describe", "GET", "sat_ivf", 0))
Request = tuple[str, str, bytes | None]


def requests_for(ds: Dataset, method: str, name: str, nq: int, count: int = 200) -> list[Request]:
    path = f"/collections/{name}"
    if nq == 0:
        return [(method, path, None)]
    params = {"nprobe": NPROBE} if "ivf" in name else {}
    out: list[Request] = []
    for i in range(count):
        rows = np.take(ds.queries, range(i * nq, (i + 1) * nq), axis=0, mode="wrap")
        body = orjson.dumps({"search": {"topk": K, "params": params, "vectors": rows}},
                            option=orjson.OPT_SERIALIZE_NUMPY)
        out.append((method, f"{path}/vectors", body))
    return out


def client_process(port: int, requests: list[Request], threads: int, start_at: float, end_at: float,
                   out: Any) -> None:
    """One client process: ``threads`` connections, a closed loop each, until ``end_at``; the latencies of the
    calls that started in [start_at, end_at) and this process's CPU seconds in that window."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def loop(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        headers = {"Content-Type": "application/json"}
        mine = latencies[slot]
        try:
            for i in itertools.count(slot):
                began = time.time()
                if began >= end_at:
                    return
                method, path, body = requests[i % len(requests)]
                conn.request(method, path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                if began >= start_at:
                    mine.append(time.time() - began)
                if reply.status != 200 or (i % CHECK_EVERY == 0 and "code" in orjson.loads(data)
                                           and orjson.loads(data)["code"] != 0):
                    errors.append(f"HTTP {reply.status} {data[:200]!r}")
                    return
        finally:
            conn.close()

    workers = [threading.Thread(target=loop, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.time()))  # the measured window opens (a benchmark clock, not a wait)
    cpu_start = time.process_time()
    time.sleep(max(0.0, end_at - time.time()))
    cpu = time.process_time() - cpu_start
    for worker in workers:
        worker.join(timeout=TIMEOUT_S)
    out.put((errors, [x for lat in latencies for x in lat], cpu))


def run_load(port: int, requests: list[Request], nq: int, server_pids: Sequence[int],
             args: argparse.Namespace) -> Load:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0 + WARMUP_S  # clients start (spawned interpreters) and warm up first
    end_at = start_at + args.seconds
    procs = [ctx.Process(target=client_process, args=(port, requests, args.threads, start_at, end_at, out))
             for _ in range(args.clients)]
    for proc in procs:
        proc.start()
    time.sleep(max(0.0, start_at - time.time()))
    server_before = cpu_seconds(server_pids)
    time.sleep(max(0.0, end_at - time.time()))
    server_cpu = cpu_seconds(server_pids) - server_before
    results = [out.get(timeout=TIMEOUT_S) for _ in procs]
    for proc in procs:
        proc.join(timeout=TIMEOUT_S)
    errors = [e for r in results for e in r[0]]
    if errors:
        raise RuntimeError(f"REST call failed under load: {errors[0]}")
    latencies = np.array([x for r in results for x in r[1]])
    p50, p99 = np.percentile(latencies * 1e3, [50, 99]) if latencies.size else (0.0, 0.0)
    calls = latencies.size * max(1, nq)
    return Load(calls / args.seconds, float(p50), float(p99), server_cpu / args.seconds,
                sum(r[2] for r in results) / args.seconds)


def live_pids(node: NodeProcess) -> list[int]:
    """The node's process and its children now (a restarted worker has a new id)."""
    assert node.proc is not None
    pid = node.proc.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


def node_round(root: Path, ds: Dataset, workers: int, args: argparse.Namespace) -> dict[tuple[str, int], Load]:
    node = NodeProcess(root / f"rest-w{workers}", ["--workers", str(workers), "--auto-flush-interval", "0",
                                                   *SERVER_ARGS], storage=root / "storage", env=SERVER_ENV,
                       http=True).start()
    try:
        found = {}
        for label, method, name, nq in CASES:
            pids = live_pids(node) if workers > 1 else pids_of(node)
            found[(label, nq)] = run_load(node.http_port, requests_for(ds, method, name, nq), nq, pids, args)
            if workers > 1 and live_pids(node) != pids:
                print(f"   note: a worker was restarted during {label} nq={nq} ({pids} -> {live_pids(node)})")
        return found
    finally:
        node.stop()


def report(configs: dict[str, dict[tuple[str, int], Load]]) -> list[str]:
    lines = ["   | workers | call | nq | QPS (calls/s for describe) | p50 ms | p99 ms | server cores | client cores |",
             "   |---|---|---|---|---|---|---|---|"]
    for label, loads in configs.items():
        for (call, nq), x in loads.items():
            lines.append(f"   | {label} | {call} | {nq or '-'} | {x.qps:,.0f} | {x.p50_ms:.2f} | {x.p99_ms:.2f} | "
                         f"{x.server_cores:.2f} | {x.client_cores:.2f} |")
    one, two = configs["1 worker"], configs["2 workers"]
    lines.append("   ratio 2 workers / 1 worker: " + ", ".join(
        f"{call} nq={nq or '-'}: {two[(call, nq)].qps / one[(call, nq)].qps:.2f}x"
        for call, nq in one if one[(call, nq)].qps > 0))
    ratio = two[("IVF_FLAT search", 1)].qps / max(1e-9, one[("IVF_FLAT search", 1)].qps)
    lines.append(f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}: REST IVF_FLAT nq=1 QPS with 2 workers "
                 f"{ratio:.2f}x of 1 (target >= {TARGET_RATIO}x; {os.cpu_count()} CPUs shared with the clients)")
    return lines


def main(args: argparse.Namespace) -> int:
    ds = load_sift_like(args.rows)
    cpu = lscpu()
    print("== Mishards REST saturation benchmark (worker processes) ==")
    print(f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})")
    print(f"machine : {cpu.get('Model name', platform.processor() or 'unknown')}, "
          f"{cpu.get('CPU(s)', os.cpu_count())} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    print(f"load    : {args.clients} client processes x {args.threads} kept-alive HTTP connections, closed loop, "
          f"{args.seconds:g} s per case after {WARMUP_S:g} s warm-up; {ds.rows} x {ds.dim}, k={K}; "
          f"server {' '.join(SERVER_ARGS)} per process; {args.repeats} repeat(s), medians")
    with tempfile.TemporaryDirectory(prefix="mishards-rest-saturation-") as tmp:
        root = Path(tmp)
        build_data(root, ds)
        runs: dict[str, list[dict[tuple[str, int], Load]]] = {"1 worker": [], "2 workers": []}
        for repeat in range(args.repeats):
            for workers in ([1, 2] if repeat % 2 == 0 else [2, 1]):
                runs["1 worker" if workers == 1 else "2 workers"].append(node_round(root, ds, workers, args))
        configs = {label: {key: median_load([r[key] for r in rounds]) for key in rounds[0]}
                   for label, rounds in runs.items()}
        print("\n".join(report(configs)))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0
