"""Memory of the node that builds an index and of a read node's worker processes, at scale (1M x 128 float).

    python -m benchmarks.scale_memory [--rows 1000000] [--builds IVF_SQ8,IVF_FLAT] [--readers FLAT,IVF_FLAT] \
        [--workers 1,2] [--workdir /tmp/...] [--keep]
    python -m benchmarks.scale_memory --table      # print every saved result, run nothing

The rows, collection and nodes are those of :mod:`benchmarks.scale_bench` (same data generator, 1024 MB
``index_file_size``, same node settings), in a temporary folder (data set, storage, logs) removed at the end
unless ``--keep``; the figures go to ``--results`` as JSON.

1. Insert the rows through a standalone node (batches of 10,000), Flush, wait for one merged segment.
2. ``--readers FLAT`` first (the collection has no index yet), then per ``--builds`` kind in order:
   a fresh build node (``OMP_NUM_THREADS=2``) runs ``CreateIndex`` while a thread of this process samples
   the node's ``/proc/<pid>/status`` and ``smaps_rollup`` every ``--interval`` (50 ms): the peak of each
   figure (RSS, RssAnon, RssFile, PSS) over the node's memory just before the call, and ``VmHWM`` after it
   (a peak between two samples). If the kind is in ``--readers``, its read nodes are measured next (the
   next build replaces the index).
3. A read node per ``--workers`` count (``--role ro``, 1 faiss thread, like the chart's readers):
   ``PreloadCollection`` through the node's port (every worker loads), then the same nq=100 searches over
   every query at every search point of the kind, sent through each worker's own port; each process' memory
   (the parent's too) is read before the preload and after the searches. PSS splits shared pages among the
   processes mapping them, so the sum over a node's processes counts the shared index files once.

Nodes are stopped by their process id. Run under the bench lock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.capacity_plan import DEFAULT_RESULTS
from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.node_bench import batches, check_status
from benchmarks.scale_bench import header
from benchmarks.scale_measure import build, reply_arrays, search_request
from benchmarks.scale_memory_values import (
    BuildMemory,
    ReaderMemory,
    Rollup,
    build_lines,
    peaks,
    read_all,
    read_rollup,
    reader_lines,
    write,
)
from benchmarks.scale_node import has_rows, insert_all, running
from benchmarks.scale_specs import (
    BATCH_NQ,
    BUILD_THREADS,
    CALL_TIMEOUT_S,
    FLOAT_KINDS,
    SEARCH_THREADS,
    K,
    Spec,
    collection_name,
    node_args,
    node_env,
    specs,
)
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess

DEFAULT_MEMORY_RESULTS = DEFAULT_RESULTS / "memory"


class Sampler:
    """A thread reading one process' memory every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[Rollup] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sample-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(read_rollup(self.pid))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)


def pid_of(node: NodeProcess) -> int:
    assert node.proc is not None
    return node.proc.pid


def notes() -> dict[str, object]:
    return {"load_average": os.getloadavg()[0], "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def measure_build(spec: Spec, ds: Dataset, storage: Path, workdir: Path, interval: float) -> BuildMemory:
    with running(workdir / f"build-{spec.name.lower()}", storage, BUILD_THREADS) as node:
        pid = pid_of(node)
        before = read_rollup(pid)
        with Sampler(pid, interval) as sampler:
            seconds, _logged, index_bytes, _segments, _mem = build(node, spec)
        after = read_rollup(pid)
    return BuildMemory(spec.name, ds.rows, ds.dim, dict(spec.build), seconds, index_bytes, len(sampler.samples),
                       interval, before, peaks([*sampler.samples, after]), after, notes())


def worker_view(node: NodeProcess, workers: int) -> tuple[int | None, list[int], list[str]]:
    """(parent pid or None, worker pids, worker addresses) of a running node."""
    if workers == 1:
        return None, [pid_of(node)], [node.address]
    info = json.loads((node.workdir / "ready.json").read_text())
    return pid_of(node), [int(p) for p in info["worker_pids"]], list(info["workers"])


def search_everything(address: str, ds: Dataset, spec: Spec) -> dict[str, float]:
    """Every search point over every query (nq=100 calls) through one address; recall@10 per point."""
    import grpc

    channel = grpc.insecure_channel(address, options=[*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
    try:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        out: dict[str, float] = {}
        for label, params in spec.points:
            found = [reply_arrays(stub.Search(search_request(collection_name("float"), ds.queries[a:b], params),
                                              timeout=CALL_TIMEOUT_S))[0]
                     for a, b in batches(ds.queries.shape[0], BATCH_NQ)]
            out[label] = recall_at(np.concatenate(found), ds.gt_ids, K)
        return out
    finally:
        channel.close()


def measure_reader(spec: Spec, ds: Dataset, storage: Path, workdir: Path, workers: int) -> ReaderMemory:
    extra = [*node_args(SEARCH_THREADS, "ro"), "--workers", str(workers)]
    node = NodeProcess(workdir / f"read-{spec.name.lower()}-w{workers}", extra, env=node_env(SEARCH_THREADS),
                       storage=storage).start(timeout=300.0)
    try:
        parent, pids, addresses = worker_view(node, workers)
        before = tuple(read_rollup(p) for p in pids)
        check_status(node.stub().PreloadCollection(
            milvus_pb2.PreloadCollectionParam(collection_name=collection_name("float")), timeout=CALL_TIMEOUT_S),
            "PreloadCollection")
        recalls = [search_everything(a, ds, spec) for a in addresses]
        if any(r != recalls[0] for r in recalls):
            raise RuntimeError(f"workers answered differently: {recalls}")
        after = tuple(read_rollup(p) for p in pids)
        parent_mem = read_rollup(parent) if parent is not None else None
    finally:
        node.stop(timeout=120.0)
    return ReaderMemory(spec.name, ds.rows, ds.dim, workers, parent_mem, before, after, recalls[0], notes())


def run(args: argparse.Namespace, workdir: Path) -> None:
    ds = load_sift_like(args.rows, 128, args.queries, cache_dir=workdir / "data")
    storage = workdir / "storage"
    all_specs = specs(args.rows)
    with running(workdir / "insert", storage, BUILD_THREADS) as node:
        if not has_rows(node.stub(), collection_name("float"), ds.rows):
            ins = insert_all(node, ds, "float")
            print(f"  inserted {ds.rows:,} rows in {ins.wall_s:.0f} s, {ins.segments} segment(s)", flush=True)

    def readers(kind: str) -> None:
        for w in args.workers:
            res = measure_reader(all_specs[kind], ds, storage, workdir, w)
            print(f"  wrote {write(args.results, res)}", flush=True)
            print("\n".join(reader_lines([res])[1:]), flush=True)

    if "FLAT" in args.readers:
        readers("FLAT")
    for kind in args.builds:
        res = measure_build(all_specs[kind], ds, storage, workdir, args.interval)
        print(f"  wrote {write(args.results, res)}", flush=True)
        print("\n".join(build_lines([res])[1:]), flush=True)
        if kind in args.readers:
            readers(kind)


def kinds_arg(p: argparse.ArgumentParser, flag: str, text: str) -> list[str]:
    kinds = [k.strip().upper() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FLOAT_KINDS]
    if bad:
        p.error(f"{flag}: unknown {', '.join(bad)}; choose from {', '.join(FLOAT_KINDS)}")
    return list(dict.fromkeys(kinds))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries searched through every worker")
    p.add_argument("--builds", default="IVF_SQ8,IVF_FLAT", help="kinds whose CreateIndex is sampled, in order")
    p.add_argument("--readers", default="FLAT,IVF_FLAT", help="kinds served by read nodes (empty: none)")
    p.add_argument("--workers", default="1,2", help="worker counts of the read nodes")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples of a build")
    p.add_argument("--workdir", type=Path, default=None, help="data and storage (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--results", type=Path, default=DEFAULT_MEMORY_RESULTS)
    p.add_argument("--table", action="store_true", help="only print the saved results")
    args = p.parse_args(argv)
    args.builds = kinds_arg(p, "--builds", args.builds)
    args.readers = kinds_arg(p, "--readers", args.readers)
    unknown = [k for k in args.readers if k != "FLAT" and k not in args.builds]
    if unknown:
        p.error(f"--readers {', '.join(unknown)}: a read node serves the index just built: add it to --builds")
    args.workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    args.single = 0  # header() of scale_bench names it
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.table:
        print("\n".join(header(args)[1:3]), flush=True)
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scale-memory-"))
        try:
            run(args, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    builds, readers = read_all(args.results)
    print(f"-- saved results in {args.results}")
    print("\n".join(build_lines(builds) + reader_lines(readers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
