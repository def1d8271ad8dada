"""One node at scale (1M x 128 float, 1M x 256-bit binary): insert rate, index builds, memory, QPS and recall.

    python -m benchmarks.scale_bench [--rows 1000000] [--kinds FLAT,IVF_FLAT,...] [--single 300]
    python -m benchmarks.scale_bench --rows 1000000 --table      # print every saved result, run nothing

Per data set (float kinds: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, ANNOY on L2; binary kinds: BIN_FLAT and
BIN_IVF_FLAT on HAMMING), one collection (index_file_size 1024 MB) in a storage folder kept under
``--workdir`` between invocations, so that a later invocation builds the next kinds on the same rows:

a) Insert (first invocation only): the rows in batches of 10,000 with user ids 0..N-1; vectors/s over the
   Insert calls (requests built outside the timer), then Flush and the wait for background merges; segment
   count and bytes on storage per kind of file.
b) Per kind, the *build node* (``OMP_NUM_THREADS=2``, ``--omp-threads 2``: both cores build) runs
   ``CreateIndex`` (wall time; it blocks until the index is built, written and committed); the new
   ``index-*`` files are measured. The node is stopped.
c) A fresh read-only *search node* on the same storage (``--role ro``, like the chart's readers: it replays
   no log; ``OMP_NUM_THREADS=1``, ``--omp-threads 1``: one thread per query, as the chart's default) is
   measured before and after ``PreloadCollection`` and after the searches: VmRSS, RssAnon / RssFile from
   /proc/<pid>/status and Pss / Pss_Anon / Pss_File from smaps_rollup (``anon`` is private memory, ``file``
   the mapped index files and raw vectors, i.e. page cache).
d) Per search point: nq=1 one call at a time over the first ``--single`` queries (p50 / p99, QPS), then nq=100
   over every query (QPS) and recall@10 of those results (ids for float; tie-tolerant by distance for
   Hamming, where many rows share the 10th distance).

Each kind's figures are written to ``--results`` as JSON, so kinds can be run in separate invocations (each
under the machine's bench lock) and ``--table`` prints them all. Nodes are stopped by their process id.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.datasets import load_binary, load_sift_like
from benchmarks.node_bench import fmt_rate, lscpu, median
from benchmarks.scale_measure import run_kind
from benchmarks.scale_node import has_rows, insert_all, running
from benchmarks.scale_results import RESULTS_DIR, read_results, result_path, table_lines, write_result
from benchmarks.scale_specs import (
    BATCH_NQ,
    BUILD_THREADS,
    DEFAULT_WORKDIR,
    INDEX_FILE_SIZE_MB,
    INSERT_BATCH,
    KIND_ORDER,
    SEARCH_THREADS,
    K,
    Spec,
    collection_name,
    node_args,
    specs,
)


def header(args: argparse.Namespace) -> list[str]:
    cpu = lscpu()
    return [
        "== Mishards scale benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        f"machine : {cpu.get('Model name', platform.processor())}, {cpu.get('CPU(s)', os.cpu_count())} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; load average "
        f"{os.getloadavg()[0]:.2f} at start",
        f"nodes   : build: OMP_NUM_THREADS={BUILD_THREADS} python -m node {' '.join(node_args(BUILD_THREADS))}; "
        f"search: OMP_NUM_THREADS={SEARCH_THREADS} python -m node {' '.join(node_args(SEARCH_THREADS, 'ro'))} "
        "(other settings default); loopback",
        f"data    : {args.rows:,} rows, index_file_size {INDEX_FILE_SIZE_MB} MB, insert batches of {INSERT_BATCH:,}, "
        f"k={K}, nq=1 over {args.single} queries, nq={BATCH_NQ} over {args.queries}; storage under {args.workdir}",
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (nq=100 calls and recall)")
    p.add_argument("--single", type=int, default=300, help="queries sent one at a time (latency, nq=1 QPS)")
    p.add_argument("--kinds", default="FLAT,IVF_FLAT", help=f"comma-separated, from {','.join(KIND_ORDER)}")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="node storage, kept between runs")
    p.add_argument("--results", type=Path, default=RESULTS_DIR,
                   help="result JSON folder (default benchmarks/results/scale, in the repository)")
    p.add_argument("--table", action="store_true", help="only print the saved results")
    p.add_argument("--reinsert", action="store_true", help="drop and insert the rows again")
    args = p.parse_args(argv)
    kinds = [k.strip().upper() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KIND_ORDER]
    if unknown:
        p.error(f"--kinds: unknown {', '.join(unknown)}; choose from {', '.join(KIND_ORDER)}")
    args.kinds = list(dict.fromkeys(kinds))
    return args


def print_table(args: argparse.Namespace) -> None:
    inserts, kinds = read_results(args.results, args.rows)
    print(f"-- saved results in {args.results} ({args.rows:,} rows; memory = search node growth over its start, "
          "after the searches; RSS/raw = that growth / raw vector bytes)")
    print("\n".join(table_lines(inserts, kinds, KIND_ORDER)), flush=True)


def run_data(args: argparse.Namespace, data: str, kinds: Sequence[Spec]) -> None:
    ds = load_binary(args.rows, 256, args.queries) if data == "binary" else load_sift_like(args.rows, 128, args.queries)
    storage = args.workdir / f"{data}-{args.rows}" / "storage"
    workdir = args.workdir / f"{data}-{args.rows}"
    if args.reinsert and storage.exists():
        shutil.rmtree(storage)
    with running(workdir / "build", storage, BUILD_THREADS) as node:
        if not has_rows(node.stub(), collection_name(data), ds.rows):
            ins = insert_all(node, ds, data)
            write_result(result_path(args.results, data, args.rows, "insert"), ins)
            print(f"  insert {data}: {fmt_rate(ins.vectors_per_s)} vectors/s, flush {ins.flush_s:.1f} s, "
                  f"{ins.segments} segment(s)", flush=True)
    for spec in kinds:
        t0 = time.perf_counter()
        res = run_kind(spec, ds, storage, workdir, args.single)
        write_result(result_path(args.results, data, args.rows, spec.name), res)
        print(f"  ({spec.name} took {time.perf_counter() - t0:.0f} s; search node grew by "
              f"{res.loaded.rss / 1e6:,.0f} MB, median recall {median([p.recall for p in res.points]):.3f})",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.table:
        print("\n".join(header(args)), flush=True)
        all_specs = specs(args.rows)
        chosen = [all_specs[k] for k in args.kinds]
        for data in ("float", "binary"):
            group = [s for s in chosen if s.data == data]
            if group:
                run_data(args, data, group)
    print_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
