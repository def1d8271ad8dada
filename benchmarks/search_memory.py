"""Peak memory of one wide search on a node, before and after the search path was made lean, against the
estimate admission charges for it.

    python -m benchmarks.search_memory [--segments 4] [--rows 20000] [--nq 500] [--topk 16384] [--threads 2]

Each figure comes from a fresh process (``VmHWM``, the peak resident set, read from /proc before and after
the search, so the growth is what the search itself cost). The data (``--segments`` flushed segments of
``--rows`` rows, dimension 8) is built in a temporary folder by each process, then every segment is loaded
before the measurement starts.

- ``before``: the search path as it was: every segment's full top-k gathered (``pool.map``) and merged in one
  go, row ids mapped with ``np.where``, the reply encoded with whole-array varint passes.
- ``after``: the node's search path (``node.reader.Reader.search`` and ``coordinator.wire.encode_topk``):
  at most one partial result per search thread, folded as they arrive, wide index calls a block of queries at
  a time, the reply built in one buffer.
- ``estimate``: ``coordinator.limits.search_cost`` for the same search, what admission charges.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.limits import SearchShape, search_cost
from coordinator.model import MetricType, Segment
from coordinator.topk import NO_ID, TopK, merge
from coordinator.wire import field, varint
from node import maintenance
from node.engine import Engine
from node.params import SearchParams
from node.reader import Reader
from node.settings import NodeSettings

DIM = 8
MB = 1 << 20


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _old_varints(values: np.ndarray) -> bytes:
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    sizes = np.ones(v.shape, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        sizes += rest != 0
        rest >>= np.uint64(7)
    starts = np.cumsum(sizes) - sizes
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    for j in range(int(sizes.max())):
        has = sizes > j
        chunk = ((v[has] >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8)
        more = (sizes[has] > j + 1).astype(np.uint8) << 7
        out[starts[has] + j] = chunk | more
    return out.tobytes()


def _old_encode(result: TopK) -> bytes:
    ids = _old_varints(result.ids.ravel())
    distances = np.ascontiguousarray(result.distances.ravel(), dtype="<f4").tobytes()
    return b"".join((b"\x10", varint(result.nq), field(3, ids), field(4, distances)))


def _old_search(reader: Reader, engine: Engine, coll: Any, segs: Sequence[Segment], queries: np.ndarray,
                topk: int) -> TopK:
    width = min(topk, sum(s.live_count for s in segs))

    def one(seg: Segment) -> TopK:
        item = reader.loaded(coll, seg)
        k = min(width, item.live.live)
        res = item.index.search(queries, k, item.live, SearchParams())
        offs = res.ids
        ids = np.where(offs >= 0, np.asarray(item.ids)[np.maximum(offs, 0)], NO_ID)
        return TopK(ids.astype(np.int64, copy=False), res.distances)

    parts = list(reader.pool.map(one, segs))
    return merge(parts, width, coll.metric.higher_is_better)


def measure(variant: str, segments: int, rows: int, nq: int, topk: int, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="search-memory-") as folder:
        settings = NodeSettings(storage_path=folder, auto_flush_interval=0, search_threads=threads)
        engine = Engine(settings)
        engine.open()
        pool = ThreadPoolExecutor(threads)
        try:
            engine.create_collection("m", DIM, MetricType.L2, 1024)
            coll = engine.collection("m")
            part = engine.snapshot().partitions_of(coll.id)[0]
            rng = np.random.default_rng(1)
            for _ in range(segments):
                engine.insert(coll, part, None, rng.random((rows, DIM), dtype=np.float32))
                maintenance.flush(engine, [coll.id])
            coll = engine.collection("m")
            reader = Reader(engine, pool)
            segs = reader.searchable(engine.snapshot(), coll, [part])
            queries = rng.random((nq, DIM), dtype=np.float32)
            reader.search(coll, segs, queries[:2], 3)  # load every segment first
            before = peak_rss()
            if variant == "before":
                reply = _old_encode(_old_search(reader, engine, coll, segs, queries, topk))
            else:
                reply = encode_after(reader, coll, segs, queries, topk)
            grown = peak_rss() - before
            width = min(topk, sum(s.live_count for s in segs))
            estimate = search_cost(SearchShape(nq, width, len(segs), threads, queries.nbytes))
            return {"variant": variant, "grown": grown, "reply": len(reply), "estimate": estimate,
                    "result": nq * width * 12, "segments": len(segs)}
        finally:
            pool.shutdown()
            engine.close()


def encode_after(reader: Reader, coll: Any, segs: Sequence[Segment], queries: np.ndarray, topk: int) -> bytes:
    from coordinator.wire import encode_topk

    return encode_topk(reader.search(coll, segs, queries, topk))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--segments", type=int, default=4)
    p.add_argument("--rows", type=int, default=20_000, help="rows per segment")
    p.add_argument("--nq", type=int, default=500)
    p.add_argument("--topk", type=int, default=16_384)
    p.add_argument("--threads", type=int, default=2, help="the node's search_threads")
    p.add_argument("--variant", choices=["before", "after"], help=argparse.SUPPRESS)  # one measurement
    args = p.parse_args(argv)
    if args.variant:
        print(json.dumps(measure(args.variant, args.segments, args.rows, args.nq, args.topk, args.threads)))
        return 0
    command = [sys.executable, "-m", "benchmarks.search_memory", "--segments", str(args.segments), "--rows",
               str(args.rows), "--nq", str(args.nq), "--topk", str(args.topk), "--threads", str(args.threads)]
    print(f"# {platform.node()} {platform.machine()} python {platform.python_version()}; "
          f"{shlex.join(['python', '-m', 'benchmarks.search_memory', *command[3:]])}")
    figures = {}
    for variant in ("before", "after"):
        out = subprocess.run([*command, "--variant", variant], check=True, capture_output=True, text=True)
        figures[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    after, before = figures["after"], figures["before"]
    assert after["reply"] == before["reply"], "the two paths must answer the same reply size"
    print(f"search nq {args.nq} x topk {args.topk} over {after['segments']} segments, {args.threads} threads: "
          f"result {after['result'] / MB:,.0f} MB, reply {after['reply'] / MB:,.0f} MB")
    print(f"{'path':<8} {'peak growth':>12} {'x result':>9}")
    for name, fig in (("before", before), ("after", after)):
        print(f"{name:<8} {fig['grown'] / MB:>9,.0f} MB {fig['grown'] / fig['result']:>9.1f}")
    est = after["estimate"]
    print(f"{'estimate':<8} {est / MB:>9,.0f} MB {est / after['result']:>9.1f}   (admission's charge; "
          f"{'covers' if est >= after['grown'] else 'UNDER'} the measured peak after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
