"""Values and pure helpers of :mod:`benchmarks.scale_memory`: one process' memory from /proc, peaks of samples,
the result files and the lines printed. Nothing here starts a process or opens a socket.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from benchmarks.scale_results import parse_kb_fields

MB = 1e6


@dataclass(frozen=True, slots=True)
class Rollup:
    """One process' memory in bytes, from ``/proc/<pid>/status`` and ``/proc/<pid>/smaps_rollup``.

    ``anon`` / ``file``: resident private (heap) and file-backed pages (``RssAnon`` / ``RssFile``).
    ``pss`` splits every shared page between the processes mapping it, so the PSS of all the processes of a node
    adds up to what the node holds, shared pages counted once. ``uss`` (``Private_Clean + Private_Dirty``) is what
    the process alone holds; ``shared`` (``Shared_Clean + Shared_Dirty``) what it maps together with another.
    """

    rss: int = 0
    anon: int = 0
    file: int = 0
    pss: int = 0
    pss_anon: int = 0
    pss_file: int = 0
    uss: int = 0
    shared: int = 0
    hwm: int = 0  # VmHWM: the peak RSS of the process so far

    @classmethod
    def parse(cls, status: str, rollup: str) -> Rollup:
        st, ro = parse_kb_fields(status), parse_kb_fields(rollup)
        rss = st.get("VmRSS", ro.get("Rss", 0))
        anon = st.get("RssAnon", ro.get("Anonymous", 0))
        return cls(rss=rss, anon=anon, file=st.get("RssFile", max(0, rss - anon)), pss=ro.get("Pss", rss),
                   pss_anon=ro.get("Pss_Anon", anon), pss_file=ro.get("Pss_File", 0),
                   uss=ro.get("Private_Clean", 0) + ro.get("Private_Dirty", 0),
                   shared=ro.get("Shared_Clean", 0) + ro.get("Shared_Dirty", 0), hwm=st.get("VmHWM", rss))

    def minus(self, base: Rollup) -> Rollup:
        """Growth over ``base``, field by field (``hwm`` too: the peak over the base's resident set)."""
        return Rollup(**{f.name: getattr(self, f.name) - (base.rss if f.name == "hwm" else getattr(base, f.name))
                         for f in fields(self)})


def read_rollup(pid: int, proc: Path = Path("/proc")) -> Rollup:
    status = (proc / str(pid) / "status").read_text()
    try:
        rollup = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        rollup = ""
    return Rollup.parse(status, rollup)


def peaks(samples: Sequence[Rollup]) -> Rollup:
    """The largest value of every field over the samples (each field's own peak, not one sample's)."""
    if not samples:
        return Rollup()
    return Rollup(**{f.name: max(getattr(s, f.name) for s in samples) for f in fields(Rollup)})


def total(parts: Sequence[Rollup]) -> Rollup:
    """Field-by-field sum: the node's processes together (PSS adds up to the node's share of shared pages)."""
    return Rollup(**{f.name: sum(getattr(p, f.name) for p in parts) for f in fields(Rollup)})


@dataclass(frozen=True, slots=True)
class BuildMemory:
    """``CreateIndex`` on a fresh node: its memory before, the per-field peaks of the samples, and after."""

    kind: str
    rows: int
    dim: int
    build: Mapping[str, int]
    seconds: float
    index_bytes: int
    samples: int
    interval_s: float
    before: Rollup
    peak: Rollup
    after: Rollup
    notes: Mapping[str, Any]

    @property
    def raw_bytes(self) -> int:
        return self.rows * self.dim * 4

    @property
    def grown(self) -> Rollup:
        return self.peak.minus(self.before)

    @property
    def peak_per_row(self) -> float:
        """What a build costs per row: the larger of the sampled RSS peak and VmHWM, over the node before it."""
        return max(self.grown.rss, self.after.hwm - self.before.rss) / self.rows


@dataclass(frozen=True, slots=True)
class ReaderMemory:
    """A read-only node with ``workers`` processes, each process before the preload and after the searches."""

    kind: str
    rows: int
    dim: int
    workers: int
    parent: Rollup | None  # the parent of the workers (None with one process)
    before: tuple[Rollup, ...]  # per worker, fresh
    after: tuple[Rollup, ...]  # per worker, after the preload and every search through each worker
    recall: Mapping[str, float]  # per search point, the same through every worker
    notes: Mapping[str, Any]

    @property
    def processes(self) -> tuple[Rollup, ...]:
        return ((self.parent,) if self.parent else ()) + self.after

    @property
    def node(self) -> Rollup:
        """The node's processes together after the searches."""
        return total(self.processes)

    @property
    def grown(self) -> Rollup:
        """The node's growth over its fresh workers (the parent holds no data)."""
        return total(self.after).minus(total(self.before))


def extra_worker_per_vector(one: ReaderMemory, two: ReaderMemory) -> tuple[float, int]:
    """What a second worker adds, from two nodes serving the same segment: (PSS growth bytes per vector beyond
    the one-process node's, the fresh worker's own PSS). The segment's share is the first figure times the rows
    a reader holds; the second is paid once per worker whatever it holds."""
    fresh = two.before[-1].pss
    return (two.grown.pss - one.grown.pss) / one.rows, fresh


# -- result files ----------------------------------------------------------------------------------


def _rollup(raw: Mapping[str, int] | None) -> Rollup | None:
    return None if raw is None else Rollup(**{k: int(v) for k, v in raw.items()})


def build_from_json(raw: Mapping[str, Any]) -> BuildMemory:
    v = dict(raw)
    for key in ("before", "peak", "after"):
        v[key] = _rollup(v[key])
    return BuildMemory(**v)


def reader_from_json(raw: Mapping[str, Any]) -> ReaderMemory:
    v = dict(raw)
    v["parent"] = _rollup(v["parent"])
    for key in ("before", "after"):
        v[key] = tuple(Rollup(**r) for r in v[key])
    return ReaderMemory(**v)


def result_name(value: BuildMemory | ReaderMemory) -> str:
    if isinstance(value, BuildMemory):
        return f"build-{value.kind.lower()}-{value.rows}.json"
    return f"reader-{value.kind.lower()}-{value.rows}-w{value.workers}.json"


def write(folder: Path, value: BuildMemory | ReaderMemory) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / result_name(value)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(value), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_all(folder: Path) -> tuple[list[BuildMemory], list[ReaderMemory]]:
    builds: list[BuildMemory] = []
    readers: list[ReaderMemory] = []
    for path in sorted(folder.glob("build-*.json")):
        builds.append(build_from_json(json.loads(path.read_text())))
    for path in sorted(folder.glob("reader-*.json")):
        readers.append(reader_from_json(json.loads(path.read_text())))
    return builds, readers


# -- lines -----------------------------------------------------------------------------------------


def mb(value: float) -> str:
    return f"{value / MB:,.0f}"


def build_lines(builds: Sequence[BuildMemory]) -> list[str]:
    lines = ["build node (CreateIndex, peaks of the samples over the node before it, MB): "
             "kind rows | s | index MB | raw MB | RSS (B/row) | anon | file | PSS | VmHWM - before"]
    for b in builds:
        g = b.grown
        lines.append(f"  {b.kind} {b.rows:,} {dict(b.build)} | {b.seconds:.0f} s | {mb(b.index_bytes)} | "
                     f"{mb(b.raw_bytes)} | {mb(g.rss)} ({g.rss / b.rows:,.0f}) | {mb(g.anon)} | {mb(g.file)} | "
                     f"{mb(g.pss)} | {mb(b.after.hwm - b.before.rss)}  ({b.samples} samples every "
                     f"{b.interval_s * 1e3:.0f} ms, load {b.notes.get('load_average', 0):.1f})")
    return lines


def reader_lines(readers: Sequence[ReaderMemory]) -> list[str]:
    lines = ["read node after preload + searches through every worker, per process (MB): "
             "RSS = anon + file | PSS (anon + file) | USS | shared"]
    for r in sorted(readers, key=lambda x: (x.kind, x.rows, x.workers)):
        recall = ", ".join(f"{k} {v:.3f}" for k, v in r.recall.items())
        lines.append(f"  {r.kind} {r.rows:,} rows, --workers {r.workers} (recall@10 {recall}; load "
                     f"{r.notes.get('load_average', 0):.1f}):")
        named = ([("parent", r.parent)] if r.parent else []) + [(f"worker {i}", m) for i, m in enumerate(r.after)]
        for label, m in named:
            lines.append(f"    {label:<8} {mb(m.rss)} = {mb(m.anon)} + {mb(m.file)} | {mb(m.pss)} "
                         f"({mb(m.pss_anon)} + {mb(m.pss_file)}) | {mb(m.uss)} | {mb(m.shared)}")
        node, g = r.node, r.grown
        lines.append(f"    node     RSS sum {mb(node.rss)}, PSS sum {mb(node.pss)} (anon {mb(node.pss_anon)} + "
                     f"file {mb(node.pss_file)}); growth over the fresh workers: PSS {mb(g.pss)} "
                     f"({g.pss / r.rows:,.0f} B/vector), RSS {mb(g.rss)}")
    by = {(r.kind, r.rows, r.workers): r for r in readers}
    for (kind, rows, w), r in sorted(by.items()):
        one = by.get((kind, rows, 1))
        if w == 2 and one is not None:
            per_vec, fresh = extra_worker_per_vector(one, r)
            lines.append(f"  {kind}: a second worker adds {per_vec:,.0f} B/vector of PSS beyond one process "
                         f"({mb(per_vec * rows)} MB at {rows:,} rows; the fresh worker itself {mb(fresh)} MB)")
    return lines
