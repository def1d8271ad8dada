"""The harness itself: it stays black-box (no project internals imported), and its pure parts decide right."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from e2e.analysis import Window, expectation, growth, judge, rates, write_outages
from e2e.nemesis import plan
from e2e.outcomes import ACKED, ERROR, FAILED, UNKNOWN, Op, classify_write
from e2e.probe import parse_metrics
from e2e.scenario import Result
from e2e.settings import from_env
from e2e.soak import LIMITS, Sample, growing, trends
from e2e.supervisor import Event, all_down, down_intervals
from e2e.workload import vectors_for

HERE = Path(__file__).parent
_INTERNAL = re.compile(r"^\s*(?:from|import)\s+(node|mishards|coordinator)\b", re.MULTILINE)


def test_no_module_of_e2e_imports_project_internals() -> None:
    sources = sorted(HERE.rglob("*.py"))
    assert len(sources) >= 10
    offenders = {p.name: _INTERNAL.findall(p.read_text()) for p in sources}
    assert not {k: v for k, v in offenders.items() if v}, offenders
    # The pattern does catch such an import.
    assert _INTERNAL.findall("import numpy\nfrom coordinator.catalog import Catalog\n  import node.engine\n")


def _ins(first: int, count: int, outcome: str) -> Op:
    return Op("insert", 0, 0.0, 0.0, outcome, "0", "", first_id=first, count=count)


def _del(ids: tuple[int, ...], outcome: str) -> Op:
    return Op("delete", 0, 0.0, 0.0, outcome, "0", "", ids=ids)


def test_expectation_and_judgement() -> None:
    ops = [_ins(1, 10, ACKED), _ins(11, 5, UNKNOWN), _ins(16, 5, FAILED), _del((1, 2), ACKED), _del((3,), UNKNOWN),
           _del((4,), ERROR), _del((3,), FAILED)]
    exp = expectation(ops)
    assert exp.must_be_present == frozenset(range(4, 11))
    assert exp.count_bounds == (7, 13)
    assert exp.unknown_deletes == {3} and exp.refused_deletes == {4}
    present = set(range(2, 11)) | {11, 12, 16}
    v = judge(exp, present, [5], present | {99})
    assert v.lost == ()
    assert v.resurrected == (2,)
    assert v.applied_despite_refusal == (16,)
    assert v.unknown_applied == 2
    assert v.phantoms == (99,)
    assert v.wrong_vectors == (5,)
    # A refused delete whose id is gone was applied all the same; a missing acknowledged row is lost.
    v2 = judge(exp, set(range(5, 11)), [], set())
    assert v2.lost == (4,) and v2.applied_despite_refusal == (4,)


def test_outcomes_of_writes() -> None:
    assert classify_write(0, "", None) == ACKED
    assert classify_write(None, "", "DEADLINE_EXCEEDED") == UNKNOWN
    assert classify_write(1, "Write outcome unknown: the writer stopped", None) == UNKNOWN
    assert classify_write(2, "No writable node is available right now", None) == FAILED
    assert classify_write(3, "standby", None) == FAILED
    assert classify_write(15, "fenced", None) == ERROR


def test_write_outages_subtract_the_windows_without_an_electable_writer() -> None:
    windows = write_outages([1.0, 2.0, 9.0, 9.5], 0.0, 10.0, [(3.0, 6.0)])
    assert windows[0] == Window(2.0, 9.0, 3.0) and windows[0].length == 4.0
    assert [w.length for w in windows] == [4.0, 1.0, 1.0]
    assert write_outages([], 0.0, 5.0, [])[0].length == 5.0


def test_search_rates_exclude_the_proxy_s_own_down_time() -> None:
    ops = [Op("search", 0, 1.0, 1.1, ACKED, "0", ""), Op("search", 1, 4.0, 4.2, ERROR, "grpc:UNAVAILABLE", ""),
           Op("search", 0, 4.0, 4.2, ERROR, "1", "x"), Op("insert", 0, 1.0, 1.1, ACKED, "0", "")]
    r = rates(ops, "search", {1: [(3.9, 5.0)]})
    assert (r.total, r.ok, r.excluded) == (2, 1, 1)
    assert r.by_code == {"0": 1, "1": 1} and r.success == 0.5


def test_down_intervals_and_their_intersection() -> None:
    events = [Event(1.0, "a", "kill9"), Event(1.1, "a", "exit"), Event(2.0, "a", "start"), Event(3.0, "a", "ready"),
              Event(2.5, "b", "pause"), Event(4.0, "b", "resume"), Event(5.0, "b", "exit")]
    a, b = down_intervals(events, "a", 10.0), down_intervals(events, "b", 10.0)
    assert a == [(1.0, 3.0)]
    assert b == [(2.5, 4.0), (5.0, 10.0)]
    assert all_down([a, b]) == [(2.5, 3.0)]


def test_the_fault_plan_is_a_function_of_the_seed() -> None:
    one, two = plan(7, 120.0, 2.0), plan(7, 120.0, 2.0)
    assert one == two and one != plan(8, 120.0, 2.0)
    assert all(f.at + f.hold <= 120.0 for f in one)
    assert all(b.at - a.at >= a.hold + 2.0 + 3.0 - 0.02 for a, b in itertools.pairwise(one))
    assert {f.kind for f in plan(1, 1000.0, 2.0)} == {"kill9", "pause", "restart"}
    assert any(f.hold > 2.0 for f in plan(1, 1000.0, 2.0))  # pauses longer than the lease happen


def test_vectors_are_exact_float32_and_deterministic() -> None:
    ids = np.array([1, 2, 3, 1 << 40], dtype=np.int64)
    v = vectors_for(ids, 16)
    assert v.dtype == np.float32 and v.shape == (4, 16)
    assert np.array_equal(v, vectors_for(ids, 16)) and not np.array_equal(v[0], v[1])
    assert np.all(v >= -1.0) and np.all(v < 1.0)
    assert np.array_equal(v.astype(np.float64).astype(np.float32), v)


def test_resource_trends_skip_the_warm_up() -> None:
    pool = [Sample(float(i), "p", 100_000, 20, 10 + min(i, 6)) for i in range(18)]  # grows, then levels off
    leak = [Sample(float(i), "q", 100_000 + 20_000 * i, 20 + 3 * i, 10) for i in range(18)]
    found = {(t.name, t.metric): t for t in trends(pool + leak)}
    assert found["p", "threads"].first == 16 and not found["p", "threads"].grows(*LIMITS["threads"])
    assert {(t.name, t.metric) for t in growing(found.values())} == {("q", "rss_kb"), ("q", "fds")}


def test_growth_and_settings() -> None:
    assert growth([10, 10, 10, 10, 10, 10]) == 1.0
    assert growth([10, 10, 11, 20, 20, 20]) == 2.0
    assert from_env({}).mode == "short" and from_env({"MISHARDS_E2E": "long"}).soak_seconds == 600.0
    assert from_env({"MISHARDS_E2E": "long"}).infra_down_seconds == 20.0
    assert parse_metrics('# HELP x\nmishards_node_writable 1.0\nreq{method="Insert",code="0"} 3\n') == {
        "mishards_node_writable": 1.0, 'req{method="Insert",code="0"}': 3.0}


def test_a_result_fails_unless_open_defects_explain_every_problem() -> None:
    figures = {"acked_rows": 1, "lost": 0, "resurrected": 0, "duplicates": 0, "unknown_rows": 0,
               "applied_despite_refusal": 0, "write_outage_s": 0.0, "search_success": 1.0, "search_failed": 0}
    Result("ok", figures).expect()
    bad = Result("bad", figures, {"lost": "3 acknowledged rows lost", "count_under": "count 7 < 10"})
    with pytest.raises(AssertionError, match="3 acknowledged rows lost"):
        bad.expect()
    with pytest.raises(AssertionError):
        bad.expect({"defect A": frozenset({"lost"})})
    with pytest.raises(pytest.xfail.Exception, match="defect A"):
        bad.expect({"defect A": frozenset({"lost", "count_under"}), "defect B": frozenset({"duplicates"})})
