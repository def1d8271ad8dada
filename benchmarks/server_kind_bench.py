"""Per-call cost of three kinds of Python gRPC server, side by side: (a) ``sync``, the ``grpc.server`` with a
``ThreadPoolExecutor`` the node and the proxy run; (b) ``aio``, a ``grpc.aio.server`` whose ``async def`` handler
does the work inline on the event loop; (c) ``aio_thread``, a ``grpc.aio.server`` whose handler hands the work to a
thread pool (``loop.run_in_executor``).

    flock /tmp/mishards-bench.lock .venv/bin/python -m benchmarks.server_kind_bench [--calls 3000] [--seconds 3]

Each kind is a small server subprocess on a free loopback port with one unary generic method on raw bytes (no
(de)serializers), the same handler body for all: ``instant`` (no work), ``gemm 0.3 ms`` and ``gemm 2 ms`` (a
float32 matrix product in one BLAS thread, which releases the GIL as a faiss search does; its size is calibrated
once through server (a) from the body time the servers report) and ``sleep 2 ms`` (``time.sleep(0.002)``, which
blocks the event loop in kind (b)). Every reply carries the server's own time in the body, so "p50 - body" is what
the call cost beyond its work.

The client is the sync grpcio client (as pymilvus and the proxy), one channel per server, one call at a time:
p50 / p99 over ``--calls`` calls per (body, kind), in rounds of ``--block`` calls where every kind takes its turn
(the order rotates each round), so a change of machine load touches all kinds. Then saturation: 8 client threads
on one shared channel for ``--seconds`` per kind and round (``--sat-rounds`` rounds), instant and 0.3 ms bodies,
median QPS. Ratios are to kind (a); the PASS / MISS lines never fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

KINDS = ("sync", "aio", "aio_thread")
METHOD = "/bench.Bench/Call"
GEMM_K, GEMM_N = 128, 512  # the product is (m x 128) @ (128 x 512); m sets its duration
_MATRICES: dict[int, tuple[Any, Any]] = {}


# ---- the server side -------------------------------------------------------------------------------------------

def run_body(request: bytes) -> bytes:
    """The handler's work, named by the request: ``i`` nothing, ``g:<m>`` one (m x 128) @ (128 x 512) float32
    product, ``s:<us>`` a sleep. The reply is the body's own duration in seconds (little-endian double)."""
    started = time.perf_counter()
    kind, _, value = request.decode().partition(":")
    if kind == "g":
        left, right = _matrices(int(value))
        left @ right
    elif kind == "s":
        time.sleep(int(value) / 1e6)
    return struct.pack("<d", time.perf_counter() - started)


def _matrices(rows: int) -> tuple[Any, Any]:
    if rows not in _MATRICES:
        import numpy as np

        rng = np.random.default_rng(rows)
        _MATRICES[rows] = (rng.standard_normal((rows, GEMM_K)).astype(np.float32),
                           rng.standard_normal((GEMM_K, GEMM_N)).astype(np.float32))
    return _MATRICES[rows]


def _announce(port: int) -> None:
    print(port, flush=True)


def serve_sync(workers: int) -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, _context: run_body(request))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Bench", {"Call": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    _announce(port)
    server.wait_for_termination()


async def serve_aio(workers: int, in_thread: bool) -> None:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="work")
    loop = asyncio.get_running_loop()

    async def inline(request: bytes, _context: Any) -> bytes:
        return run_body(request)

    async def threaded(request: bytes, _context: Any) -> bytes:
        return await loop.run_in_executor(pool, run_body, request)

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(threaded if in_thread else inline)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Bench", {"Call": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    _announce(port)
    await server.wait_for_termination()


def serve(kind: str, workers: int) -> None:
    run_body(b"g:64")  # load numpy and BLAS before the first timed call
    if kind == "sync":
        serve_sync(workers)
    else:
        asyncio.run(serve_aio(workers, in_thread=kind == "aio_thread"))


@contextmanager
def server_process(kind: str, workers: int) -> Iterator[str]:
    """A server of ``kind`` in a subprocess with one BLAS thread; yields its address, terminates it after."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.server_kind_bench", "--serve", kind,
                             "--workers", str(workers)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"{kind} server did not start (exit {proc.poll()})")
        yield f"127.0.0.1:{int(line)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the client side -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Body:
    name: str
    request: bytes


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    body_ms: float  # median of the server's own body time


Call = Callable[[bytes], bytes]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_of(calls: list[float], bodies: list[float]) -> Latency:
    return Latency(percentile(calls, 0.5) * 1e3, percentile(calls, 0.99) * 1e3, statistics.median(bodies) * 1e3)


def rotated(kinds: tuple[str, ...], turn: int) -> list[str]:
    shift = turn % len(kinds)
    return list(kinds[shift:] + kinds[:shift])


def server_seconds(reply: bytes) -> float:
    return float(struct.unpack("<d", reply)[0])


def calibrate(call: Call, target_ms: float, probes: int = 40) -> int:
    """Rows m of the product that takes about ``target_ms`` in the server (it is linear in m)."""
    rows = 64
    for _ in range(3):
        body_ms = statistics.median(server_seconds(call(f"g:{rows}".encode())) for _ in range(probes)) * 1e3
        rows = max(1, round(rows * target_ms / max(body_ms, 1e-3)))
    return rows


def latencies(calls: dict[str, Call], bodies: list[Body], total: int, block: int) -> dict[tuple[str, str], Latency]:
    taken: dict[tuple[str, str], tuple[list[float], list[float]]] = {
        (body.name, kind): ([], []) for body in bodies for kind in calls}
    for turn in range(max(1, total // block)):
        for body in bodies:
            for kind in rotated(tuple(calls), turn):
                call, (durations, server) = calls[kind], taken[(body.name, kind)]
                for _ in range(block):
                    started = time.perf_counter()
                    reply = call(body.request)
                    durations.append(time.perf_counter() - started)
                    server.append(server_seconds(reply))
    return {case: latency_of(*values) for case, values in taken.items()}


def saturation_qps(call: Call, request: bytes, threads: int, seconds: float) -> float:
    """Calls per second completed by ``threads`` client threads calling back to back on one channel."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        start.wait()
        while time.perf_counter() < deadline[0]:
            call(request)
            counts[index] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start.wait()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def saturation(calls: dict[str, Call], bodies: list[Body], rounds: int, threads: int,
               seconds: float) -> dict[tuple[str, str], float]:
    taken: dict[tuple[str, str], list[float]] = {(body.name, kind): [] for body in bodies for kind in calls}
    for turn in range(rounds):
        for body in bodies:
            for kind in rotated(tuple(calls), turn):
                taken[(body.name, kind)].append(saturation_qps(calls[kind], body.request, threads, seconds))
    return {case: statistics.median(values) for case, values in taken.items()}


# ---- report ----------------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_header(args: argparse.Namespace) -> None:
    import numpy as np

    command = [os.path.basename(sys.executable), "-m", "benchmarks.server_kind_bench", *sys.argv[1:]]
    print(f"command: {' '.join(command)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print(f"python {platform.python_version()}, grpcio {grpc.__version__}, numpy {np.__version__}; servers: "
          f"{args.workers} pool threads, OPENBLAS_NUM_THREADS=1; client: sync grpcio, one channel per server")


def print_latencies(bodies: list[Body], table: dict[tuple[str, str], Latency]) -> None:
    print("\nlatency, one call at a time (ms)")
    print(f"{'body':<14}{'kind':<12}{'body':>7}{'p50':>8}{'p99':>8}{'p50-body':>10}{'p50 vs a':>10}"
          f"{'d p50':>8}{'p99 vs a':>10}")
    for body in bodies:
        base = table[(body.name, "sync")]
        for kind in KINDS:
            row = table[(body.name, kind)]
            print(f"{body.name:<14}{kind:<12}{row.body_ms:>7.3f}{row.p50_ms:>8.3f}{row.p99_ms:>8.3f}"
                  f"{row.p50_ms - row.body_ms:>10.3f}{row.p50_ms / base.p50_ms:>9.2f}x"
                  f"{row.p50_ms - base.p50_ms:>+8.3f}{row.p99_ms / base.p99_ms:>9.2f}x")


def print_saturation(bodies: list[Body], qps: dict[tuple[str, str], float], threads: int) -> None:
    print(f"\nsaturation, {threads} client threads on one channel (calls/s, median of rounds)")
    for body in bodies:
        base = qps[(body.name, "sync")]
        cells = ", ".join(f"{kind} {qps[(body.name, kind)]:,.0f} ({qps[(body.name, kind)] / base:.2f}x)"
                          for kind in KINDS)
        print(f"{body.name:<14}{cells}")


def print_targets(table: dict[tuple[str, str], Latency], qps: dict[tuple[str, str], float]) -> None:
    print("\ntargets (a kind is 'clearly better' with p50 >= 0.1 ms below sync and >= 0.95x its QPS)")
    for kind in ("aio", "aio_thread"):
        for body in ("instant", "gemm 0.3 ms"):
            gain = table[(body, "sync")].p50_ms - table[(body, kind)].p50_ms
            print(f"  {kind}, {body}: p50 lower than sync by {gain:+.3f} ms: {verdict(gain >= 0.1)}")
        ratios = [qps[(body, kind)] / qps[(body, "sync")] for body in ("instant", "gemm 0.3 ms")]
        print(f"  {kind}: saturation QPS {min(ratios):.2f}x sync (lowest of the two bodies): "
              f"{verdict(min(ratios) >= 0.95)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=32, help="server pool threads (the node's grpc_workers)")
    parser.add_argument("--calls", type=int, default=3000, help="calls per (body, kind) for the latencies")
    parser.add_argument("--block", type=int, default=100, help="calls of one kind before the next takes its turn")
    parser.add_argument("--threads", type=int, default=8, help="client threads at saturation")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of one saturation run")
    parser.add_argument("--sat-rounds", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers)
        return
    print_header(args)
    with ExitStack() as stack:
        channels = {kind: stack.enter_context(grpc.insecure_channel(stack.enter_context(
            server_process(kind, args.workers)))) for kind in KINDS}
        calls: dict[str, Call] = {kind: channel.unary_unary(METHOD) for kind, channel in channels.items()}
        for kind, call in calls.items():
            grpc.channel_ready_future(channels[kind]).result(timeout=30)
            for _ in range(200):
                call(b"i")
        rows_03, rows_2 = calibrate(calls["sync"], 0.3), calibrate(calls["sync"], 2.0)
        bodies = [Body("instant", b"i"), Body("gemm 0.3 ms", f"g:{rows_03}".encode()),
                  Body("gemm 2 ms", f"g:{rows_2}".encode()), Body("sleep 2 ms", b"s:2000")]
        print(f"gemm rows: {rows_03} (0.3 ms), {rows_2} (2 ms), ({GEMM_K} x {GEMM_N} right-hand matrix)")
        table = latencies(calls, bodies, args.calls, args.block)
        print_latencies(bodies, table)
        qps = saturation(calls, bodies[:2], args.sat_rounds, args.threads, args.seconds)
        print_saturation(bodies[:2], qps, args.threads)
        print_targets(table, qps)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
