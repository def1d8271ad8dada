"""Values and pure helpers of the scale benchmark: process memory from /proc, recall, result files, the table.

Nothing here touches the network; :mod:`benchmarks.scale_node` and :mod:`benchmarks.scale_measure` do the I/O.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6
# The saved figures the README, docs/CAPACITY.md and capacity_plan quote, kept in the repository.
RESULTS_DIR = Path(__file__).resolve().parent / "results" / "scale"


# -- memory ----------------------------------------------------------------------------------------


def parse_kb_fields(text: str) -> dict[str, int]:
    """``Key:   123 kB`` lines (``/proc/<pid>/status``, ``smaps_rollup``) as bytes; other lines are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or len(parts) != 2 or parts[1] != "kB" or not parts[0].isdigit():
            continue
        out[key.strip()] = int(parts[0]) * 1024
    return out


@dataclass(frozen=True, slots=True)
class Memory:
    """One process' memory, in bytes.

    ``anon`` is private memory (heap, faiss structures read into RAM); ``file`` is mapped file pages (index
    files and raw vectors read through mmap): page cache that the kernel can drop and read again, and that
    every process mapping the same file shares. ``pss`` splits shared pages between the processes mapping them.
    """

    rss: int
    anon: int
    file: int
    pss: int
    pss_anon: int
    pss_file: int
    hwm: int  # peak RSS of the process so far

    @classmethod
    def parse(cls, status: str, rollup: str) -> Memory:
        st, ro = parse_kb_fields(status), parse_kb_fields(rollup)
        rss = st.get("VmRSS", ro.get("Rss", 0))
        anon = st.get("RssAnon", ro.get("Anonymous", 0))
        file = st.get("RssFile", max(0, rss - anon))
        return cls(rss=rss, anon=anon, file=file, pss=ro.get("Pss", rss), pss_anon=ro.get("Pss_Anon", anon),
                   pss_file=ro.get("Pss_File", file), hwm=st.get("VmHWM", rss))

    def minus(self, base: Memory) -> Memory:
        """Growth over ``base`` (the peak is kept as measured)."""
        return Memory(self.rss - base.rss, self.anon - base.anon, self.file - base.file, self.pss - base.pss,
                      self.pss_anon - base.pss_anon, self.pss_file - base.pss_file, self.hwm)


def read_memory(pid: int, proc: Path = Path("/proc")) -> Memory:
    status = (proc / str(pid) / "status").read_text()
    try:
        rollup = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        rollup = ""
    return Memory.parse(status, rollup)


# -- recall ----------------------------------------------------------------------------------------


def recall_by_distance(found: np.ndarray, truth: np.ndarray, k: int, slack: float = 0.0) -> float:
    """Tie-tolerant recall@k: the share of the first ``k`` results no farther than the true ``k``-th.

    ``found`` and ``truth`` are distances (ascending), one row per query. With Hamming distances many rows
    share the ``k``-th distance, so matching ids would count an equally near row as a miss.
    """
    bound = truth[:, k - 1 : k] * (1.0 + slack) + slack
    hits = np.minimum((found[:, :k] <= bound).sum(axis=1), k)
    return float(hits.mean() / k)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointFigures:
    label: str
    recall: float  # recall@10 over every query (nq=100 calls)
    p50_ms: float  # nq=1, one call at a time
    p99_ms: float
    qps1: float
    qps100: float


@dataclass(frozen=True, slots=True)
class KindFigures:
    data: str  # "float" or "binary"
    kind: str
    rows: int
    dim: int
    raw_bytes: int  # the vectors alone: rows * dim * 4 (float) or rows * dim / 8 (binary)
    segments: int
    build: Mapping[str, int]
    create_index_s: float
    node_build_s: float | None
    index_bytes: int
    preload_s: float
    base: Memory  # fresh search node, nothing loaded
    preloaded: Memory
    searched: Memory  # after every search loop
    points: tuple[PointFigures, ...]
    notes: Mapping[str, Any] = field(default_factory=dict)
    builder: Memory | None = None  # the build node after CreateIndex (its peak covers the build)

    @property
    def loaded(self) -> Memory:
        """What the collection costs the search node: growth over the fresh process, after the searches."""
        return self.searched.minus(self.base)


@dataclass(frozen=True, slots=True)
class InsertFigures:
    data: str
    rows: int
    dim: int
    batch: int
    insert_s: float  # sum of Insert call times (requests built outside the timer)
    wall_s: float
    flush_s: float
    settle_s: float
    segments: int
    storage: Mapping[str, int]  # bytes per kind of file after the flush
    writer: Memory  # the node after the flush (growth over its start)
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def vectors_per_s(self) -> float:
        return self.rows / self.insert_s if self.insert_s > 0 else 0.0


def _memory(raw: Mapping[str, int]) -> Memory:
    return Memory(**{k: int(v) for k, v in raw.items()})


def kind_from_json(raw: Mapping[str, Any]) -> KindFigures:
    values = dict(raw)
    for key in ("base", "preloaded", "searched", "builder"):
        if values.get(key) is not None:
            values[key] = _memory(values[key])
    values["points"] = tuple(PointFigures(**p) for p in values["points"])
    return KindFigures(**values)


def insert_from_json(raw: Mapping[str, Any]) -> InsertFigures:
    values = dict(raw)
    values["writer"] = _memory(values["writer"])
    return InsertFigures(**values)


def result_path(folder: Path, data: str, rows: int, what: str) -> Path:
    return folder / f"{data}-{rows}-{what.lower()}.json"


def write_result(path: Path, value: KindFigures | InsertFigures) -> None:
    """Atomically replace ``path`` with ``value`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(value), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_results(folder: Path, rows: int) -> tuple[list[InsertFigures], list[KindFigures]]:
    inserts: list[InsertFigures] = []
    kinds: list[KindFigures] = []
    for path in sorted(folder.glob(f"*-{rows}-*.json")):
        raw = json.loads(path.read_text())
        if path.stem.endswith("-insert"):
            inserts.append(insert_from_json(raw))
        else:
            kinds.append(kind_from_json(raw))
    return inserts, kinds


# -- the table -------------------------------------------------------------------------------------


def per_vector(value: int, rows: int) -> float:
    return value / rows if rows else 0.0


def mb(value: int | float) -> str:
    return f"{value / MB:,.0f}"


TABLE_ROW = "{:<13} {:>4} {:>8} {:>8} {:>8} {:>8} {:>6} | {:<14} {:>6} {:>7} {:>7} {:>6} {:>7}"


def table_lines(inserts: Sequence[InsertFigures], kinds: Sequence[KindFigures], order: Sequence[str]) -> list[str]:
    lines = []
    for ins in inserts:
        storage = ", ".join(f"{k} {mb(v)} MB" for k, v in sorted(ins.storage.items()))
        lines.append(
            f"insert {ins.data} {ins.rows:,} x {ins.dim}: {ins.vectors_per_s:,.0f} vectors/s (batch {ins.batch:,}, "
            f"{ins.insert_s:.1f} s in Insert calls, {ins.wall_s:.1f} s wall), flush {ins.flush_s:.1f} s, "
            f"merged to {ins.segments} segment(s) in {ins.settle_s:.1f} s; storage {storage}; "
            f"writer after flush: anon {mb(ins.writer.anon)} MB, file {mb(ins.writer.file)} MB, "
            f"peak RSS {mb(ins.writer.hwm)} MB")
    lines.append(TABLE_ROW.format("index", "segs", "build s", "index MB", "anon MB", "file MB", "RSS/raw",
                                  "point", "recall", "p50 ms", "p99 ms", "QPS1", "QPS100"))
    rank = {name: i for i, name in enumerate(order)}
    for res in sorted(kinds, key=lambda r: rank.get(r.kind, len(rank))):
        grown = res.loaded
        ratio = grown.rss / res.raw_bytes if res.raw_bytes else 0.0
        for i, pt in enumerate(res.points):
            head = (res.kind, str(res.segments), f"{res.create_index_s:.1f}", mb(res.index_bytes), mb(grown.anon),
                    mb(grown.file), f"{ratio:.2f}") if i == 0 else ("", "", "", "", "", "", "")
            lines.append(TABLE_ROW.format(*head, pt.label, f"{pt.recall:.3f}", f"{pt.p50_ms:.2f}",
                                          f"{pt.p99_ms:.2f}", f"{pt.qps1:,.0f}", f"{pt.qps100:,.0f}"))
    return lines
