"""The index benchmark's text: the header (machine, versions, command), the lines of each kind, the summary
table and the PASS / MISS lines against the targets."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import grpc
import numpy as np

from benchmarks.datasets import Dataset, recall_at
from benchmarks.index_node import INDEX_FILE_SIZE_MB, NODE_ARGS, NODE_ENV
from benchmarks.index_results import KindResult
from benchmarks.index_specs import BATCH_NQ, K, Spec
from benchmarks.node_bench_common import filesystem, fmt_rate, machine_line, median, percentiles, protobuf_text, verdict

MB_BYTES = 1e6
TARGET_KINDS = ("IVF_FLAT", "HNSW")
TARGET_ADDED_P50_MS = 0.5  # nq=1 p50 through gRPC minus in-process
TARGET_BATCHED_RATIO = 0.9  # gRPC nq=100 QPS / in-process QPS
TARGET_BEYOND_FLOOR_MS = 0.2  # nq=1 added p50 minus the HasCollection p50 (the node's own share)


def header_lines(args: argparse.Namespace, ds: Dataset, storage: Path, kinds: Sequence[Spec]) -> list[str]:
    try:
        annoy_version = importlib.metadata.version("annoy")
    except importlib.metadata.PackageNotFoundError:
        annoy_version = "?"
    lines = [
        "== Mishards index benchmark ==",
        f"command : {shlex.join(sys.orig_argv)}   (cwd {os.getcwd()})",
        machine_line(),
        f"software: python {platform.python_version()}, faiss {faiss.__version__}, annoy {annoy_version}, "
        f"grpcio {grpc.__version__}, {protobuf_text()}, numpy {np.__version__}",
        f"node    : {' '.join(f'{k}={v}' for k, v in NODE_ENV.items())} python -m node {' '.join(NODE_ARGS)} "
        f"(other settings default: 1 index build thread), loopback, storage in {storage} ({filesystem(storage)}); "
        f"this process: faiss threads {faiss.omp_get_max_threads()}, "
        f"distance_compute_blas_threshold {faiss.cvar.distance_compute_blas_threshold} (node rule)",
        f"data    : {ds.name}, {ds.rows} x {ds.dim} float32, L2, {ds.queries.shape[0]} held-out queries, k={K}; "
        f"a fresh collection per kind (index_file_size {INDEX_FILE_SIZE_MB} MB: one segment); "
        f"{args.repeats} repeats, medians reported",
        "kinds   : " + "; ".join(f"{s.name} {json.dumps(s.build, separators=(',', ':'))} searched at "
                                 f"{', '.join(p.label for p in s.points)}" for s in kinds),
    ]
    return lines


def compact_json(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), separators=(",", ":"))


def agreement(a: np.ndarray | None, b: np.ndarray | None) -> str:
    if a is None or b is None:
        return "n/a (loop stopped at its time cap)"
    identical = int(np.all(a == b, axis=1).sum())
    return f"{recall_at(a, b, K):.1%} of ids shared, {identical}/{a.shape[0]} result lists identical"


POINT_ROW = "  {:<18} {:>6} {:>7} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} | {:>6} {:>6} | {:>7} {:>8} {:>5}"
SUMMARY_ROW = "  {:<9} {:>7} {:>7} {:>7} | {:<17} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7} {:>5}"


def report_kind(res: KindResult, ds: Dataset) -> list[str]:
    spec = res.spec
    raw_mb = ds.rows * ds.dim * 4 / MB_BYTES
    files = ", ".join(f"{n} {size / MB_BYTES:.1f} MB" for n, size in res.index_files) or "none found"
    node_build = "" if res.node_build_s is None else f"; the node logged {res.node_build_s:.2f} s for it"
    lines = [
        f"-- {spec.label} {compact_json(spec.build)}: node holds {res.rows} rows in {res.segments} segment(s)",
        f"  build          : CreateIndex through gRPC {res.create_index_s:8.2f} s (blocks until built{node_build})",
        f"                   in-process build_index {res.local_build_s:8.2f} s   "
        f"(gRPC / in-process {res.create_index_s / res.local_build_s:.2f}x); effective {compact_json(res.effective)}",
        f"  index on disk  : {files} (raw vectors {raw_mb:.1f} MB, stored separately); "
        f"in-process save {res.local_file_bytes / MB_BYTES:.1f} MB",
        f"  {'':18} {'recall@10':^14} | {'nq=1 gRPC ms':^20} | {'nq=1 in-process ms':^20} | {'added ms':^13} | "
        f"{'nq=100 QPS':^22}",
        POINT_ROW.format("point", "gRPC", "in-proc", "p50", "p95", "p99", "p50", "p95", "p99", "p50", "-floor",
                         "gRPC", "in-proc", "ratio"),
    ]
    for pr in res.points:
        rg, rl = pr.recalls(ds.gt_ids)
        g = pr.latency("grpc")
        loc = pr.latency("local")
        lines.append(POINT_ROW.format(
            pr.point.label, f"{rg:.3f}", f"{rl:.3f}", *(f"{x:.3f}" for x in g), *(f"{x:.3f}" for x in loc),
            f"{pr.added_p50:+.3f}", f"{pr.beyond_floor_p50:+.3f}", fmt_rate(pr.qps("grpc_batched_qps")),
            fmt_rate(pr.qps("local_batched_qps")), f"{pr.ratio:.2f}",
        ))
        n_single = min(r.grpc_lat.shape[0] for r in pr.rounds)
        capped = "" if n_single == ds.queries.shape[0] else f"; nq=1 loops stopped after {n_single} calls (time cap)"
        lines.append(
            f"      repeats: added p50 {' / '.join(f'{a:+.3f}' for a in pr.added_p50s)} ms, "
            f"nq=100 ratio {' / '.join(f'{x:.2f}' for x in pr.ratios)}; nq=1 QPS gRPC "
            f"{fmt_rate(pr.qps('grpc_serial_qps'))}, in-process {fmt_rate(pr.qps('local_serial_qps'))}{capped}"
        )
        lines.append(f"      gRPC vs in-process: nq=100 {agreement(pr.grpc_batched_ids, pr.local_batched_ids)}; "
                     f"nq=1 {agreement(pr.grpc_single_ids, pr.local_single_ids)}")
    p50, p95, p99 = ping_percentiles(res)
    lines.append(f"  HasCollection round trip p50 / p95 / p99: {p50:.3f} / {p95:.3f} / {p99:.3f} ms "
                 "(the gRPC floor, no search work, in a loop; '-floor' = added p50 minus this, per repeat)")
    p50, p95, p99 = ping_percentiles(res, "mixed_lat")
    beyond = " / ".join(f"{pr.point.label} {pr.beyond_mixed_floor_p50:+.3f}" for pr in res.points)
    lines.append(f"  interleaved (one after each nq=1 pair) p50 / p95 / p99: {p50:.3f} / {p95:.3f} / {p99:.3f} ms; "
                 f"added p50 beyond it: {beyond} ms")
    return lines


def ping_percentiles(res: KindResult, lat: str = "ping_lat") -> tuple[float, float, float]:
    """Median over points and repeats of p50 / p95 / p99 (ms) of the floor calls ``lat`` names."""
    per = [percentiles(getattr(r, lat)) for pr in res.points for r in pr.rounds]
    p50, p95, p99 = (median([p[i] for p in per]) for i in range(3))
    return p50, p95, p99


def final_table(results: Sequence[KindResult], ds: Dataset) -> list[str]:
    lines = [
        f"-- summary ({ds.rows} x {ds.dim}, L2, k={K}, 1 faiss thread each side; medians of repeats)",
        f"  {'':9} {'build s':^15} {'size':>7} | {'':17} {'recall@10':^20} | {'nq=1 p50 ms':^27} | "
        f"{'nq=100 QPS':^21}",
        SUMMARY_ROW.format("index", "gRPC", "in-proc", "MB", "point", "gRPC", "in-pr", "agree", "gRPC", "in-pr",
                           "added", "-floor", "gRPC", "in-proc", "ratio"),
    ]
    for res in results:
        for i, pr in enumerate(res.points):
            rg, rl = pr.recalls(ds.gt_ids)
            assert pr.grpc_batched_ids is not None and pr.local_batched_ids is not None
            agree = recall_at(pr.grpc_batched_ids, pr.local_batched_ids, K)
            head = (res.spec.label, f"{res.create_index_s:.1f}", f"{res.local_build_s:.1f}",
                    f"{res.index_bytes / MB_BYTES:.1f}") if i == 0 else ("", "", "", "")
            lines.append(SUMMARY_ROW.format(
                *head, pr.point.label, f"{rg:.3f}", f"{rl:.3f}", f"{agree:.1%}", f"{pr.latency('grpc')[0]:.3f}",
                f"{pr.latency('local')[0]:.3f}", f"{pr.added_p50:+.3f}", f"{pr.beyond_floor_p50:+.3f}",
                fmt_rate(pr.qps("grpc_batched_qps")), fmt_rate(pr.qps("local_batched_qps")), f"{pr.ratio:.2f}",
            ))
    floors = [ping_percentiles(r) for r in results]
    p50, p95, p99 = (median([f[i] for f in floors]) for i in range(3))
    lines.append(f"  gRPC floor: HasCollection round trip p50 / p95 / p99 {p50:.3f} / {p95:.3f} / {p99:.3f} ms "
                 "(median over kinds); 'agree' = share of result ids gRPC and in-process have in common")
    return lines


def target_lines(results: Sequence[KindResult], repeats: int) -> list[str]:
    lines = [f"-- targets ({repeats} repeats, medians; a point counts only where gRPC returns exactly the "
             "in-process results, i.e. at identical recall)"]
    for res in results:
        if res.spec.name not in TARGET_KINDS:
            continue
        same = all(pr.same_recall for pr in res.points)
        note = "" if same else " (results differ from in-process at: " + ", ".join(
            pr.point.label for pr in res.points if not pr.same_recall) + ")"
        added = [pr.added_p50 for pr in res.points]
        ratios = [pr.ratio for pr in res.points]
        labels = "/".join(pr.point.label.split("=")[1] for pr in res.points)
        key = res.spec.points[0].label.split("=")[0]
        beyond = "/".join(f"{pr.beyond_floor_p50:.3f}" for pr in res.points)
        added_text = "/".join(f"{a:.3f}" for a in added) + f" ms ({key} {labels})"
        ratio_text = "/".join(f"{x:.2f}" for x in ratios) + f"x ({key} {labels})"
        lines.append(f"  {res.spec.label:<8} nq=1 added latency at p50 <= {TARGET_ADDED_P50_MS:g} ms      "
                     f"{added_text:>38}   {verdict(same and max(added) <= TARGET_ADDED_P50_MS)}{note}")
        beyond_ok = same and max(pr.beyond_floor_p50 for pr in res.points) <= TARGET_BEYOND_FLOOR_MS
        lines.append(f"  {'':<8} node's share beyond the gRPC floor <= {TARGET_BEYOND_FLOOR_MS:g} ms   "
                     f"{beyond + ' ms':>38}   {verdict(beyond_ok)} (floor: HasCollection in a loop)")
        mixed = "/".join(f"{pr.beyond_mixed_floor_p50:.3f}" for pr in res.points)
        mixed_ok = same and max(pr.beyond_mixed_floor_p50 for pr in res.points) <= TARGET_BEYOND_FLOOR_MS
        lines.append(f"  {'':<8} node's share beyond the gRPC floor <= {TARGET_BEYOND_FLOOR_MS:g} ms   "
                     f"{mixed + ' ms':>38}   {verdict(mixed_ok)} (floor: HasCollection after each search)")
        lines.append(f"  {res.spec.label:<8} gRPC nq={BATCH_NQ} QPS >= {TARGET_BATCHED_RATIO}x in-process  "
                     f"{ratio_text:>38}   {verdict(same and min(ratios) >= TARGET_BATCHED_RATIO)}{note}")
    if len(lines) == 1:
        lines.append("  (none of " + ", ".join(TARGET_KINDS) + " was run)")
    return lines
