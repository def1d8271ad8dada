"""A cluster plan for a large collection, derived from the 1M-row figures :mod:`benchmarks.scale_bench` saved.

    python -m benchmarks.capacity_plan [--measured-rows 1000000] [--rows 100000000] [--dim 128] \
        [--replication 2] [--reader-memory-gib 64] [--reader-cores 8] [--workers 4] [--kinds IVF_SQ8,HNSW]

For every measured kind it prints the arithmetic, line by line, that docs/CAPACITY.md quotes: segments at
``index_file_size``, memory per vector on a search node (private and mapped), read nodes and memory each,
the writer, storage, build time and QPS. The scaling rules from a 1M-row segment to the plan's segment size
are stated in :func:`growth`. Where :mod:`benchmarks.scale_memory` saved figures (``--memory-results``), the
writer's build memory is its sampled peak and each reader worker beyond the first costs what a second worker
was measured to add; otherwise the build memory is the build node's VmHWM and an added worker is inferred to cost
the private part again. Pure arithmetic; the only I/O is reading the result files.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.scale_memory_values import BuildMemory, ReaderMemory, extra_worker_per_vector, read_all
from benchmarks.scale_results import RESULTS_DIR, InsertFigures, KindFigures, PointFigures, read_results

GIB = 1 << 30
MIB = 1 << 20
ID_BYTES = 8
DEFAULT_RESULTS = RESULTS_DIR
RECALL_TARGET = 0.9


@dataclass(frozen=True, slots=True)
class Target:
    rows: int = 100_000_000
    dim: int = 128
    index_file_size_mb: int = 1024
    replication: int = 2
    reader_memory_gib: float = 64.0  # memory limit of one read pod
    reader_cores: int = 8
    headroom: float = 0.25  # share of a pod's limit kept free (search working memory, fragmentation)
    build_threads: int = 2  # faiss threads per build on the writer (as measured)
    builds_at_once: int = 2  # index_build_threads on the writer
    insert_buffer_gib: float = 2.0  # insert_buffer_size on the writer
    workers: int = 1  # worker processes per reader (the chart's readers.workers)


@dataclass(frozen=True, slots=True)
class Measured:
    """What :mod:`benchmarks.scale_memory` measured for one kind; ``None``: not measured (the plan infers it)."""

    build_per_row: float | None = None  # the build node's peak over its memory before CreateIndex, per row
    build_rows: int = 0
    worker_per_vector: float | None = None  # PSS a second worker of a read node adds, per vector served
    worker_fixed: int = 0  # a fresh worker's own PSS
    parent: int = 0  # PSS of the parent of a multi-worker node
    worker_rows: int = 0  # rows of the segment the worker figures were measured on


def measured_memory(builds: Sequence[BuildMemory], readers: Sequence[ReaderMemory], rows: int) -> dict[str, Measured]:
    """Per kind: the build measured at ``rows`` (else at the most rows), and the worker cost from the nodes with
    one and two workers at ``rows`` (else at the most rows measured with both)."""
    out: dict[str, Measured] = {}
    for b in sorted(builds, key=lambda b: (b.rows == rows, b.rows)):
        out[b.kind] = Measured(b.peak_per_row, b.rows)
    nodes = {(r.kind, r.rows, r.workers): r for r in readers}
    pairs = sorted(((kind, n) for kind, n, w in nodes if w == 2 and (kind, n, 1) in nodes),
                   key=lambda p: (p[1] == rows, p[1]))
    for kind, n in pairs:
        one, two = nodes[(kind, n, 1)], nodes[(kind, n, 2)]
        per_vec, fresh = extra_worker_per_vector(one, two)
        prior = out.get(kind, Measured())
        out[kind] = Measured(prior.build_per_row, prior.build_rows, per_vec, fresh,
                             two.parent.pss if two.parent else 0, n)
    return out


def with_process_costs(measured: Mapping[str, Measured], kinds: Iterable[str]) -> dict[str, Measured]:
    """Every kind in ``kinds``, those without a measured worker pair taking the largest measured idle worker and
    parent (a process' own memory does not depend on the index it serves; the per-vector part stays inferred)."""
    pairs = [m for m in measured.values() if m.worker_per_vector is not None]
    fixed = max((m.worker_fixed for m in pairs), default=0)
    parent = max((m.parent for m in pairs), default=0)
    out = {}
    for kind in kinds:
        m = measured.get(kind, Measured())
        out[kind] = m if m.worker_per_vector is not None else replace(m, worker_fixed=fixed, parent=parent)
    return out


@dataclass(frozen=True, slots=True)
class Growth:
    """Cost of one S-row segment relative to the measured M-row one, per vector (build) and per query (search)."""

    build_per_row: float
    search: float
    rule: str


def growth(kind: str, measured_rows: int, segment_rows: int) -> Growth:
    """IVF: nlist = 4 * sqrt(rows), so the build cost per row (training and assignment) and the per-query cost
    (nprobe lists of rows / nlist each, plus nlist centroids) grow as sqrt(rows). Graphs and trees: log(rows).
    Exact search: rows."""
    ratio = segment_rows / measured_rows
    if kind in ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "BIN_IVF_FLAT"):
        f = math.sqrt(ratio)
        return Growth(f, f, f"sqrt({segment_rows:,}/{measured_rows:,}) = {f:.2f}")
    if kind in ("HNSW", "ANNOY"):
        f = math.log(segment_rows) / math.log(measured_rows)
        return Growth(f, f, f"ln({segment_rows:,})/ln({measured_rows:,}) = {f:.2f}")
    return Growth(0.0, ratio, f"exact: rows ratio {ratio:.2f}, nothing to build")


def segment_rows(dim: int, index_file_size_mb: int, binary: bool = False) -> int:
    """Rows of a full segment: ``index_file_size`` of raw vectors (the node's ``max_rows``)."""
    row_bytes = dim // 8 if binary else dim * 4
    return index_file_size_mb * MIB // row_bytes


def operating_point(points: Sequence[PointFigures]) -> PointFigures:
    """The cheapest measured point with recall@10 >= 0.9, else the most accurate one."""
    good = [p for p in points if p.recall >= RECALL_TARGET]
    return max(good, key=lambda p: p.qps100) if good else max(points, key=lambda p: p.recall)


@dataclass(frozen=True, slots=True)
class Plan:
    kind: str
    point: PointFigures
    private_b: float  # bytes per vector on a search node
    worker_b: float  # bytes per vector each reader worker beyond the first adds
    worker_source: str  # "measured" or "inferred"
    mapped_b: float  # bytes per vector of mapped files, all resident
    segment_rows: int
    segments: int
    readers: int
    reader_gib: float  # memory one reader holds
    writer_gib: float
    storage_gib: float
    build_hours: float
    qps_batched: float  # cluster QPS, queries sent 100 at a time
    qps_single: float  # cluster QPS, one query per call, every reader core busy
    lines: tuple[str, ...]


def plan(res: KindFigures, ins: InsertFigures | None, t: Target, mem: Measured = Measured()) -> Plan:
    n, m = t.rows, res.rows
    lines: list[str] = []
    say = lines.append
    binary = res.data == "binary"
    s_rows = segment_rows(t.dim, t.index_file_size_mb, binary)
    segs = math.ceil(n / s_rows)
    say(f"segment rows S = {t.index_file_size_mb} MiB / {t.dim // 8 if binary else t.dim * 4} B = {s_rows:,}; "
        f"segments = ceil({n:,} / {s_rows:,}) = {segs}")
    dim_scale = t.dim / res.dim
    grown = res.loaded
    private = grown.anon / m * dim_scale
    measured_file = grown.file / m * dim_scale
    index_file = res.index_bytes / m * dim_scale
    mapped = max(measured_file, index_file + ID_BYTES)
    say(f"measured at {m:,} rows: private {grown.anon / m:.0f} B/vector, mapped {grown.file / m:.0f} B/vector resident "
        f"after the searches, index file {res.index_bytes / m:.0f} B/vector"
        + (f"; scaled to d={t.dim} by {dim_scale:.2f}" if dim_scale != 1 else ""))
    per_vec = private + mapped
    say(f"plan per vector: private {private:.0f} + mapped max({measured_file:.0f}, index {index_file:.0f} + ids "
        f"{ID_BYTES}) = {per_vec:.0f} B")
    measured_worker = mem.worker_per_vector is not None
    worker_b = (mem.worker_per_vector or 0.0) * dim_scale if measured_worker else private
    extra = t.workers - 1
    worker_idle = mem.worker_fixed or res.base.rss  # an idle worker's own memory (else an idle node's)
    parent_idle = mem.parent or res.base.rss
    fixed = res.base.rss + (extra * worker_idle + parent_idle if extra else 0)
    if extra:
        say(f"{t.workers} workers per reader: each beyond the first adds {worker_b:.0f} B/vector ("
            + (f"measured: PSS a second worker added at {mem.worker_rows:,} rows)" if measured_worker
               else "inferred: the private part again)")
            + f" and {worker_idle / MIB:.0f} MiB idle; the parent {parent_idle / MIB:.0f} MiB")
    total = t.replication * n * (per_vec + extra * worker_b)
    usable = t.reader_memory_gib * GIB * (1 - t.headroom) - fixed
    readers = max(t.replication, math.ceil(total / usable))
    reader_bytes = total / readers + fixed
    per_node = f"{per_vec:.0f}" + (f" + {extra} x {worker_b:.0f}" if extra else "")
    say(f"all replicas: {t.replication} x {n:,} x ({per_node}) B = {total / GIB:,.1f} GiB; usable per reader = "
        f"{t.reader_memory_gib:g} GiB x {1 - t.headroom:.2f} - {fixed / MIB:.0f} MiB (idle processes) = "
        f"{usable / GIB:.1f} GiB -> readers = ceil({total / GIB:,.1f} / {usable / GIB:.1f}) = {readers}, "
        f"each holding {reader_bytes / GIB:.1f} GiB ({t.replication * segs / readers:.1f} segments)")
    row_bytes = (t.dim // 8 if binary else t.dim * 4) + ID_BYTES
    # The writer's peak while it took the measured rows in and flushed them, per byte of rows (ids included).
    insert_peak = (ins.writer.hwm - int(ins.notes.get("writer_start", res.base.rss))) / (ins.rows * (
        (ins.dim // 8 if binary else ins.dim * 4) + ID_BYTES)) if ins and ins.rows else 2.0
    buffer = t.insert_buffer_gib * GIB * insert_peak
    if mem.build_per_row is not None and (mem.build_rows == m or res.builder is None):  # sampled at these rows
        build_row = mem.build_per_row
        build_seen = f"measured: sampled peak at {mem.build_rows:,} rows"
    elif res.index_bytes == 0:  # FLAT, BIN_FLAT: CreateIndex builds nothing (its node's peak is not a build's)
        build_row, build_seen = 0.0, "nothing built"
    elif res.builder:
        build_row = (res.builder.hwm - res.base.rss) / m  # a fresh node's peak over an idle one
        build_seen = "measured: VmHWM over an idle node"
    else:
        build_row, build_seen = 0.0, "not measured"
    build_mem = max(0.0, build_row) * s_rows * t.builds_at_once * dim_scale
    writer = (res.base.rss + buffer + build_mem) / (1 - t.headroom)
    say(f"writer: idle {res.base.rss / MIB:.0f} MiB + insert_buffer_size {t.insert_buffer_gib:g} GiB x "
        f"{insert_peak:.2f} (measured peak per buffered byte) = {buffer / GIB:.1f} GiB + builds {t.builds_at_once} x "
        f"{max(0.0, build_row):.0f} B/row ({build_seen}) x {s_rows:,} = "
        f"{build_mem / GIB:.1f} GiB, / {1 - t.headroom:.2f} "
        f"headroom = {writer / GIB:.1f} GiB")
    raw = n * row_bytes
    wal = ins.storage.get("wal", 0) / ins.rows * (t.dim / ins.dim) * s_rows if ins and ins.rows else 0.0
    merge = 2 * t.index_file_size_mb * MIB
    storage = (raw + n * index_file + wal + merge) * 1.3
    wal_seen = f"{ins.storage.get('wal', 0) / MIB:.0f} MiB after {ins.rows:,} rows" if ins else "not measured"
    say(f"storage: raw {raw / GIB:,.1f} GiB + index {n * index_file / GIB:,.1f} GiB + WAL {wal / GIB:.1f} GiB (one "
        f"segment's worth; measured {wal_seen}) + merges 2 x {t.index_file_size_mb} MiB, x 1.3 = "
        f"{storage / GIB:,.0f} GiB")
    g = growth(res.kind, m, s_rows)
    # Distance computations, hence build and search time, grow with the dimension as well.
    cost = dim_scale
    dims = f" x d {t.dim}/{res.dim}" if dim_scale != 1 else ""
    per_seg_build = res.create_index_s / m * s_rows * g.build_per_row * cost
    hours = per_seg_build * segs / t.builds_at_once / 3600
    say(f"build: {res.create_index_s:.1f} s per {m:,} rows ({t.build_threads} threads) x {s_rows / m:.2f} x "
        f"{g.rule}{dims} = {per_seg_build:.0f} s per segment; x {segs} / {t.builds_at_once} at once = {hours:.1f} h")
    pt = operating_point(res.points)
    per_query = g.search * cost / pt.qps100 * segs  # thread-seconds per query over every segment
    qps = readers * t.reader_cores / per_query
    single = 1 / (g.search * cost / pt.qps1 * segs)
    say(f"search at {pt.label} (recall@10 {pt.recall:.3f} at {m:,} rows): {1e3 / pt.qps100:.3f} ms of one thread "
        f"per query per segment (nq=100), x {g.search:.2f}{dims} x {segs} segments = {per_query * 1e3:.1f} ms per "
        f"query; {readers} readers x {t.reader_cores} cores -> {qps:,.0f} QPS batched (about {qps / readers:,.0f} "
        "per reader)")
    say(f"nq=1: {1e3 / pt.qps1:.2f} ms per call per segment (gRPC floor included) x {g.search:.2f}{dims} x {segs} = "
        f"{1e3 / single:.0f} thread-ms per query -> {single * readers * t.reader_cores:,.0f} QPS with every core busy")
    source = "measured" if measured_worker else "inferred"
    return Plan(res.kind, pt, private, worker_b, source, mapped, s_rows, segs, readers, reader_bytes / GIB,
                writer / GIB, storage / GIB, hours, qps, single * readers * t.reader_cores, tuple(lines))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.capacity_plan", description=__doc__.split("\n\n")[0])
    d = Target()
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--measured-rows", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=d.rows)
    p.add_argument("--dim", type=int, default=d.dim)
    p.add_argument("--index-file-size", type=int, default=d.index_file_size_mb, help="MB")
    p.add_argument("--replication", type=int, default=d.replication)
    p.add_argument("--reader-memory-gib", type=float, default=d.reader_memory_gib)
    p.add_argument("--reader-cores", type=int, default=d.reader_cores)
    p.add_argument("--workers", type=int, default=4, help="worker processes per reader (values-100m.yaml: 4)")
    p.add_argument("--memory-results", type=Path, default=DEFAULT_RESULTS / "memory",
                   help="benchmarks.scale_memory's results (build and worker memory)")
    p.add_argument("--kinds", default="", help="comma-separated (default: every measured float kind)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    inserts, kinds = read_results(args.results, args.measured_rows)
    t = Target(rows=args.rows, dim=args.dim, index_file_size_mb=args.index_file_size,
               replication=args.replication, reader_memory_gib=args.reader_memory_gib, reader_cores=args.reader_cores,
               workers=args.workers)
    measured = with_process_costs(measured_memory(*read_all(args.memory_results), args.measured_rows),
                                  [k.kind for k in kinds])
    wanted = {k.strip().upper() for k in args.kinds.split(",") if k.strip()}
    by_data = {i.data: i for i in inserts}
    plans = []
    for res in kinds:
        if (wanted and res.kind not in wanted) or (not wanted and res.data != "float"):
            continue
        p = plan(res, by_data.get(res.data), t, measured.get(res.kind, Measured()))
        plans.append(p)
        print(f"-- {res.kind} {dict(res.build)}: {t.rows:,} x {t.dim}, replication {t.replication}, "
              f"readers of {t.reader_memory_gib:g} GiB / {t.reader_cores} cores / {t.workers} workers")
        print("\n".join(f"  {line}" for line in p.lines))
    print("\n".join(summary_table(plans)))
    return 0


def summary_table(plans: Sequence[Plan]) -> list[str]:
    """The plans as one Markdown table."""
    lines = ["| index | point (recall@10 at 1M) | B/vector private + mapped | readers | GiB per reader | "
             "writer GiB | storage GiB | build h | QPS nq=100 | QPS nq=1 | B/vector per added worker |",
             "|---" * 11 + "|"]
    for p in plans:
        lines.append(f"| {p.kind} | {p.point.label} ({p.point.recall:.3f}) | {p.private_b:.0f} + {p.mapped_b:.0f} | "
                     f"{p.readers} | {p.reader_gib:.1f} | {p.writer_gib:.1f} | {p.storage_gib:,.0f} | "
                     f"{p.build_hours:.1f} | {p.qps_batched:,.0f} | {p.qps_single:,.0f} | "
                     f"{p.worker_b:.0f} ({p.worker_source}) |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
