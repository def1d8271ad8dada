"""Where a FLAT nq=1 search spends its time in the node: a profile, not a benchmark with targets.

    python -m benchmarks.flat_probe [--rows 100000] [--dim 128] [--calls 600]

Starts one node (``--omp-threads 1``) whose process times, per call, the ``Search`` handler (everything the node's
code does for the call), ``Reader.search`` and the exact kernel (``FloatFlat.search``), wall and thread CPU time;
inserts the rows, waits for one segment, then runs ``--calls`` nq=1 searches, each back to back with the same
query in this process (the node's kernel over a numpy copy of the rows, and a stock ``IndexFlatL2``:
``benchmarks.flat_baseline``). Then the floors on the same channel: ``HasCollection``, and a ``HasCollection``
the probed node answers only after sleeping as long as the in-process kernel's median (the GIL released, as
faiss releases it), which is what a call that keeps the server busy for that long costs on top in transport and
wake-ups. Per call: gRPC - handler = transport and the gRPC server's own work; handler - kernel = the node's
Python around the kernel.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import load_sift_like
from benchmarks.flat_baseline import Baselines, paired_three
from benchmarks.node_bench import search_request, settle
from benchmarks.node_bench_common import check_status
from benchmarks.node_bench_insert import COLLECTION, create_collection, insert_once
from benchmarks.pairing import search_call
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from node.kernels import use_blas_from
from tests.support.waiting import wait_for_ready_file

K = 10
PROBES = ("handler", "reader", "kernel", "sleep")
SLEEP_PREFIX = "flat_probe_sleep_"  # HasCollection of this name + microseconds sleeps first (probed node only)
ROOT = Path(__file__).resolve().parents[1]
CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


# -- the probed node (a child process) ---------------------------------------------------------------


def serve(node_args: list[str], out: Path) -> int:
    """Run a node with timing wrappers; SIGUSR1 writes the records (probe, start, wall s, cpu s) to ``out``."""
    from node import kernels, reader, search_rpcs, service
    from node.__main__ import main as node_main

    records: list[tuple[int, float, float, float]] = []

    def timed(cls: Any, name: str, probe: str) -> None:
        inner = getattr(cls, name)
        code = PROBES.index(probe)

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                records.append((code, t0, time.perf_counter() - t0, time.thread_time() - c0))

        setattr(cls, name, wrapper)

    timed(search_rpcs.SearchRpcs, "Search", "handler")
    timed(reader.Reader, "search", "reader")
    timed(kernels.FloatFlat, "search", "kernel")
    has_collection = service.MilvusService.HasCollection

    @functools.wraps(has_collection)
    def sleepy(self: Any, request: Any, context: Any) -> Any:
        name = request.collection_name
        if name.startswith(SLEEP_PREFIX):
            t0 = time.perf_counter()
            time.sleep(int(name[len(SLEEP_PREFIX):]) / 1e6)
            records.append((PROBES.index("sleep"), t0, time.perf_counter() - t0, 0.0))
        return has_collection(self, request, context)

    service.MilvusService.HasCollection = sleepy  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, lambda *_: np.save(out, np.array(list(records), dtype=np.float64).reshape(-1, 4)))
    return node_main(node_args)


# -- the driver ---------------------------------------------------------------------------------------


def start_node(root: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    ready, out = root / "ready.json", root / "probe.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "benchmarks.flat_probe", "--serve", str(out), "--", "--port", "0",
            "--storage-path", str(root / "storage"), "--ready-file", str(ready), "--http-port", "0",
            "--omp-threads", "1"]
    log = open(root / "node.log", "wb")  # noqa: SIM115 - the child's output for its lifetime
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    info = wait_for_ready_file(proc, ready, 60.0, "node", lambda: (root / "node.log").read_text()[-2000:])
    return proc, str(info["address"]), out


def records_of(proc: subprocess.Popen[bytes], out: Path, timeout: float = 30.0) -> np.ndarray:
    out.unlink(missing_ok=True)
    os.kill(proc.pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return np.load(out)
        except (OSError, ValueError, EOFError):  # not written yet, or half written
            time.sleep(0.1)
    raise RuntimeError("the probed node wrote no records")


def timings(calls: Sequence[Callable[[], Any]]) -> np.ndarray:
    out = np.empty(len(calls))
    for i, call in enumerate(calls):
        t0 = time.perf_counter()
        call()
        out[i] = time.perf_counter() - t0
    return out


def ms(values: np.ndarray) -> str:
    return f"{float(np.median(values)) * 1e3:7.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        return serve(argv[3:], Path(argv[1]))
    p = argparse.ArgumentParser(prog="python -m benchmarks.flat_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--calls", type=int, default=600)
    args = p.parse_args(argv)
    faiss.omp_set_num_threads(1)
    ds = load_sift_like(args.rows, args.dim, 1000)
    local = Baselines.of(ds.base)
    use_blas_from(args.dim)
    with tempfile.TemporaryDirectory(prefix="flat-probe-") as tmp:
        proc, address, out = start_node(Path(tmp))
        try:
            channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)
            target: Any = type("Target", (), {"stub": staticmethod(lambda: stub)})()  # what the helpers use
            create_collection(target, ds.dim)
            insert_once(target, ds, 10_000)
            segments, count = settle(target, ds.rows)
            check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=COLLECTION)),
                         "PreloadCollection")
            queries = [np.ascontiguousarray(ds.queries[i % 1000: i % 1000 + 1]) for i in range(args.calls)]
            requests = [search_request(q) for q in queries]
            for req in requests[:20]:
                stub.Search(req)
            load = os.getloadavg()[0]
            times = paired_three([(search_call(stub, req), functools.partial(local.same.search, q, K),
                                   functools.partial(local.stock.search, q, K))
                                  for req, q in zip(requests, queries, strict=True)])
            ping = milvus_pb2.CollectionName(collection_name=COLLECTION)
            floor = timings([functools.partial(stub.HasCollection, ping)] * args.calls)
            sleep_us = int(np.median(times.same) * 1e6)
            sleepy = milvus_pb2.CollectionName(collection_name=f"{SLEEP_PREFIX}{sleep_us}")
            long_floor = timings([functools.partial(stub.HasCollection, sleepy)] * args.calls)
            rec = records_of(proc, out)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    n = times.grpc.shape[0]
    probe = {name: rec[rec[:, 0] == i][-n:] for i, name in enumerate(PROBES[:3])}
    slept = rec[rec[:, 0] == PROBES.index("sleep")][-args.calls:, 2]
    handler, kernel = probe["handler"][:, 2], probe["kernel"][:, 2]
    print(f"== FLAT nq=1 profile: {count} x {ds.dim} rows in {segments} segment(s), k={K}, {n} calls, one faiss "
          f"thread each side; load average {load:.2f} at the start of the calls")
    added = (np.median(times.grpc) - np.median(times.same)) * 1e3
    rows = [
        ("gRPC Search", ms(times.grpc)),
        ("in-process, same kernel", f"{ms(times.same)}   (gRPC added {added:+.3f})"),
        ("in-process, stock IndexFlatL2", ms(times.stock)),
        *((f"node: {name}, wall / thread CPU", f"{ms(probe[name][:, 2])} / {ms(probe[name][:, 3])}")
          for name in PROBES[:3]),
        ("node: Python around the kernel (handler - kernel)", ms(handler - kernel)),
        ("transport and gRPC server (gRPC - handler)", ms(times.grpc - handler)),
        ("floor: HasCollection", ms(floor)),
        (f"floor of a call busy {sleep_us} us in the node (wall - sleep)", ms(long_floor - slept)),
    ]
    print("  p50 per call, ms")
    for label, value in rows:
        print(f"  {label:<58} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
