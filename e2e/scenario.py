"""One scenario run: create the collection, run the workload while faults happen, heal, check, and report the
figures (printed, and written to ``results.json`` in the run's folder)."""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from e2e.analysis import in_windows, rates, write_outages
from e2e.checker import check_data
from e2e.cluster import Cluster
from e2e.nemesis import Fault, Nemesis
from e2e.outcomes import ACKED, UNKNOWN, Op
from e2e.supervisor import all_down, down_intervals
from e2e.workload import Workload, WorkloadConfig
from milvus_wire import milvus_pb2
from tests.support.waiting import poll_for

log = logging.getLogger(__name__)

DIM = 16
COLLECTION = "e2e"
SEARCH_SUCCESS_MIN = 0.999
RESULTS = Path(tempfile.gettempdir()) / "mishards-e2e-results"
# A client's channel to a restarted proxy reconnects within its back-off (at most 0.5 s, plus jitter): calls in
# that time fail UNAVAILABLE on the client's side. They count with the proxy's own down time.
CLIENT_RECONNECT = 1.0
RECOVERY_LIMIT = 30.0  # seconds from the end of an infrastructure fault to an acknowledged write


@dataclass
class Result:
    name: str
    figures: dict[str, Any]
    problems: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        f = self.figures
        return (f"{self.name}: acked {f['acked_rows']} rows, lost {f['lost']}, resurrected {f['resurrected']}, "
                f"duplicates {f['duplicates']}, unknown {f['unknown_rows']}, applied-despite-refusal "
                f"{f['applied_despite_refusal']}, longest write outage {f['write_outage_s']:.1f}s, "
                f"search success {f['search_success']:.4f} ({f['search_failed']} failed)"
                + (f"; PROBLEMS: {'; '.join(self.problems.values())}" if self.problems else ""))

    def expect(self, known: dict[str, frozenset[str]] | None = None) -> None:
        """Pass when there is no problem; xfail when every problem is of the kinds that known, still open defects
        explain (``known``: reason -> problem kinds, see e2e/defects.py), naming those defects; fail otherwise."""
        known = known or {}
        if not self.problems:
            return
        unexplained = set(self.problems) - set().union(*known.values()) if known else set(self.problems)
        if unexplained:
            raise AssertionError(self.summary())
        reasons = [reason for reason, kinds in known.items() if kinds & set(self.problems)]
        pytest.xfail(" + ".join(reasons) + f": {self.summary()}")


def create_collection(stub: Any, timeout: float = 60.0) -> None:
    schema = milvus_pb2.CollectionSchema(collection_name=COLLECTION, dimension=DIM, index_file_size=1, metric_type=1)

    def created() -> bool:
        try:
            return stub.CreateCollection(schema, timeout=10).error_code == 0
        except Exception:
            return False

    poll_for(created, timeout, interval=0.3, what="CreateCollection through the proxy")


def _windows_rel(windows: Sequence[tuple[float, float]], t0: float) -> list[list[float]]:
    return [[round(a - t0, 2), round(b - t0, 2)] for a, b in windows]


def run(name: str, cluster: Cluster, out_dir: Path, duration: float, *, seed: int = 0,
        faults: Sequence[Fault] = (), action: Callable[[Cluster, float], dict[str, Any]] | None = None,
        workload: WorkloadConfig | None = None, outage_limit: float | None = None) -> Result:
    """Run ``duration`` seconds of load. ``faults`` go to a ``Nemesis``; ``action(cluster, t0)`` runs in this
    thread meanwhile (infrastructure faults) and returns figures of its own, with under ``"windows"`` the
    fault's windows (name -> (start, end), monotonic): writes are not expected to succeed within them (excused
    from the outage), and each gets its own figures (what kept working, how fast it came back after).
    ``outage_limit`` defaults to TTL + 2 s."""
    ttl = cluster.spec.election_ttl
    limit = ttl + 2.0 if outage_limit is None else outage_limit
    stubs = cluster.proxy_stubs()
    if not stubs[0].HasCollection(milvus_pb2.CollectionName(collection_name=COLLECTION), timeout=10).bool_reply:
        create_collection(stubs[0])
    load = Workload(stubs, COLLECTION, DIM, workload or WorkloadConfig(), seed=seed)
    nemesis = Nemesis(cluster, faults)
    print(f"\n[{name}] seed {seed}, {duration:.0f}s, fault plan: " + ("; ".join(f.describe() for f in faults)
                                                                      if faults else "(none)"))
    t0 = time.monotonic()
    load.start()
    nemesis.start()
    extra: dict[str, Any] = {}
    try:
        if action is not None:
            extra = action(cluster, t0)
        remaining = t0 + duration - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)  # the load runs for the scenario's duration
    finally:
        nemesis.stop()
        try:
            cluster.heal()
        finally:
            load.stop()
    t_end = time.monotonic()
    ops = load.ops()
    report = check_data(stubs, COLLECTION, DIM, ops, seed)
    events = cluster.timeline.events()
    writers_down = all_down([down_intervals(events, p.name, t_end) for p in cluster.writers])
    windows: dict[str, tuple[float, float]] = extra.pop("windows", {})
    more = list(windows.values())
    acks = [op.done for op in ops if op.kind in ("insert", "delete") and op.outcome == ACKED]
    outages = write_outages(acks, t0 + 1.0, t_end, [*writers_down, *more])
    proxy_down = {i: [(a, b + CLIENT_RECONNECT) for a, b in down_intervals(events, p.name, t_end)]
                  for i, p in enumerate(cluster.proxies)}
    searches = rates(ops, "search", proxy_down)
    writes = rates(ops, "insert", proxy_down)
    deletes = rates(ops, "delete", proxy_down)
    figures: dict[str, Any] = {
        "scenario": name, "seed": seed, "duration_s": round(t_end - t0, 1), "election_ttl": ttl,
        **report.figures(),
        "write_outage_s": round(outages[0].length, 2) if outages else 0.0,
        "write_outage_limit_s": limit,
        "write_outages": [{"from": round(w.start - t0, 2), "to": round(w.end - t0, 2), "excused": round(w.excused, 2),
                           "length": round(w.length, 2)} for w in outages],
        "no_writer_electable": _windows_rel(writers_down, t0),
        "excused_windows": _windows_rel(more, t0),
        "search_success": round(searches.success, 5), "searches": searches.total, "search_failed":
            searches.total - searches.ok, "searches_excluded_proxy_down": searches.excluded,
        "search_codes": searches.by_code, "insert_codes": writes.by_code, "delete_codes": deletes.by_code,
        "inserts": writes.total, "deletes": deletes.total,
        "unknown_outcomes": sum(op.outcome == UNKNOWN for op in ops),
        "max_latency_s": _max_latency(ops),
        "search_latency_s": _percentiles([op.done - op.sent for op in ops if op.kind == "search"]),
        "error_reasons": _reasons(ops),
        "failed_searches": [f"t+{op.sent - t0:.2f}..{op.done - t0:.2f}s proxy{op.proxy} {op.code} {op.reason[:80]}"
                            for op in ops if op.kind == "search" and op.outcome != ACKED
                            and not in_windows(op, proxy_down.get(op.proxy, []))][:20],
        "proxy_down": {f"proxy{i}": _windows_rel(w, t0) for i, w in proxy_down.items() if w},
        "faults_applied": nemesis.applied, "faults_skipped": nemesis.skipped,
        "restarts": {k: v for k, v in cluster.supervisor.restarts.items() if v},
        "exit_codes": {k: v for k, v in cluster.supervisor.exit_codes.items() if v},
        **extra,
        "fault_windows": {k: window_figures(ops, a, b, t0) for k, (a, b) in windows.items()},
    }
    problems = report.problems()
    if figures["write_outage_s"] > limit:
        problems["write_outage"] = f"write outage {figures['write_outage_s']:.1f}s > {limit:.1f}s"
    for k, w in figures["fault_windows"].items():
        if w["hung_calls"]:
            problems["hung_calls"] = f"{w['hung_calls']} calls sent while {k} ran into the client's deadline"
        if w["write_recovery_s"] is None or w["write_recovery_s"] > RECOVERY_LIMIT:
            problems["slow_recovery"] = f"after {k}, the first write acknowledged after {w['write_recovery_s']}s"
    escaped = sum(op.code in ("grpc:UNKNOWN", "grpc:INTERNAL") for op in ops)
    if escaped:
        problems["grpc_unknown"] = f"{escaped} calls answered a bare gRPC UNKNOWN/INTERNAL instead of a Milvus status"
    if searches.success < SEARCH_SUCCESS_MIN:
        problems["search_success"] = f"search success {searches.success:.4f} < {SEARCH_SUCCESS_MIN}"
    result = Result(name, figures, problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**figures, "problems": problems}, indent=1, default=str)
    (out_dir / "results.json").write_text(text)
    # The latest figures of each scenario also stay where pytest's folder rotation does not remove them.
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".json")).write_text(text)
    print(json.dumps({**figures, "problems": problems}, indent=1, default=str))
    print(f"figures written to {out_dir / 'results.json'} and {RESULTS}")
    print(result.summary())
    return result


def _max_latency(ops: Sequence[Op]) -> dict[str, float]:
    out: dict[str, float] = {}
    for op in ops:
        out[op.kind] = round(max(out.get(op.kind, 0.0), op.done - op.sent), 2)
    return out


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    s = sorted(values)
    if not s:
        return {}
    return {f"p{q}": round(s[min(len(s) - 1, int(len(s) * q / 100))], 3) for q in (50, 99, 100)}


def _reasons(ops: Sequence[Op], top: int = 8) -> list[str]:
    counts = Counter(f"{op.kind} {op.code} {op.reason[:100]}" for op in ops if op.outcome != ACKED)
    return [f"{n}x {text}" for text, n in counts.most_common(top)]


def window_figures(ops: Sequence[Op], start: float, end: float, t0: float) -> dict[str, Any]:
    """Operations sent within [start, end]: outcomes and codes by kind, the longest call, and after ``end`` how
    long until the first write sent after it was acknowledged (recovery)."""
    inside = [op for op in ops if start <= op.sent <= end]
    by_kind: dict[str, dict[str, int]] = {}
    for op in inside:
        codes = by_kind.setdefault(op.kind, {})
        label = "ok" if op.outcome == ACKED else f"{op.outcome}:{op.code}"
        codes[label] = codes.get(label, 0) + 1
    after = [op.done - end for op in ops if op.kind == "insert" and op.outcome == ACKED and op.sent >= end]
    hung = sum(op.code == "grpc:DEADLINE_EXCEEDED" for op in inside)
    return {"from": round(start - t0, 2), "to": round(end - t0, 2), "outcomes": by_kind, "hung_calls": hung,
            "longest_call_s": round(max((op.done - op.sent for op in inside), default=0.0), 2),
            "write_recovery_s": round(min(after), 2) if after else None}
