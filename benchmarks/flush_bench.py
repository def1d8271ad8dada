"""How long ``Flush`` takes after a bulk insert, and how soon the last row is found, on this checkout's node and,
side by side, on another checkout's ("before").

    python -m benchmarks.flush_bench [--before /path/to/other/checkout] [--rows 100000] [--batch 10000]
                                     [--repeats 3]

Per repeat and per side (the order alternating), a fresh node (``--omp-threads 1``) gets a collection with one
segment size large enough for every row (FLAT, L2), the SIFT-like rows of :mod:`benchmarks.datasets` in batches
sent back to back (requests built beforehand), then ``Flush``; then the last row is searched for (nq=1, top 1)
until it is found. Two settings: timed flushes off (``--auto-flush-interval 0``: ``Flush`` writes every row) and
the default (1 s: timed flushes and merges run during the inserts). Reported: the median over repeats of the
``Flush`` call, of last acknowledgement -> found, and of the node's peak resident memory (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import load_sift_like
from benchmarks.index_node import CALL_TIMEOUT_S, NODE_ENV
from benchmarks.node_ab import node_class
from benchmarks.node_bench import batches, check_status, row_records
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess

NAME = "flush_bench"
FOUND_CAP_S = 60.0
SETTINGS = {"timed flushes off": ("--auto-flush-interval", "0"), "default (1 s)": ()}


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run(cls: Any, work: Path, extra: Sequence[str], base: np.ndarray, batch: int) -> tuple[float, float, float]:
    """(Flush seconds, last acknowledgement -> found seconds, peak RSS MB) of one fresh node."""
    node = cls(work, ("--omp-threads", "1", *extra), env=NODE_ENV).start()
    try:
        stub = node.stub()
        schema = milvus_pb2.CollectionSchema(collection_name=NAME, dimension=int(base.shape[1]),
                                             index_file_size=1024, metric_type=1)
        check_status(stub.CreateCollection(schema, timeout=CALL_TIMEOUT_S), "CreateCollection")
        requests = [milvus_pb2.InsertParam(collection_name=NAME, row_record_array=row_records(base[a:b]),
                                           row_id_array=list(range(a, b))) for a, b in batches(base.shape[0], batch)]
        for req in requests:
            check_status(stub.Insert(req, timeout=CALL_TIMEOUT_S).status, "Insert")
        acked = time.perf_counter()
        check_status(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[NAME]), timeout=CALL_TIMEOUT_S),
                     "Flush")
        flushed = time.perf_counter()
        last = base.shape[0] - 1
        probe = milvus_pb2.SearchParam(collection_name=NAME, topk=1, query_record_array=row_records(base[last:]))
        while True:
            reply = stub.Search(probe, timeout=CALL_TIMEOUT_S)
            check_status(reply.status, "Search")
            if list(reply.ids) == [last]:
                found = time.perf_counter()
                break
            if time.perf_counter() - acked > FOUND_CAP_S:
                raise RuntimeError(f"row {last} not found {FOUND_CAP_S:.0f} s after Flush")
        return flushed - acked, found - acked, peak_rss_mb(node.proc.pid)
    finally:
        node.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.flush_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="a checkout of the node version to compare with")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    base = load_sift_like(args.rows, 128, 10).base
    sides: list[tuple[str, Any]] = [("this checkout", NodeProcess)]
    if args.before is not None:
        sides.insert(0, (f"before ({args.before})", node_class(args.before.resolve())))
    print(f"== flush: {args.rows} x 128 rows in batches of {args.batch}, FLAT, one segment size for all; load "
          f"average {os.getloadavg()[0]:.2f} at start; {' '.join(sys.orig_argv)}", flush=True)
    for label, extra in SETTINGS.items():
        got: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in sides}
        for rep in range(args.repeats):
            order = sides if rep % 2 == 0 else sides[::-1]
            for name, cls in order:
                with tempfile.TemporaryDirectory(prefix="flush-bench-") as tmp:
                    got[name].append(one_run(cls, Path(tmp), extra, base, args.batch))
        print(f"-- {label}: medians of {args.repeats} (load average {os.getloadavg()[0]:.2f})", flush=True)
        for name, runs in got.items():
            flush_s, found_s, peak = (float(np.median([r[i] for r in runs])) for i in range(3))
            each = " / ".join(f"{r[0]:.3f}" for r in runs)
            print(f"  {name:<40} Flush {flush_s:6.3f} s (each: {each}), last ack -> found {found_s:6.3f} s, "
                  f"node peak RSS {peak:6.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
