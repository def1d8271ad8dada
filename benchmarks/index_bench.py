"""ANN indexes of one node through the Milvus 1.1 wire format, side by side with the same index in-process.

    python -m benchmarks.index_bench [--rows 100000] [--queries 1000] [--kinds IVF_FLAT,HNSW,...] [--repeats 3]

One node (``--omp-threads 1``, ``OMP_NUM_THREADS=1``) and, per index kind, a fresh collection (L2,
``index_file_size`` 1024 MB so that every row lands in one segment) holding the SIFT-like rows:

a) Build: ``CreateIndex`` wall time through gRPC (the node builds the segment's index, writes and
   fsyncs the file, commits it), the size of the ``index-*`` file on the node's storage, and the time
   of :func:`node.indexes.build_index` with the same parameters over the same rows (same order) in
   this process, one faiss thread on both sides.
b) Search, per search-parameter point: recall@10 against the exact ground truth through gRPC and
   in-process (the in-process index searched with its own ``.search``), and how many result ids the
   two share; (i) nq=1, one call at a time: p50 / p95 / p99 latency both ways, the added latency of
   gRPC, and the ``HasCollection`` round trip (the gRPC floor); (ii) nq=100, k=10: QPS both ways and
   the ratio gRPC / in-process.
c) A header with the machine, versions and the exact command; a final table; d) PASS / MISS lines
   for IVF_FLAT and HNSW against the targets (a benchmark: nothing here is an assertion).

Every figure is the median over ``--repeats``; each gRPC call runs back to back with the same search in-process
(which goes first alternates), so that other work on the machine weighs on both sides alike. Only
loopback is used, every loop is bounded in count and time, and the node is stopped by its process id.

This module is the command line; the kinds and points are in :mod:`benchmarks.index_specs`, the node side in
:mod:`benchmarks.index_node`, one kind's measurement in :mod:`benchmarks.index_measure`, the figures in
:mod:`benchmarks.index_results` and the printed lines in :mod:`benchmarks.index_report`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import faiss

from benchmarks.datasets import load_sift_like
from benchmarks.index_measure import run_kind
from benchmarks.index_node import NODE_ARGS, NODE_ENV
from benchmarks.index_report import final_table, header_lines, report_kind, target_lines
from benchmarks.index_results import KindResult
from benchmarks.index_specs import KIND_ORDER, specs, table_specs
from node.index_builds import BUILD_INDEX_THRESHOLD
from node.kernels import use_blas_from
from tests.support.nodeproc import NodeProcess


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.index_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows inserted (default 100000; 1000000 = full run)")
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (default 1000)")
    p.add_argument("--kinds", default=",".join(KIND_ORDER),
                   help=f"comma-separated index kinds (default {','.join(KIND_ORDER)})")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; medians are reported (default 3)")
    args = p.parse_args(argv)
    for name in ("rows", "queries", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.rows < BUILD_INDEX_THRESHOLD:
        p.error(f"--rows must be >= {BUILD_INDEX_THRESHOLD}: the node searches smaller segments exactly")
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KIND_ORDER]
    if unknown or not kinds:
        p.error(f"--kinds: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(KIND_ORDER)}")
    args.kinds = list(dict.fromkeys(kinds))
    return args


def emit(lines: Sequence[str]) -> None:
    print("\n".join(line.rstrip() for line in lines), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    faiss.omp_set_num_threads(1)
    ds = load_sift_like(args.rows, 128, args.queries)
    use_blas_from(ds.dim)  # the node's rule, so that the in-process side is like for like
    all_specs = specs(ds.rows)
    chosen = [spec for k in args.kinds for spec in (all_specs[k], *table_specs(k))]
    results: list[KindResult] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="index-bench-")))
        scratch = root / "in-process"
        scratch.mkdir()
        node = NodeProcess(root / "node", NODE_ARGS, env=NODE_ENV).start()
        stack.callback(node.stop)
        emit(header_lines(args, ds, node.storage, chosen))
        for spec in chosen:
            t0 = time.perf_counter()
            res = run_kind(node, ds, spec, args.repeats, scratch)
            results.append(res)
            emit(report_kind(res, ds))
            print(f"  ({spec.label} took {time.perf_counter() - t0:.0f} s in all)", flush=True)
    emit(final_table(results, ds))
    emit(target_lines(results, args.repeats))
    print(f"-- run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
