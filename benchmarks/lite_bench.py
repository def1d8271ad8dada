"""Mishards (one standalone node) side by side with Milvus Lite (embedded Milvus 2.x), in one run.

    python -m benchmarks.lite_bench [--rows 100000] [--queries 1000] [--kinds FLAT,IVF_FLAT,HNSW] [--repeats 1]
    python -m benchmarks.lite_bench --quick      # 20000 rows, 200 queries: a few minutes

Same data (``benchmarks.datasets``, SIFT-like, d = 128, L2), same machine, one client thread, and the
two systems never loaded at once: per index kind and repeat each gets a fresh store and runs alone,
and the two alternate which goes first. Mishards is ``python -m node --omp-threads 1`` driven with the
project's raw gRPC stubs; Milvus Lite (PyPI ``milvus-lite`` 2.5.1 with pymilvus 2.5, in its own virtual
environment, see ``benchmarks.lite_env``) is driven with ``MilvusClient`` from a worker process. Both
have ``OMP_NUM_THREADS=1``.

Per kind: insert rate (batches of ``--batch`` rows, a client that builds each request and waits for the
acknowledgement), time from the last acknowledgement until a search finds the last row (Mishards:
``Flush``; Milvus Lite: searches at Strong, Bounded and Eventually consistency taking turns, on a
collection loaded before the inserts), index build on the flushed rows, load, nq=1 latency p50 / p99,
nq=100 QPS and recall@10 against the exact ground truth. A table shows both sides and Mishards'
advantage per figure (medians over ``--repeats``). Every loop is bounded; processes stop by their id.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import Dataset, load_sift_like
from benchmarks.index_node import NODE_ARGS, NODE_ENV
from benchmarks.index_specs import WARMUP_BATCHED, WARMUP_SINGLE
from benchmarks.lite_env import DEFAULT_VENV, REQUIREMENTS, ensure_venv
from benchmarks.lite_mishards import run_mishards
from benchmarks.lite_plan import (
    BATCH_NQ,
    LITE_LEVELS,
    LITE_SEARCH_LEVEL,
    PLANS,
    ClientFigures,
    IndexPlan,
    K,
    PointFigures,
    Refusal,
    Row,
    RunFigures,
    fmt_advantage,
    fmt_value,
    median,
    parse_kinds,
    table_rows,
)
from benchmarks.lite_side import LiteRun, SearchInputs, lite_versions, run_lite
from benchmarks.node_bench import header_lines as node_header_lines

QUICK = {"rows": 20_000, "queries": 200, "repeats": 1}
LEVEL_QUERIES = 200  # nq=1 queries per consistency level in the level comparison
LITE_ENV = dict(NODE_ENV)  # the same thread settings as the node; the embedded server inherits them


@dataclass
class KindRuns:
    plan: IndexPlan
    ours: list[RunFigures] = field(default_factory=list)
    theirs: list[RunFigures] = field(default_factory=list)
    also: list[ClientFigures] = field(default_factory=list)
    refused: str = ""
    level_p50_ms: list[dict[str, float]] = field(default_factory=list)
    lite_server: list[dict[str, Any]] = field(default_factory=list)
    lite_index: dict[str, str] = field(default_factory=dict)


# -- report ----------------------------------------------------------------------------------------


def header(args: argparse.Namespace, ds: Dataset, root: Path, versions: dict[str, Any]) -> list[str]:
    wanted = ("command", "machine", "software")
    common = [line.replace("software:", "ours    :", 1) for line in node_header_lines(args, ds, root)
              if line.startswith(wanted)]
    server = versions.get("server") or [{}]
    return [
        "== Mishards vs Milvus Lite ==",
        *common,
        f"lite    : python {versions.get('python')}, milvus-lite {versions.get('milvus_lite')}, pymilvus "
        f"{versions.get('pymilvus')}, {versions.get('protobuf')}, numpy {versions.get('numpy')} "
        f"(own environment {args.venv}: {', '.join(REQUIREMENTS)})",
        f"mishards: {' '.join(f'{k}={v}' for k, v in NODE_ENV.items())} python -m node {' '.join(NODE_ARGS)}, "
        "loopback, index_file_size 1024 MB; client: the project's raw gRPC stubs (milvus_pb2), one thread, "
        "each InsertParam built from Python lists inside the timed loop"
        + ("; also pymilvus 1.1.2 in a subprocess with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, as shipped "
           "users run it (its insert goes to a second collection, dropped after; it searches the same one)"
           if args.pymilvus1 else ""),
        f"milvus  : {' '.join(f'{k}={v}' for k, v in LITE_ENV.items())} in the worker and its embedded server "
        f"({server[0].get('name', '?')}, {server[0].get('threads', '?')} threads at open); client: MilvusClient "
        f"on a local file, one thread, rows as dicts of Python lists made before the clock; searches at "
        f"consistency {LITE_SEARCH_LEVEL} (its cheapest), collection created with its index and loaded",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32, L2, {args.queries} held-out queries, k={K}, "
        f"insert batches of {args.batch}; warm-up {WARMUP_SINGLE} nq=1 + {WARMUP_BATCHED} nq={BATCH_NQ} searches "
        f"per point on both sides; {args.repeats} repeat(s), a fresh store each, the systems alternating who "
        "goes first and never running at once; medians reported",
        "kinds   : " + "; ".join(f"{p.name} {dict(p.build)} searched at {', '.join(pt.label for pt in p.points)}"
                                 for p in (PLANS[k] for k in args.kinds)) + " (same parameters on both sides)",
    ]


TABLE_ROW = "  {:<40} {:>12} {:>12} {:>10} {:>10} {:>14}"


def kind_lines(runs: KindRuns) -> list[str]:
    plan = runs.plan
    lines = [f"-- {plan.name} {dict(plan.build)}: Mishards {len(runs.ours)} run(s), Milvus Lite "
             f"{len(runs.theirs)} run(s)"]
    if runs.refused:
        lines.append(f"  Milvus Lite refused this index: {runs.refused}")
    lines.append(TABLE_ROW.format("figure", "Mishards", "Milvus Lite", "unit", "Mishards", "Mishards via"))
    lines.append(TABLE_ROW.format("", "raw stubs", "MilvusClient", "", "advantage", "pymilvus 1.1.2"))
    for row in table_rows(plan, runs.ours, runs.theirs, runs.also):
        also = fmt_value(row.also, row.unit) if row.also is not None else ""
        lines.append(TABLE_ROW.format(row.figure, fmt_value(row.ours, row.unit), fmt_value(row.theirs, row.unit),
                                      row.unit or "(diff)", row.comparison, also))
    acks = [r.ack_rate for r in runs.ours if r.ack_rate is not None]
    if acks:
        lines.append(f"  (Mishards calls alone, requests built before: {float(np.median(acks)):,.0f} vectors/s; "
                     "MilvusClient builds its request inside insert(), so Milvus Lite has no such figure)")
    cpu = [f"{system} {median([c[0] for c in got]):.2f} / {median([c[1] for c in got]):.2f}"
           for system, runs_of in (("Mishards", runs.ours), ("Milvus Lite", runs.theirs))
           if (got := [r.insert_cpu_s for r in runs_of if r.insert_cpu_s is not None])]
    if cpu:
        lines.append("  insert CPU seconds, client / server (where the insert time goes): " + ", ".join(cpu))
    flushes = [r.flush_s for r in runs.theirs]
    if flushes:
        lines.append(f"  (Milvus Lite flush() after the rows were searchable: {float(np.median(flushes)):.3f} s; "
                     f"Mishards Flush call: {float(np.median([r.flush_s for r in runs.ours])):.3f} s)")
    if runs.level_p50_ms:
        first = plan.points[0].label
        per = {lv: float(np.median([d[lv] for d in runs.level_p50_ms])) for lv in LITE_LEVELS}
        lines.append(f"  Milvus Lite nq=1 p50 by consistency level ({first}, levels taking turns): "
                     + ", ".join(f"{lv} {v:.2f} ms" for lv, v in per.items()))
    if runs.lite_server:
        s = runs.lite_server[0]
        lines.append(f"  Milvus Lite server after the build: {s.get('name')} pid {s.get('pid')}, "
                     f"{s.get('threads')} threads, {s.get('rss_mb', 0):.0f} MB resident; its index: "
                     + ", ".join(f"{k} {v}" for k, v in runs.lite_index.items() if not k.endswith("rows")))
    return lines


SUMMARY_FIGURES = ("insert, client builds + sends", "searchable, each side's fastest", "index build on flushed rows")


def summary_lines(all_runs: Sequence[KindRuns], ds: Dataset) -> list[str]:
    """One line per kind and point: the headline figures, Mishards / Milvus Lite."""
    lines = [f"-- summary ({ds.rows} x {ds.dim}, k={K}; Mishards | Milvus Lite | Mishards' advantage)"]
    for runs in all_runs:
        rows = {r.figure: r for r in table_rows(runs.plan, runs.ours, runs.theirs)}

        def cell(row: Row) -> str:
            return f"{fmt_value(row.ours, row.unit)} | {fmt_value(row.theirs, row.unit)} | {row.comparison}"

        head = "; ".join(f"{name.split(',')[0]} {cell(rows[name])}" for name in SUMMARY_FIGURES)
        lines.append(f"  {runs.plan.name:<8} {head}" + (" (Milvus Lite refused the index)" if runs.refused else ""))
        for point in runs.plan.points:
            tag = "" if point.label == "exact" else f" {point.label}"
            parts = [f"nq=1 p50 {cell(rows[f'nq=1 p50{tag}'])} ms",
                     f"nq={BATCH_NQ} {cell(rows[f'nq={BATCH_NQ} QPS{tag}'])} QPS",
                     f"recall {cell(rows[f'recall@{K}{tag}'])}"]
            lines.append(f"  {'':<8} {point.label:<10} " + "; ".join(parts))
    return lines


def run_line(system: str, kind: str, repeat: int, fig: RunFigures | Refusal, took: float) -> str:
    if isinstance(fig, Refusal):
        return f"  [{kind} #{repeat + 1}] {system}: refused ({took:.0f} s)"
    searchable = ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in fig.searchable_s.items())
    return (f"  [{kind} #{repeat + 1}] {system}: searchable s: {searchable}; build {fig.build_s:.2f} s, "
            f"load {fig.load_s:.2f} s; {point_text(fig.insert_rate, fig.points)} ({took:.0f} s)")


def point_text(insert_rate: float, points: Mapping[str, PointFigures]) -> str:
    return f"insert {insert_rate:,.0f} vectors/s; " + ", ".join(
        f"{label} p50 {p.p50_ms:.2f} ms / {p.batched_qps:,.0f} QPS / recall {p.recall:.3f}"
        for label, p in points.items())


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lite_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=None, help="rows inserted (default 100000; --quick 20000)")
    p.add_argument("--queries", type=int, default=None, help="held-out queries (default 1000; --quick 200)")
    p.add_argument("--kinds", default=",".join(PLANS), help=f"comma-separated (default {','.join(PLANS)})")
    p.add_argument("--repeats", type=int, default=None, help="fresh loads per system and kind (default 1)")
    p.add_argument("--batch", type=int, default=10_000, help="rows per insert call (default 10000)")
    p.add_argument("--quick", action="store_true", help="20000 rows, 200 queries, 1 repeat")
    p.add_argument("--no-pymilvus1", dest="pymilvus1", action="store_false",
                   help="skip the Mishards runs through pymilvus 1.1.2 (pure-Python protobuf)")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Milvus Lite's environment (made if missing)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else {"rows": 100_000, "queries": 1_000, "repeats": 1}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("rows", "queries", "repeats", "batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    try:
        args.kinds = parse_kinds(args.kinds)
    except ValueError as exc:
        p.error(f"--kinds: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    python = ensure_venv(args.venv)
    ds = load_sift_like(args.rows, 128, args.queries)
    with tempfile.TemporaryDirectory(prefix="lite-bench-") as tmp:
        root = Path(tmp)
        data = SearchInputs(base=root / "base.npy", queries=root / "queries.npy", rows=ds.rows,
                            nq=ds.queries.shape[0], batch=args.batch, k=K, warmup_single=WARMUP_SINGLE,
                            warmup_batched=WARMUP_BATCHED)
        np.save(data.base, ds.base)
        np.save(data.queries, ds.queries)
        versions = lite_versions(python, root / "versions", LITE_ENV)
        print("\n".join(header(args, ds, root, versions)), flush=True)
        all_runs: list[KindRuns] = []
        for n, kind in enumerate(args.kinds):
            runs = KindRuns(PLANS[kind])
            all_runs.append(runs)
            for r in range(args.repeats):
                lite_first = (n + r) % 2 == 0
                for system in ("lite", "ours") if lite_first else ("ours", "lite"):
                    t0 = time.perf_counter()
                    where = root / f"{kind.lower()}-{r}-{system}"
                    fig: RunFigures | Refusal
                    if system == "ours":
                        mine = run_mishards(where, runs.plan, data, ds.gt_ids, pymilvus1=args.pymilvus1)
                        runs.ours.append(mine.figures)
                        if mine.pymilvus1 is not None:
                            runs.also.append(mine.pymilvus1)
                            client = mine.pymilvus1_versions
                            print(f"  [{kind} #{r + 1}] Mishards via pymilvus {client.get('pymilvus')} "
                                  f"({client.get('protobuf')}): "
                                  + point_text(mine.pymilvus1.insert_rate, mine.pymilvus1.points), flush=True)
                        fig = mine.figures
                    else:
                        lite: LiteRun = run_lite(python, where, LITE_ENV, runs.plan, data, ds.gt_ids, LEVEL_QUERIES)
                        fig = lite.figures
                        if isinstance(fig, Refusal):
                            runs.refused = fig.reason
                        else:
                            runs.theirs.append(fig)
                            runs.level_p50_ms.append(lite.level_p50_ms)
                            runs.lite_server, runs.lite_index = lite.server, lite.index_described
                    took = time.perf_counter() - t0
                    print(run_line("Mishards" if system == "ours" else "Milvus Lite", kind, r, fig, took), flush=True)
            print("\n".join(kind_lines(runs)), flush=True)
        print("\n".join(summary_lines(all_runs, ds)))
    print(f"-- run time {time.perf_counter() - started:.0f} s; Mishards' advantage = Milvus Lite time / Mishards "
          f"time, or Mishards rate / Milvus Lite rate ({fmt_advantage(2.0)} = twice as good); load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
