"""In-process measurements behind the FLAT nq=1 figures (issue 14): memory layout, and the node's Python per call.

    python -m benchmarks.flat_local [--rows 100000] [--service-rows 20000] [--calls 300]

1. Layout: the same faiss ``knn_L2sqr`` (what ``IndexFlatL2.search`` runs) over the same rows held three ways,
   nq=1, one thread, the three calls rotating per query: ``IndexFlatL2``'s own storage, a numpy copy (numpy asks
   for transparent huge pages for arrays of 4 MB and more), and a numpy copy made with that request turned off.
2. Service: the node's ``MilvusService.Search`` called directly (no gRPC) over one segment of ``--service-rows``
   rows, per call the whole handler and the kernel (``FloatFlat.search``) and a few steps between; once with warm
   caches, once with 64 MB read between calls (what a scan of a large segment leaves: every cache cold).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy._core import multiarray

from benchmarks.datasets import load_sift_like
from benchmarks.flat_baseline import SameKernel
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from tests.support.requests import rows as row_records
from tests.support.requests import search_param

K = 10
TRASH_BYTES = 64 * 1024 * 1024


def anon_huge_kb() -> int:
    """Anonymous memory of this process in transparent huge pages (kB)."""
    total = 0
    with open("/proc/self/smaps") as fh:
        for line in fh:
            if line.startswith("AnonHugePages:"):
                total += int(line.split()[1])
    return total


def layout(rows: int, dim: int, calls: int) -> list[str]:
    ds = load_sift_like(rows, dim, 1000)
    stock = faiss.IndexFlatL2(dim)
    stock.add(ds.base)
    huge = SameKernel.of(ds.base)
    set_huge: Callable[[bool], bool] = multiarray._set_madvise_hugepage  # type: ignore[attr-defined]
    was = set_huge(False)
    try:
        small = SameKernel.of(ds.base)
    finally:
        set_huge(was)
    sides: list[tuple[str, Callable[[np.ndarray], Any]]] = [
        ("IndexFlatL2 (its own storage)", lambda q: stock.search(q, K)),
        ("numpy copy (huge pages requested)", lambda q: huge.search(q, K)),
        ("numpy copy (no huge-page request)", lambda q: small.search(q, K)),
    ]
    times: list[list[float]] = [[] for _ in sides]
    for i in range(calls):
        q = np.ascontiguousarray(ds.queries[i % ds.queries.shape[0]: i % ds.queries.shape[0] + 1])
        for j in range(len(sides)):
            side = (i + j) % len(sides)
            t0 = time.perf_counter()
            sides[side][1](q)
            times[side].append(time.perf_counter() - t0)
    base = np.asarray(times[0])
    lines = [f"-- layout: {rows} x {dim} rows, nq=1, k={K}, {calls} calls, one thread; this process holds "
             f"{anon_huge_kb() / 1024:.0f} MB in transparent huge pages"]
    for (label, _), t in zip(sides, times, strict=True):
        arr = np.asarray(t)
        lines.append(f"  {label:<36} p50 {np.median(arr) * 1e3:7.3f} ms   per query vs IndexFlatL2 "
                     f"{np.median(arr / base):.2f}x")
    return lines


def service(rows: int, dim: int, calls: int) -> list[str]:
    from node import convert, kernels, reader, search_rpcs
    from node.engine import Engine
    from node.merges import merge_collection
    from node.service import MilvusService
    from node.settings import NodeSettings

    spent: dict[str, list[float]] = defaultdict(list)

    def timed(owner: Any, name: str, label: str) -> Callable[[], None]:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label].append(time.perf_counter() - t0)

        setattr(owner, name, wrapper)
        return lambda: setattr(owner, name, inner)

    faiss.omp_set_num_threads(1)
    x = load_sift_like(rows, dim, 1000).base
    with tempfile.TemporaryDirectory(prefix="flat-local-") as tmp:
        engine = Engine(NodeSettings(storage_path=str(Path(tmp)), auto_flush_interval=0))
        engine.open()
        pool = ThreadPoolExecutor(1)
        undo: list[Callable[[], None]] = []
        try:
            svc = MilvusService(engine, pool)
            schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=dim, index_file_size=1024,
                                                 metric_type=1)
            svc.CreateCollection(schema, None)
            for start in range(0, rows, 10_000):
                part = x[start:start + 10_000]
                svc.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=row_records(part),
                                                  row_id_array=list(range(start, start + part.shape[0]))), None)
            svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None)
            merge_collection(engine, engine.collection("c").id)
            requests = [wire_fastpath_pb2.SearchParamRaw.FromString(
                search_param("c", x[i:i + 1] + 0.01, K).SerializeToString()) for i in range(calls)]
            for req in requests[:20]:
                svc.Search(req, None)
            undo = [timed(kernels.FloatFlat, "search", "kernel"),
                    timed(convert, "vectors", "decode the query"),
                    timed(search_rpcs.SearchRpcs, "_admit_search", "admission"),
                    timed(search_rpcs.SearchRpcs, "_search_setup", "validated scope"),
                    timed(convert, "topk_result", "the reply"),
                    timed(reader.Reader, "search", "reader")]
            trash = np.ones(TRASH_BYTES // 4, dtype=np.float32)
            lines = [f"-- service: MilvusService.Search called directly, {rows} x {dim} rows in one segment, nq=1, "
                     f"k={K}, {calls} calls; p50 per call"]
            for cold in (False, True):
                spent.clear()
                total = []
                for req in requests:
                    if cold:
                        trash.sum()
                    t0 = time.perf_counter()
                    svc.Search(req, None)
                    total.append(time.perf_counter() - t0)
                whole, kernel = np.asarray(total), np.asarray(spent["kernel"])
                steps = ", ".join(f"{label} {np.median(v) * 1e6:.0f}" for label, v in spent.items()
                                  if label not in ("kernel", "reader"))
                around = np.median(np.asarray(spent["reader"]) - kernel) * 1e6
                lines.append(f"  {'cold (64 MB read between calls)' if cold else 'warm caches':<32} handler "
                             f"{np.median(whole) * 1e6:6.0f} us, kernel {np.median(kernel) * 1e6:6.0f} us, handler - "
                             f"kernel {np.median(whole - kernel) * 1e6:5.0f} us")
                lines.append(f"    steps (us): {steps}, reader around the kernel {around:.0f}")
            return lines
        finally:
            for restore in undo:
                restore()
            pool.shutdown()
            engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.flat_local", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows of the layout measurement (default 100000)")
    p.add_argument("--service-rows", type=int, default=20_000, help="rows of the service measurement (default 20000)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--calls", type=int, default=300)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    faiss.omp_set_num_threads(1)
    print(f"== FLAT in process; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    print("\n".join(layout(args.rows, args.dim, args.calls)), flush=True)
    print("\n".join(service(args.service_rows, args.dim, args.calls)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
