"""Two versions of the node side by side: nq=1 searches alternated between a node running another checkout's code
("before") and one running this checkout's ("after"), over copies of the same storage.

    python -m benchmarks.node_ab --before /path/to/other/checkout [--kinds IVF_FLAT,HNSW] [--queries 1000]
                                 [--repeats 3]

Per kind, one collection of the SIFT-like rows of :mod:`benchmarks.index_bench` (100,000 x 128, L2, one segment) is
built by a node of this checkout (IVF_FLAT nlist 1024 searched at nprobe 64, HNSW M 16 efConstruction 200 at
ef 64: the points of issue 14); its storage is copied, and a node of each checkout (``--omp-threads 1``) serves
its own copy. Each query is sent to both nodes and searched in this process (the same rows in the node's order,
one faiss thread), in a rotating order, then each node answers a ``HasCollection`` (the order alternating): load
from other work weighs on both versions alike, and both pings see the caches a search leaves. Reported per
repeat: p50 of each, the after - before difference, and each node's share beyond the floor (added p50 less its
ping p50). Results of the two nodes must be identical; the run stops otherwise.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like
from benchmarks.index_node import (
    CALL_TIMEOUT_S,
    CREATE_INDEX_TIMEOUT_S,
    NODE_ARGS,
    NODE_ENV,
    load_collection,
    row_order,
    search_request,
    settle,
)
from benchmarks.index_specs import K
from benchmarks.node_bench import check_status
from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from node.indexes import build_index
from node.kernels import LiveMask, use_blas_from
from node.params import SearchParams
from tests.support.nodeproc import NodeProcess

ROOT = Path(__file__).resolve().parents[1]
NAME = "node_ab"
POINTS: dict[str, tuple[dict[str, int], dict[str, int], SearchParams]] = {  # build, search params (wire, in-process)
    "IVF_FLAT": ({"nlist": 1024}, {"nprobe": 64}, SearchParams(nprobe=64)),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 64}, SearchParams(ef=64)),
}


def node_class(root: Path) -> Any:
    """``NodeProcess`` of the checkout at ``root`` (it runs ``python -m node`` from there)."""
    spec = importlib.util.spec_from_file_location(f"nodeproc_{abs(hash(str(root)))}",
                                                  root / "tests" / "support" / "nodeproc.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"{root} is not a checkout of this project (no tests/support/nodeproc.py)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NodeProcess


def build_storage(work: Path, kind: str, ds: Dataset) -> Path:
    """A node of this checkout's storage holding the collection with its index built; returns the storage."""
    rows = ds.rows
    node = NodeProcess(work / "build", NODE_ARGS, env=NODE_ENV).start()
    try:
        load_collection(node, NAME, ds)
        settle(node, NAME, rows)
        build = POINTS[kind][0]
        param = milvus_pb2.IndexParam(collection_name=NAME, index_type=int(IndexType[kind]),
                                      extra_params=[milvus_pb2.KeyValuePair(key="params", value=json.dumps(build))])
        check_status(node.stub().CreateIndex(param, timeout=CREATE_INDEX_TIMEOUT_S), "CreateIndex")
    finally:
        node.stop()
    return node.storage


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_kind(kind: str, before: Path, rows: int, queries: int, repeats: int, work: Path) -> None:
    ds = load_sift_like(rows, 128, queries)
    storage = build_storage(work, kind, ds)
    nodes = []
    for tag, cls in (("before", node_class(before)), ("after", NodeProcess)):
        shutil.copytree(storage, work / tag / "storage")
        nodes.append(cls(work / tag, NODE_ARGS, env=NODE_ENV, storage=work / tag / "storage").start())
    try:
        build, wire, sp = POINTS[kind]
        stubs = [n.stub() for n in nodes]
        for stub in stubs:
            check_status(stub.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=NAME),
                                                timeout=CALL_TIMEOUT_S), "PreloadCollection")
        info = json.loads(stubs[1].ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=NAME)).json_info)
        segments = [s["name"] for p in info["partitions"] for s in (p.get("segments") or [])]
        order = row_order(stubs[1], NAME, segments)
        local = build_index(IndexType[kind], np.ascontiguousarray(ds.base[order]), MetricType.L2, build)
        live = LiveMask.build(int(order.shape[0]), np.zeros(0, dtype=np.int64))
        singles = [np.ascontiguousarray(ds.queries[i:i + 1]) for i in range(queries)]
        requests = [search_request(NAME, q, wire) for q in singles]
        ping = milvus_pb2.CollectionName(collection_name=NAME)
        for req in requests[:20]:
            for stub in stubs:
                stub.Search(req, timeout=CALL_TIMEOUT_S)
        print(f"-- {kind} {json.dumps(build)} searched at {json.dumps(wire)}, nq=1, k={K}, {queries} queries, "
              f"{len(segments)} segment(s); before = {before}, after = {ROOT}", flush=True)
        for rep in range(repeats):
            lat: dict[str, list[float]] = {k: [] for k in ("before", "after", "local", "ping before", "ping after")}
            for i, (req, q) in enumerate(zip(requests, singles, strict=True)):
                calls: list[tuple[str, Callable[[], Any]]] = [
                    ("before", functools.partial(stubs[0].Search, req, timeout=CALL_TIMEOUT_S)),
                    ("after", functools.partial(stubs[1].Search, req, timeout=CALL_TIMEOUT_S)),
                    ("local", functools.partial(local.search, q, K, live, sp)),
                ]
                replies = {}
                for name, fn in calls[i % 3:] + calls[:i % 3]:
                    seconds, replies[name] = timed(fn)
                    lat[name].append(seconds)
                for name in ("before", "after"):
                    check_status(replies[name].status, "Search")
                if list(replies["before"].ids) != list(replies["after"].ids):
                    raise SystemExit(f"query {i}: the two nodes' results differ")
                pings = [("ping before", stubs[0]), ("ping after", stubs[1])]
                for name, stub in pings if i % 2 else pings[::-1]:
                    lat[name].append(timed(functools.partial(stub.HasCollection, ping, timeout=CALL_TIMEOUT_S))[0])
            p50 = {k: float(np.median(v)) * 1e3 for k, v in lat.items()}
            beyond = {tag: p50[tag] - p50["local"] - p50[f"ping {tag}"] for tag in ("before", "after")}
            print(f"  repeat {rep}, load {os.getloadavg()[0]:.1f}: p50 ms before {p50['before']:.3f}, after "
                  f"{p50['after']:.3f} (after - before {p50['after'] - p50['before']:+.3f}); in-process "
                  f"{p50['local']:.3f}; ping before {p50['ping before']:.3f}, after {p50['ping after']:.3f}; beyond "
                  f"the floor: before {beyond['before']:+.3f}, after {beyond['after']:+.3f}", flush=True)
    finally:
        for node in nodes:
            node.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.node_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="a checkout of the node version to compare with")
    p.add_argument("--kinds", default="IVF_FLAT,HNSW", help="comma-separated: IVF_FLAT, HNSW")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in POINTS for k in kinds):
        p.error(f"--kinds: choose from {', '.join(POINTS)}")
    faiss.omp_set_num_threads(1)
    use_blas_from(128)
    print(f"== node A/B: load average {os.getloadavg()[0]:.2f} at start; {' '.join(sys.orig_argv)}", flush=True)
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="node-ab-") as tmp:
            run_kind(kind, args.before.resolve(), args.rows, args.queries, args.repeats, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
