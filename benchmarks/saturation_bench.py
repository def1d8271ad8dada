"""QPS at saturation: worker processes (``--workers``) of a node and of the proxy, side by side in one run.

    python -m benchmarks.saturation_bench [--rows 100000] [--clients 4] [--threads 2] [--seconds 5]
                                          [--part all|node|proxy] [--repeats 1]

Many client connections: ``--clients`` client processes, each with ``--threads`` threads and a TCP connection
of its own per thread (``grpc.use_local_subchannel_pool``: connections to a shared port land on either
worker), send pre-built search requests (serialized once) in a closed loop. k=10, nq=1 and nq=10, over the
100k SIFT-like set of ``benchmarks/datasets.py`` in 4 segments: FLAT (exact) and IVF_FLAT (nlist 512,
nprobe 16). Every process runs one faiss thread (``--omp-threads 1 --search-threads 1``).

a) A standalone node with 1 worker, then 2 workers (same storage).
b) A cluster: a writer, 1 or 2 read nodes (every segment on every reader) and a proxy, with 1 or 2 workers
   per read node and for the proxy; the load starts once every worker of every read node has its share loaded
   (health SERVING), and the writer's CPU counts with the servers'.

For each: QPS, p50 / p99 latency, the CPU the servers and the clients used (cores busy during the measured
window, from /proc), QPS per server core, and the ratio 2 workers / 1 worker. On a 2-core machine the clients
compete with the servers for the same cores: the ratios say how much more of the machine the servers can use,
not what a machine with cores to spare would show. Nothing is asserted; a PASS / MISS line compares the
node's nq=1 IVF ratio with the target (>= 1.5x with 2 workers where 2 cores are free).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.datasets import Dataset, load_sift_like
from benchmarks.node_bench import lscpu, protobuf_text, row_records
from benchmarks.proxy_cluster import INSERT_BATCH, NODE_ENV, READER_ARGS, TIMEOUT_S, K, check
from milvus_wire import milvus_pb2
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_ports, poll_for

SEGMENTS = 4
NLIST = 512
NPROBE = 16
SERVER_ARGS = READER_ARGS  # one faiss thread per process
SERVER_ENV = NODE_ENV
WARMUP_S = 1.5
CHECK_EVERY = 20  # a client parses one reply in this many (the status must be OK)
TARGET_RATIO = 1.5
SEARCH = "/milvus.grpc.MilvusService/Search"
CASES = (("FLAT", "sat_flat", 1), ("FLAT", "sat_flat", 10), ("IVF_FLAT", "sat_ivf", 1), ("IVF_FLAT", "sat_ivf", 10))


# -- data ------------------------------------------------------------------------------------------


def build_data(root: Path, ds: Dataset) -> None:
    """Both collections in 4 segments each, the IVF one indexed, by a standalone node then stopped."""
    node = NodeProcess(root / "build", ["--auto-flush-interval", "0", "--omp-threads", "2"],
                       storage=root / "storage", env=SERVER_ENV).start()
    try:
        stub = node.stub()
        size_mb = max(1, int(ds.base.nbytes / SEGMENTS / 2**20 * 1.5))  # a segment holds 1/4, none merge
        ids = np.arange(ds.rows, dtype=np.int64)
        for name in ("sat_flat", "sat_ivf"):
            check(stub.CreateCollection(milvus_pb2.CollectionSchema(
                collection_name=name, dimension=ds.dim, index_file_size=size_mb, metric_type=1)), "Create")
            bounds = np.linspace(0, ds.rows, SEGMENTS + 1).astype(int)
            for lo, hi in itertools.pairwise(bounds):
                for s in range(lo, hi, INSERT_BATCH):
                    e = min(hi, s + INSERT_BATCH)
                    check(stub.Insert(milvus_pb2.InsertParam(
                        collection_name=name, row_record_array=row_records(ds.base[s:e]),
                        row_id_array=ids[s:e].tolist()), timeout=TIMEOUT_S).status, "Insert")
                check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=TIMEOUT_S), "Flush")
        index = milvus_pb2.IndexParam(collection_name="sat_ivf", index_type=2, extra_params=[
            milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": NLIST}))])
        check(stub.CreateIndex(index, timeout=3600), "CreateIndex")
    finally:
        node.stop()


def requests_for(ds: Dataset, name: str, nq: int, count: int = 200) -> list[bytes]:
    params = [milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nprobe": NPROBE}))] if "ivf" in name else []
    out = []
    for i in range(count):
        rows = np.take(ds.queries, range(i * nq, (i + 1) * nq), axis=0, mode="wrap")
        out.append(milvus_pb2.SearchParam(collection_name=name, query_record_array=row_records(rows), topk=K,
                                          extra_params=params).SerializeToString())
    return out


# -- load ------------------------------------------------------------------------------------------


def client_process(address: str, requests: list[bytes], threads: int, start_at: float, end_at: float,
                   out: Any) -> None:
    """One client process: ``threads`` connections of their own, a closed loop each, until ``end_at``;
    latencies of calls that started in [start_at, end_at) and this process's CPU seconds in that window."""
    channels = [grpc.insecure_channel(address, options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
                for _ in range(threads)]
    calls = [channel.unary_unary(SEARCH) for channel in channels]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def loop(slot: int) -> None:
        call = calls[slot]
        mine = latencies[slot]
        for i in itertools.count(slot):
            began = time.time()
            if began >= end_at:
                return
            reply = call(requests[i % len(requests)], timeout=TIMEOUT_S)
            if began >= start_at:
                mine.append(time.time() - began)
            if i % CHECK_EVERY == 0:
                status = milvus_pb2.TopKQueryResult.FromString(reply).status
                if status.error_code:
                    errors.append(status.reason)
                    return

    workers = [threading.Thread(target=loop, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.time()))  # the measured window opens (a benchmark clock, not a wait)
    cpu_start = time.process_time()
    time.sleep(max(0.0, end_at - time.time()))
    cpu = time.process_time() - cpu_start
    for worker in workers:
        worker.join(timeout=TIMEOUT_S)
    for channel in channels:
        channel.close()
    out.put((errors, [x for lat in latencies for x in lat], cpu))


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (a process that is gone counts 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass(frozen=True, slots=True)
class Load:
    qps: float
    p50_ms: float
    p99_ms: float
    server_cores: float
    client_cores: float

    @property
    def qps_per_core(self) -> float:
        return self.qps / self.server_cores if self.server_cores > 0 else 0.0


def run_load(address: str, requests: list[bytes], nq: int, server_pids: Sequence[int],
             args: argparse.Namespace) -> Load:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0 + WARMUP_S  # clients start (spawned interpreters) and warm up first
    end_at = start_at + args.seconds
    procs = [ctx.Process(target=client_process, args=(address, requests, args.threads, start_at, end_at, out))
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
        raise RuntimeError(f"search failed under load: {errors[0]}")
    latencies = np.array([x for r in results for x in r[1]])
    client_cpu = sum(r[2] for r in results)
    p50, p99 = np.percentile(latencies * 1e3, [50, 99]) if latencies.size else (0.0, 0.0)
    return Load(latencies.size * nq / args.seconds, float(p50), float(p99), server_cpu / args.seconds,
                client_cpu / args.seconds)


# -- servers ---------------------------------------------------------------------------------------


def ready_info(proc: NodeProcess | ProxyProcess) -> dict[str, Any]:
    ready = proc.workdir / ("proxy-ready.json" if isinstance(proc, ProxyProcess) else "ready.json")
    return dict(json.loads(ready.read_text()))


def pids_of(proc: NodeProcess | ProxyProcess) -> list[int]:
    """The process and its workers."""
    assert proc.proc is not None
    return [proc.proc.pid, *(int(p) for p in ready_info(proc).get("worker_pids", []))]


def memory_text(pids: Sequence[int]) -> str:
    """Proportional memory of ``pids`` summed (``/proc/PID/smaps_rollup``: pages shared between processes, such
    as the page cache of mmapped segment and index files, are split among them), in MB."""
    totals = {"Pss": 0, "Pss_Anon": 0, "Pss_File": 0, "Rss": 0}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in totals:
                totals[key] += int(value.split()[0])
    mb = {key: kb / 1024 for key, kb in totals.items()}
    return (f"PSS {mb['Pss']:.0f} MB (anonymous {mb['Pss_Anon']:.0f}, file {mb['Pss_File']:.0f}), "
            f"RSS {mb['Rss']:.0f} MB, over {len(pids)} processes")


def measure_all(address: str, ds: Dataset, pids: Sequence[int],
                args: argparse.Namespace) -> dict[tuple[str, int], Load]:
    found = {}
    for kind, name, nq in CASES:
        found[(kind, nq)] = run_load(address, requests_for(ds, name, nq), nq, pids, args)
    return found


def node_round(root: Path, ds: Dataset, workers: int, args: argparse.Namespace) -> tuple[dict[Any, Load], str]:
    node = NodeProcess(root / f"node-w{workers}", ["--workers", str(workers), "--auto-flush-interval", "0",
                                                   *SERVER_ARGS], storage=root / "storage", env=SERVER_ENV).start()
    try:
        pids = pids_of(node)
        loads = measure_all(node.address, ds, pids, args)
        return loads, memory_text(pids)
    finally:
        node.stop()


def wait_serving(address: str, timeout: float = TIMEOUT_S) -> None:
    """Until the read node (worker) at ``address`` reports its share loaded (health SERVING)."""
    channel = grpc.insecure_channel(address)
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="milvus.grpc.MilvusService")

    def serving() -> bool:
        try:
            return bool(stub.Check(request, timeout=5).status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    try:
        poll_for(serving, timeout, interval=0.1, what=f"{address} serving")
    finally:
        channel.close()


def cluster_round(root: Path, ds: Dataset, readers: int, workers: int,
                  args: argparse.Namespace) -> tuple[dict[Any, Load], str]:
    meta = f"sqlite:///{root / 'storage' / 'meta.sqlite'}"
    ports = free_ports(readers + 1)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    membership = "static://" + ",".join([f"{addrs[0]}=rw", *(f"{a}=ro" for a in addrs[1:])])
    common = ["--membership", membership, "--replication", str(readers), *SERVER_ARGS]
    tag = f"r{readers}w{workers}"
    writer = NodeProcess(root / f"{tag}-w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval", "0",
                                             *common], meta_uri=meta, storage=root / "storage", env=SERVER_ENV)
    nodes = [NodeProcess(root / f"{tag}-r{i}", ["--role", "ro", "--port", str(ports[i + 1]), "--workers",
                                                 str(workers), *common],
                         meta_uri=meta, storage=root / "storage", env=SERVER_ENV) for i in range(readers)]
    proxy = ProxyProcess(root / f"{tag}-p", membership, ["--meta-uri", meta, "--replication", str(readers),
                                                         "--workers", str(workers)])
    started: list[NodeProcess | ProxyProcess] = []
    everything: list[NodeProcess | ProxyProcess] = [writer, *nodes, proxy]
    try:
        for proc in everything:
            proc.start()
            started.append(proc)
        for node in nodes:  # every worker of every reader warm before the load, else the proxy uses the writer
            for address in ready_info(node).get("workers") or [node.address]:
                wait_serving(address)
        pids = [pid for proc in everything for pid in pids_of(proc)]
        loads = measure_all(proxy.address, ds, pids, args)
        return loads, "read nodes: " + memory_text([pid for node in nodes for pid in pids_of(node)])
    finally:
        for proc in reversed(started):
            proc.stop()


# -- report ----------------------------------------------------------------------------------------


def median_load(loads: Sequence[Load]) -> Load:
    def med(attr: str) -> float:
        return float(statistics.median(getattr(x, attr) for x in loads))

    return Load(med("qps"), med("p50_ms"), med("p99_ms"), med("server_cores"), med("client_cores"))


def table(title: str, configs: dict[str, dict[Any, Load]], pairs: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = [title, "   | config | index | nq | QPS | p50 ms | p99 ms | server cores | client cores | "
             "QPS/server core |", "   |---|---|---|---|---|---|---|---|---|"]
    for label, loads in configs.items():
        for (kind, nq), x in loads.items():
            lines.append(f"   | {label} | {kind} | {nq} | {x.qps:,.0f} | {x.p50_ms:.2f} | {x.p99_ms:.2f} | "
                         f"{x.server_cores:.2f} | {x.client_cores:.2f} | {x.qps_per_core:,.0f} |")
    for what, two, one in pairs:
        ratios = [f"{kind} nq={nq}: {configs[two][(kind, nq)].qps / configs[one][(kind, nq)].qps:.2f}x"
                  for kind, _, nq in CASES if configs[one][(kind, nq)].qps > 0]
        lines.append(f"   {what} QPS ratio ({two} / {one}): " + ", ".join(ratios))
    return lines


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.saturation_bench", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=4, help="client processes")
    p.add_argument("--threads", type=int, default=2, help="connections (one thread each) per client process")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per case")
    p.add_argument("--repeats", type=int, default=1, help="rounds of each configuration (medians reported)")
    p.add_argument("--part", choices=["all", "node", "proxy"], default="all")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ds = load_sift_like(args.rows)
    cpu = lscpu()
    print("== Mishards saturation benchmark (worker processes) ==")
    print(f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})")
    print(f"machine : {cpu.get('Model name', platform.processor() or 'unknown')}, "
          f"{cpu.get('CPU(s)', os.cpu_count())} CPUs; load average {os.getloadavg()[0]:.2f} at start")
    print(f"software: python {platform.python_version()}, faiss {faiss.__version__}, grpcio {grpc.__version__}, "
          f"{protobuf_text()}")
    print(f"load    : {args.clients} client processes x {args.threads} connections, closed loop, "
          f"{args.seconds:g} s measured per case after {WARMUP_S:g} s warm-up; k={K}; "
          f"{ds.rows} x {ds.dim} in {SEGMENTS} segments; IVF_FLAT nlist {NLIST} nprobe {NPROBE}")
    print(f"servers : {' '.join(SERVER_ARGS)} per process; {args.repeats} repeat(s), medians")
    if (os.cpu_count() or 1) <= 2:
        print("note    : on 2 cores the client processes compete with the servers for the same cores")
    with tempfile.TemporaryDirectory(prefix="mishards-saturation-") as tmp:
        root = Path(tmp)
        build_data(root, ds)
        if args.part in ("all", "node"):
            runs: dict[str, list[tuple[dict[Any, Load], str]]] = {"1 worker": [], "2 workers": []}
            for repeat in range(args.repeats):
                order = [1, 2] if repeat % 2 == 0 else [2, 1]
                for workers in order:
                    runs["1 worker" if workers == 1 else "2 workers"].append(node_round(root, ds, workers, args))
            configs = {label: {key: median_load([r[0][key] for r in rounds]) for key in rounds[0][0]}
                       for label, rounds in runs.items()}
            print("\n".join(table("a) standalone node", configs, [("node", "2 workers", "1 worker")])))
            for label, rounds in runs.items():
                print(f"   memory after the load, {label}: {rounds[-1][1]}")
            ratio = configs["2 workers"][("IVF_FLAT", 1)].qps / max(1e-9, configs["1 worker"][("IVF_FLAT", 1)].qps)
            verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
            print(f"{verdict}: node IVF_FLAT nq=1 QPS with 2 workers {ratio:.2f}x of 1 (target >= {TARGET_RATIO}x "
                  f"where the cores are free; here {os.cpu_count()} CPUs shared with the clients)")
        if args.part in ("all", "proxy"):
            cluster: dict[str, dict[Any, Load]] = {}
            notes = {}
            for readers, workers in ((1, 1), (1, 2), (2, 1), (2, 2)):
                label = f"{readers} reader(s), {workers} worker(s)"
                rounds = [cluster_round(root, ds, readers, workers, args) for _ in range(args.repeats)]
                cluster[label] = {key: median_load([r[0][key] for r in rounds]) for key in rounds[0][0]}
                notes[label] = rounds[-1][1]
            print("\n".join(table("b) proxy + read nodes", cluster, [
                ("1 reader", "1 reader(s), 2 worker(s)", "1 reader(s), 1 worker(s)"),
                ("2 readers", "2 reader(s), 2 worker(s)", "2 reader(s), 1 worker(s)")])))
            for label, note in notes.items():
                print(f"   memory after the load, {label}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
