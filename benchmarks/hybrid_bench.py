"""Filtered (hybrid) search of one segment: QPS and recall at several selectivities, against the unfiltered search of
the same index and against brute force over the passing rows, in one run.

    python -m benchmarks.hybrid_bench [--rows 100000] [--queries 200] [--kinds FLAT,IVF_FLAT,HNSW] [--repeats 3]

In this process, one faiss thread for searches (builds use every core), the SIFT-like rows of
``benchmarks/datasets.py`` as one segment, and a uniform int64 column ``a`` in [0, rows): the filter ``a < t``
passes t / rows of the rows (100 %, 50 %, 10 %, 1 %, 0.1 %). An anti-correlated filter (the rows nearest to the
queries left out, most rows pass) is measured at default parameters and with ``"exact": true``.

Per kind and filter, what the node does for a segment of a hybrid search (``node.hybrid_search``): the filter
evaluated over the column (``coordinator.hybrid.evaluate``), ANDed into a :class:`~node.kernels.LiveMask`, and
:func:`node.filtered_search.segment_search` (the planner's choice is printed as ``plan``):

- nq=1, one query at a time: QPS with the mask evaluated for every search (a new filter), then with the mask kept
  (``cached``: a repeated filter, what the node's ``MaskCache`` gives) with its p50 latency; nq=100 batches with
  the mask kept (QPS); recall@10 against the exact top 10 of the passing rows;
- ``unfiltered``: the search of the same index with the same params (nq=1 QPS, recall@10 against the exact top 10)
  and ``ratio`` = cached filtered QPS / unfiltered QPS;
- ``brute``: faiss ``IndexFlatL2`` built over exactly the passing rows beforehand (nq=1 QPS), the ideal exact search.

Every figure is the median over ``--repeats``. Nothing here is an assertion.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from benchmarks.datasets import Dataset, load_sift_like, recall_at
from benchmarks.node_bench import lscpu, median
from coordinator.hybrid.evaluate import evaluate
from coordinator.hybrid.tree import Bool, Comparison, Range
from coordinator.hybrid.types import CompareOp
from coordinator.model import IndexType, MetricType
from node.filter_plan import SegmentShape, plan
from node.filtered_search import segment_search
from node.indexes import SegmentIndex, build_index
from node.kernels import LiveMask, use_blas_from
from node.params import SearchParams

K = 10
BATCH_NQ = 100
SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001)
ANTI_NEIGHBOURS = 300  # rows nearest to each query that the anti-correlated filter leaves out
LOOP_CAP_S = 60.0  # every timed loop also stops after this long


@dataclass(frozen=True)
class Spec:
    name: str
    kind: IndexType
    build: dict[str, int]
    params: SearchParams
    label: str


def specs(rows: int) -> dict[str, Spec]:
    nlist = round(4 * np.sqrt(rows))
    return {
        "FLAT": Spec("FLAT", IndexType.FLAT, {}, SearchParams(), "-"),
        "IVF_FLAT": Spec("IVF_FLAT", IndexType.IVF_FLAT, {"nlist": nlist}, SearchParams(nprobe=16), "nprobe=16"),
        "HNSW": Spec("HNSW", IndexType.HNSW, {"M": 16, "efConstruction": 200}, SearchParams(ef=64), "ef=64"),
    }


@dataclass(frozen=True)
class Filter:
    label: str
    node: Bool | None  # over column "a"; None: ``mask`` is given
    mask: np.ndarray | None = None
    exact: bool = False


@dataclass
class Row:
    spec: str
    filter: str
    passing: int
    strategy: str
    evaluated_qps1: float  # the mask evaluated for every search
    qps1: float  # the mask cached (a repeated filter)
    p50_ms: float
    qps_batch: float
    recall: float
    plain_qps1: float
    plain_recall: float
    brute_qps1: float


def below(threshold: int) -> Bool:
    return Bool(must=(Range("a", (Comparison(CompareOp.LT, threshold),)),))


def exact_top(base: np.ndarray, rows: np.ndarray, queries: np.ndarray, k: int) -> tuple[faiss.IndexFlatL2, np.ndarray]:
    """A flat index over ``base[rows]`` and the true top ``k`` of ``queries`` among those rows (row numbers)."""
    flat = faiss.IndexFlatL2(int(base.shape[1]))
    flat.add(np.ascontiguousarray(base[rows]))
    _, found = flat.search(queries, min(k, rows.size))
    return flat, np.where(found >= 0, rows[np.maximum(found, 0)], -1)


def serial(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[float, float]:
    """(QPS, p50 ms) of one query at a time."""
    times = []
    started = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        search(q[None, :])
        times.append(time.perf_counter() - t)
        if time.perf_counter() - started > LOOP_CAP_S:
            break
    return len(times) / sum(times), float(np.median(times) * 1e3)


def batched(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> float:
    done, spent = 0, 0.0
    for start in range(0, queries.shape[0], BATCH_NQ):
        block = queries[start:start + BATCH_NQ]
        t = time.perf_counter()
        search(block)
        spent += time.perf_counter() - t
        done += block.shape[0]
        if spent > LOOP_CAP_S:
            break
    return done / spent


def measure(spec: Spec, index: SegmentIndex, ds: Dataset, column: np.ndarray, flt: Filter, repeats: int) -> Row:
    rows = ds.rows
    columns = {"a": column}
    queries = ds.queries

    def passing_mask() -> LiveMask:
        mask = evaluate(flt.node, columns, rows) if flt.node is not None else flt.mask
        assert mask is not None
        return LiveMask.of(mask)

    passing = passing_mask()
    offsets = np.flatnonzero(passing.mask) if passing.mask is not None else np.arange(rows)
    flat, truth = exact_top(ds.base, offsets, queries, K)
    chosen = plan(SegmentShape(spec.kind, False, rows, passing.live, ds.dim, index.effective_params.get("nlist")),
                  K, 1, spec.params, flt.exact)

    def evaluated(block: np.ndarray) -> Any:
        return segment_search(index, lambda: ds.base, passing_mask(), block, K, spec.params, ds.dim, flt.exact)

    def filtered(block: np.ndarray) -> Any:
        return segment_search(index, lambda: ds.base, passing, block, K, spec.params, ds.dim, flt.exact)

    everything = LiveMask.build(rows, np.zeros(0, dtype=np.int64))

    def plain(block: np.ndarray) -> Any:
        return index.search(block, K, everything, spec.params)

    found = np.concatenate([filtered(queries[s:s + BATCH_NQ]).ids for s in range(0, queries.shape[0], BATCH_NQ)])
    plain_found = np.concatenate([plain(queries[s:s + BATCH_NQ]).ids for s in range(0, queries.shape[0], BATCH_NQ)])
    qps_e, qps1, p50, qps_b, pq, bq = [], [], [], [], [], []
    for _ in range(repeats):
        qps_e.append(serial(evaluated, queries)[0])
        q, lat = serial(filtered, queries)
        qps1.append(q)
        p50.append(lat)
        qps_b.append(batched(filtered, queries))
        pq.append(serial(plain, queries)[0])
        bq.append(serial(lambda block: flat.search(block, K), queries)[0])
    return Row(spec.name, flt.label, passing.live, chosen.strategy.value, median(qps_e), median(qps1), median(p50),
               median(qps_b), recall_at(found, truth, K), median(pq), recall_at(plain_found, ds.gt_ids, K),
               median(bq))


def anti_correlated(ds: Dataset) -> np.ndarray:
    """Every row but the ANTI_NEIGHBOURS nearest to each query."""
    flat = faiss.IndexFlatL2(ds.dim)
    flat.add(ds.base)
    _, near = flat.search(ds.queries, ANTI_NEIGHBOURS)
    mask = np.ones(ds.rows, dtype=bool)
    mask[near.ravel()] = False
    return mask


def header(args: argparse.Namespace, ds: Dataset) -> list[str]:
    cpu = lscpu()
    model = cpu.get("Model name", platform.processor() or "unknown")
    return [
        "== Mishards filtered (hybrid) search benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {model}, {cpu.get('CPU(s)', os.cpu_count())} CPUs, {platform.system()} {platform.release()}; "
        f"load average {os.getloadavg()[0]:.2f} at start",
        f"software: python {platform.python_version()}, faiss {faiss.__version__}, numpy {np.__version__}; "
        "searches on 1 faiss thread, builds on every core",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32, L2, one segment; {ds.queries.shape[0]} queries; k={K}; "
        f"column a uniform in [0, {ds.rows}); {args.repeats} repeats, medians",
    ]


def table(rows: Sequence[Row]) -> list[str]:
    head = (f"{'kind':9} {'filter':19} {'passing':>8} {'plan':6} {'nq=1 QPS':>9} {'cached':>7} {'p50 ms':>7} "
            f"{'nq=100':>8} {'recall':>6} | {'unfiltered':>10} {'recall':>6} {'ratio':>5} | {'brute':>7}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(f"{r.spec:9} {r.filter:19} {r.passing:8d} {r.strategy:6} {r.evaluated_qps1:9,.0f} {r.qps1:7,.0f} "
                   f"{r.p50_ms:7.2f} {r.qps_batch:8,.0f} {r.recall:6.3f} | {r.plain_qps1:10,.0f} "
                   f"{r.plain_recall:6.3f} {r.qps1 / r.plain_qps1:5.2f} | {r.brute_qps1:7,.0f}")
    return out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", default="FLAT,IVF_FLAT,HNSW")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ds = load_sift_like(args.rows, args.dim, args.queries)
    column = np.random.default_rng(7).integers(0, ds.rows, ds.rows).astype(np.int64)
    filters = [Filter(f"{s:.1%} (a<{round(s * ds.rows)})", below(round(s * ds.rows))) for s in SELECTIVITIES]
    anti = anti_correlated(ds)
    filters += [Filter("anti-correlated", None, anti), Filter("anti, exact", None, anti, exact=True)]
    for line in header(args, ds):
        print(line, flush=True)
    results: list[Row] = []
    all_specs = specs(ds.rows)
    for name in args.kinds.split(","):
        spec = all_specs[name]
        threads = faiss.omp_get_max_threads()
        use_blas_from(ds.dim)
        started = time.perf_counter()
        index = build_index(spec.kind, ds.base, MetricType.L2, spec.build)
        print(f"{name}: built {spec.build} in {time.perf_counter() - started:.1f} s; searched at {spec.label}",
              flush=True)
        faiss.omp_set_num_threads(1)
        try:
            for flt in filters:
                results.append(measure(spec, index, ds, column, flt, args.repeats))
                print("  " + table([results[-1]])[-1], flush=True)
        finally:
            faiss.omp_set_num_threads(threads)
    print()
    for line in table(results):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
