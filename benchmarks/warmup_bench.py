"""First searches of a fresh read node whose segment files are not in memory: warm-up that only maps the files
(``--warm-read-limit 0``, as before) against warm-up that reads them in (the default), side by side in one run.

    python -m benchmarks.warmup_bench [--rows 200000] [--segments 4] [--nlist 1024] [--nprobe 32] [--repeats 3]

A standalone node writes ``--rows`` SIFT-like rows in ``--segments`` segments with an IVF_FLAT index and stops.
Then, for each repeat and mode (alternating which goes first): every file of the storage folder is written back
and dropped from the page cache (``fsync``, ``POSIX_FADV_DEVICE_DONTNEED``: a read node started on a machine that
has not read them yet), its share of pages checked with ``mincore``; a read node (role ro, a static membership
of itself) starts and warms its share; once it reports SERVING, single searches (nq=1, k=10) of distinct queries
run one after another. Reported: time from start to SERVING, the first search's latency, the mean of the first
20, the median of 50 later ones (pages in memory by then), the share of the index files in the page cache at
SERVING, and the ratio of the first-20 means (before / after). PASS when the warm-up that reads the files makes
the first 20 searches at least 2x faster on average.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like
from benchmarks.node_bench import lscpu, row_records
from benchmarks.saturation_bench import wait_serving
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from node.page_in import resident_share
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import free_port

NAME = "warm_ivf"
K = 10
FIRST = 20
LATER = 50
TIMEOUT = 600.0
ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
SERVER_ARGS = ["--omp-threads", "1", "--search-threads", "1"]
TARGET = 2.0
INSERT_BATCH = 20_000
DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 4)


def check(status: Any, what: str) -> None:
    if status.error_code:
        raise RuntimeError(f"{what} failed: {status.reason}")


def build(storage: Path, ds: Dataset, segments: int, nlist: int) -> None:
    node = NodeProcess(storage.parent / "build", ["--auto-flush-interval", "0", "--omp-threads", "2"],
                       storage=storage, env=ENV).start()
    try:
        stub = node.stub()
        size_mb = max(1, int(ds.base.nbytes / segments / 2**20 * 1.5))  # a segment holds 1/segments: none merge
        check(stub.CreateCollection(milvus_pb2.CollectionSchema(collection_name=NAME, dimension=ds.dim,
                                                                index_file_size=size_mb, metric_type=1)), "create")
        bounds = np.linspace(0, ds.rows, segments + 1).astype(int)
        for lo, hi in itertools.pairwise(bounds):
            for start in range(lo, hi, INSERT_BATCH):
                end = min(hi, start + INSERT_BATCH)
                check(stub.Insert(milvus_pb2.InsertParam(collection_name=NAME, row_record_array=row_records(
                    ds.base[start:end]), row_id_array=list(range(start, end))), timeout=TIMEOUT).status, "insert")
            check(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[NAME]), timeout=TIMEOUT), "flush")
        check(stub.CreateIndex(milvus_pb2.IndexParam(collection_name=NAME, index_type=2, extra_params=[
            milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": nlist}))]), timeout=3600), "index")
    finally:
        node.stop()


def segment_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file() and not p.name.startswith("meta.sqlite")]


def index_files(storage: Path) -> list[Path]:
    return [p for p in segment_files(storage) if p.name.startswith("index-")]


def drop_from_page_cache(files: Sequence[Path]) -> None:
    """Write each file back and drop its pages (clean and unmapped pages go)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, DONTNEED)
        finally:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class Run:
    ready_s: float
    first_ms: float
    first20_ms: float
    later_ms: float
    resident_at_start: float
    resident_at_ready: float


def one_run(root: Path, storage: Path, ds: Dataset, mode: str, repeat: int, nprobe: int) -> Run:
    files = segment_files(storage)
    drop_from_page_cache(files)
    cold = resident_share(index_files(storage))
    port = free_port()
    limit = "0" if mode == "before" else ""
    args = ["--role", "ro", "--port", str(port), "--membership", f"static://127.0.0.1:{port}=ro",
            "--auto-flush-interval", "0", *SERVER_ARGS, *(["--warm-read-limit", limit] if limit else [])]
    node = NodeProcess(root / f"ro-{mode}-{repeat}", args, meta_uri=f"sqlite:///{storage / 'meta.sqlite'}",
                       storage=storage, env=ENV)
    started = time.perf_counter()
    node.start(timeout=TIMEOUT)
    try:
        wait_serving(node.address, TIMEOUT)
        ready = time.perf_counter() - started
        warm = resident_share(index_files(storage))
        channel = grpc.insecure_channel(node.address)
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        params = [milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nprobe": nprobe}))]
        latencies = []
        offset = (repeat * 2 + (mode == "after")) * (FIRST + LATER)  # queries no earlier run asked
        for i in range(FIRST + LATER):
            query = ds.queries[(offset + i) % ds.queries.shape[0]][None]
            request = milvus_pb2.SearchParam(collection_name=NAME, topk=K, query_record_array=row_records(query),
                                             extra_params=params)
            began = time.perf_counter()
            reply = stub.Search(request, timeout=TIMEOUT)
            latencies.append((time.perf_counter() - began) * 1e3)
            check(reply.status, "search")
        channel.close()
    finally:
        node.stop()
    return Run(ready, latencies[0], statistics.fmean(latencies[:FIRST]), statistics.median(latencies[FIRST:]), cold,
               warm)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.warmup_bench", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--segments", type=int, default=4)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ds = load_sift_like(args.rows, queries=1000)
    cpu = lscpu()
    print("== Mishards warm-up benchmark (first searches of a fresh read node) ==")
    print(f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})")
    print(f"machine : {cpu.get('Model name', platform.processor() or 'unknown')}, "
          f"{cpu.get('CPU(s)', os.cpu_count())} CPUs; load average {os.getloadavg()[0]:.2f} at start; "
          f"faiss {faiss.__version__}")
    print(f"data    : {ds.rows} x {ds.dim} SIFT-like, {args.segments} segments, IVF_FLAT nlist {args.nlist}, "
          f"nprobe {args.nprobe}, k={K}; {args.repeats} repeat(s), medians")
    with tempfile.TemporaryDirectory(prefix="mishards-warmup-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        storage = root / "storage"
        build(storage, ds, args.segments, args.nlist)
        size = sum(p.stat().st_size for p in index_files(storage))
        print(f"index files: {len(index_files(storage))}, {size / 2**20:.0f} MB")
        runs: dict[str, list[Run]] = {"before": [], "after": []}
        for repeat in range(args.repeats):
            for mode in (("before", "after") if repeat % 2 == 0 else ("after", "before")):
                runs[mode].append(one_run(root, storage, ds, mode, repeat, args.nprobe))
    print("| warm-up | start -> SERVING s | first search ms | mean of first 20 ms | median of 50 later ms | "
          "index pages in memory: at start / at SERVING |")
    print("|---|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for mode, label in (("before", "maps the files (--warm-read-limit 0)"), ("after", "reads them in (default)")):
        rs = runs[mode]
        med[mode] = {f: statistics.median(getattr(r, f) for r in rs) for f in Run.__dataclass_fields__}
        m = med[mode]
        print(f"| {label} | {m['ready_s']:.2f} | {m['first_ms']:.2f} | {m['first20_ms']:.2f} | {m['later_ms']:.2f} | "
              f"{m['resident_at_start']:.0%} / {m['resident_at_ready']:.0%} |")
    ratio = med["before"]["first20_ms"] / max(1e-9, med["after"]["first20_ms"])
    first = med["before"]["first_ms"] / max(1e-9, med["after"]["first_ms"])
    print(f"first search {first:.1f}x faster, mean of the first {FIRST} {ratio:.1f}x faster with the files read in")
    print(f"{'PASS' if ratio >= TARGET else 'MISS'}: mean of the first {FIRST} searches >= {TARGET:g}x faster "
          f"(load average {os.getloadavg()[0]:.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
