"""What ``benchmarks.lite_bench`` measures, as values: index parameters mapped 1:1 onto both systems, the
figures of one run of one system, and the comparisons between them (pure functions, no I/O)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from coordinator.model import IndexType

VECTOR_FIELD = "vec"
ID_FIELD = "id"
METRIC = "L2"
K = 10
BATCH_NQ = 100
# Milvus 2.x consistency levels, strongest first; searches use the cheapest one that still sees the data.
LITE_LEVELS = ("Strong", "Bounded", "Eventually")
LITE_SEARCH_LEVEL = "Eventually"
OUR_SEARCHABLE = "Flush"  # the Milvus 1.x way: Flush, then every acknowledged row is searchable


@dataclass(frozen=True)
class SearchPoint:
    """One search-parameter point; Milvus 1.1 and 2.x spell these parameters the same way."""

    label: str
    params: Mapping[str, int]


@dataclass(frozen=True)
class IndexPlan:
    name: str
    build: Mapping[str, int]
    points: tuple[SearchPoint, ...]

    def mishards_index(self) -> tuple[int, str]:
        """``IndexParam.index_type`` and the ``params`` JSON of a Milvus 1.1 ``CreateIndex``."""
        return int(IndexType[self.name]), json.dumps(dict(self.build))

    def lite_index(self) -> dict[str, object]:
        """Keyword arguments of pymilvus 2.x ``IndexParams.add_index`` for the same index."""
        return {"field_name": VECTOR_FIELD, "index_type": self.name, "metric_type": METRIC,
                "params": dict(self.build)}


def lite_search_params(point: SearchPoint) -> dict[str, object]:
    """The ``search_params`` of pymilvus 2.x ``MilvusClient.search``."""
    return {"metric_type": METRIC, "params": dict(point.params)}


PLANS: dict[str, IndexPlan] = {
    "FLAT": IndexPlan("FLAT", {}, (SearchPoint("exact", {}),)),
    "IVF_FLAT": IndexPlan("IVF_FLAT", {"nlist": 1024},
                          tuple(SearchPoint(f"nprobe={p}", {"nprobe": p}) for p in (16, 64))),
    "HNSW": IndexPlan("HNSW", {"M": 16, "efConstruction": 200}, (SearchPoint("ef=64", {"ef": 64}),)),
}


def parse_kinds(text: str) -> list[str]:
    """Comma-separated index kinds, in the order given, each once; ValueError names an unknown one."""
    kinds = list(dict.fromkeys(k.strip().upper() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in PLANS]
    if unknown or not kinds:
        raise ValueError(f"unknown index kind(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(PLANS)}")
    return kinds


def batches(rows: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(rows, start + size)) for start in range(0, rows, size)]


# -- figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointFigures:
    """One search point of one run: nq=1 latency, nq=1 and nq=100 QPS, recall@10 (nq=100 results)."""

    p50_ms: float
    p99_ms: float
    serial_qps: float
    batched_qps: float
    recall: float


@dataclass(frozen=True)
class RunFigures:
    """One system, one index kind, one fresh load."""

    insert_rate: float  # vectors/s of a client that builds its request and waits for the acknowledgement
    ack_rate: float | None  # vectors/s of the calls alone (requests built before), where measurable
    searchable_s: Mapping[str, float | None]  # from the last acknowledgement until a search sees the rows
    flush_s: float
    build_s: float
    load_s: float
    points: Mapping[str, PointFigures] = field(default_factory=dict)
    insert_cpu_s: tuple[float, float] | None = None  # CPU seconds of the insert loop: (client, server)


@dataclass(frozen=True)
class ClientFigures:
    """Mishards through a second client (pymilvus 1.1.2 as shipped): insert rate and search points."""

    insert_rate: float
    points: Mapping[str, PointFigures] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """The system refused the index kind; ``reason`` is its own message."""

    reason: str


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_of(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def advantage(ours: float | None, theirs: float | None, lower_is_better: bool) -> float | None:
    """How many times better Mishards is on one figure (>1: better, <1: worse); None when not comparable."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return theirs / ours if lower_is_better else ours / theirs


def fmt_advantage(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


@dataclass(frozen=True)
class Row:
    """One line of the comparison table: a figure, both medians, and Mishards' advantage."""

    figure: str
    ours: float | None
    theirs: float | None
    unit: str
    lower_is_better: bool
    also: float | None = None  # Mishards through pymilvus 1.1.2, where measured

    @property
    def factor(self) -> float | None:
        return advantage(self.ours, self.theirs, self.lower_is_better)

    @property
    def comparison(self) -> str:
        """'12.3x' (Mishards better by that factor), or for recall the difference Mishards minus Lite."""
        if self.unit:
            return fmt_advantage(self.factor)
        if self.ours is None or self.theirs is None:
            return "n/a"
        return f"{self.ours - self.theirs:+.3f}"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("vectors/s", "QPS"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.3f}"


def best_searchable(searchable: Mapping[str, float | None]) -> tuple[str, float | None]:
    """The fastest way to searchable among those that got there (label, seconds)."""
    seen = {k: v for k, v in searchable.items() if v is not None}
    if not seen:
        return "none", None
    label = min(seen, key=lambda k: seen[k])
    return label, seen[label]


def table_rows(plan: IndexPlan, ours: Sequence[RunFigures], theirs: Sequence[RunFigures],
               also: Sequence[ClientFigures] = ()) -> list[Row]:
    """Medians over runs of every figure, Mishards against Milvus Lite (an empty side shows as n/a);
    ``also`` adds Mishards through pymilvus 1.1.2 to the insert and search rows."""

    def med(runs: Sequence[RunFigures], get: Callable[[RunFigures], float | None]) -> float | None:
        return median_of([get(r) for r in runs])

    rows = [
        Row("insert, client builds + sends", med(ours, lambda r: r.insert_rate), med(theirs, lambda r: r.insert_rate),
            "vectors/s", False, median_of([c.insert_rate for c in also])),
    ]
    def at(level: str) -> Callable[[RunFigures], float | None]:
        return lambda r: r.searchable_s.get(level)

    for level in (OUR_SEARCHABLE, *LITE_LEVELS):
        if any(level in r.searchable_s for r in (*ours, *theirs)):
            rows.append(Row(f"searchable after last insert: {level}", med(ours, at(level)), med(theirs, at(level)),
                            "s", True))
    rows.append(Row("searchable, each side's fastest", med(ours, lambda r: best_searchable(r.searchable_s)[1]),
                    med(theirs, lambda r: best_searchable(r.searchable_s)[1]), "s", True))
    rows.append(Row("index build on flushed rows", med(ours, lambda r: r.build_s), med(theirs, lambda r: r.build_s),
                    "s", True))
    rows.append(Row("load (Preload / load_collection)", med(ours, lambda r: r.load_s),
                    med(theirs, lambda r: r.load_s), "s", True))
    for point in plan.points:
        def pf(runs: Sequence[RunFigures | ClientFigures], attr: str, label: str = point.label) -> float | None:
            return median_of([getattr(r.points[label], attr) if label in r.points else None for r in runs])

        tag = "" if point.label == "exact" else f" {point.label}"
        rows += [
            Row(f"nq=1 p50{tag}", pf(ours, "p50_ms"), pf(theirs, "p50_ms"), "ms", True, pf(also, "p50_ms")),
            Row(f"nq=1 p99{tag}", pf(ours, "p99_ms"), pf(theirs, "p99_ms"), "ms", True, pf(also, "p99_ms")),
            Row(f"nq={BATCH_NQ} QPS{tag}", pf(ours, "batched_qps"), pf(theirs, "batched_qps"), "QPS", False,
                pf(also, "batched_qps")),
            Row(f"recall@{K}{tag}", pf(ours, "recall"), pf(theirs, "recall"), "", False, pf(also, "recall")),
        ]
    return rows
