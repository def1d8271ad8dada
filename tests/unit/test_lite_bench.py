"""The Milvus Lite benchmark's pure parts: parameters mapped 1:1, comparisons, options, the worker protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import lite_env, lite_worker
from benchmarks.datasets import Dataset
from benchmarks.lite_bench import QUICK, header, parse_args
from benchmarks.lite_plan import (
    LITE_LEVELS,
    OUR_SEARCHABLE,
    PLANS,
    PointFigures,
    RunFigures,
    advantage,
    best_searchable,
    fmt_advantage,
    lite_search_params,
    parse_kinds,
    table_rows,
)
from benchmarks.lite_side import point_figures
from coordinator.model import IndexType


@pytest.mark.parametrize("name", sorted(PLANS))
def test_both_systems_get_the_same_index_and_search_parameters(name: str) -> None:
    plan = PLANS[name]
    index_type, params = plan.mishards_index()
    lite = plan.lite_index()
    assert IndexType(index_type).name == lite["index_type"] == name
    assert json.loads(params) == lite["params"] == dict(plan.build)
    assert lite["metric_type"] == "L2"
    for point in plan.points:
        assert lite_search_params(point) == {"metric_type": "L2", "params": dict(point.params)}


def test_the_brief_parameters() -> None:
    assert dict(PLANS["IVF_FLAT"].build) == {"nlist": 1024}
    assert [dict(p.params) for p in PLANS["IVF_FLAT"].points] == [{"nprobe": 16}, {"nprobe": 64}]
    assert dict(PLANS["HNSW"].build) == {"M": 16, "efConstruction": 200}
    assert [dict(p.params) for p in PLANS["HNSW"].points] == [{"ef": 64}]


def test_parse_kinds_keeps_order_and_refuses_unknown() -> None:
    assert parse_kinds(" hnsw,FLAT,hnsw ") == ["HNSW", "FLAT"]
    with pytest.raises(ValueError, match="IVF_PQ"):
        parse_kinds("FLAT,IVF_PQ")
    with pytest.raises(ValueError):
        parse_kinds(" , ")


def test_advantage_reads_as_times_better_for_mishards() -> None:
    assert advantage(2.0, 10.0, lower_is_better=True) == 5.0  # a time: theirs / ours
    assert advantage(50_000.0, 5_000.0, lower_is_better=False) == 10.0  # a rate: ours / theirs
    assert advantage(None, 1.0, lower_is_better=True) is None
    assert advantage(0.0, 1.0, lower_is_better=True) is None
    assert fmt_advantage(None) == "n/a"
    assert fmt_advantage(0.5) == "0.50x"
    assert fmt_advantage(21.4) == "21x"


def test_best_searchable_ignores_levels_that_never_saw_the_rows() -> None:
    assert best_searchable({"Strong": 0.2, "Bounded": None, "Eventually": 0.1}) == ("Eventually", 0.1)
    assert best_searchable({"Strong": None}) == ("none", None)


def figures(insert: float, searchable: dict[str, float | None], p50: float, recall: float) -> RunFigures:
    return RunFigures(insert_rate=insert, ack_rate=None, searchable_s=searchable, flush_s=0.0, build_s=1.0,
                      load_s=0.1, points={"nprobe=16": PointFigures(p50, 2 * p50, 100.0, 1000.0, recall),
                                          "nprobe=64": PointFigures(p50, 2 * p50, 50.0, 500.0, recall)})


def test_table_rows_take_medians_per_side_and_compare() -> None:
    plan = PLANS["IVF_FLAT"]
    ours = [figures(x, {OUR_SEARCHABLE: 0.05}, 1.0, 0.95) for x in (40_000.0, 60_000.0, 50_000.0)]
    theirs = [figures(x, {"Strong": 0.01, "Bounded": None, "Eventually": 0.02}, 4.0, 0.97) for x in (5_000.0,)]
    rows = {r.figure: r for r in table_rows(plan, ours, theirs)}
    insert = rows["insert, client builds + sends"]
    assert (insert.ours, insert.theirs, insert.factor) == (50_000.0, 5_000.0, 10.0)
    assert rows[f"searchable after last insert: {OUR_SEARCHABLE}"].theirs is None
    assert rows[f"searchable after last insert: {LITE_LEVELS[1]}"].comparison == "n/a"
    fastest = rows["searchable, each side's fastest"]
    assert (fastest.ours, fastest.theirs) == (0.05, 0.01)
    assert fastest.factor == pytest.approx(0.2)  # Milvus Lite is faster here: shown as < 1
    assert rows["nq=1 p50 nprobe=64"].factor == 4.0
    assert rows["recall@10 nprobe=16"].comparison == "-0.020"


def test_table_rows_of_a_refused_side_are_not_comparable() -> None:
    rows = table_rows(PLANS["HNSW"], [figures(1.0, {OUR_SEARCHABLE: 0.1}, 1.0, 0.9)], [])
    assert rows and all(r.theirs is None and r.comparison == "n/a" for r in rows)


def test_point_figures_recall_against_the_ground_truth() -> None:
    gt = np.array([[0, 1, 2], [3, 4, 5]])
    reply = {"lat_s": [0.001, 0.003], "serial_qps": 500.0, "batched_qps": 900.0, "ids": [[0, 1, 9], [5, 4, -1]]}
    fig = point_figures(reply, np.hstack([gt, gt + 100]), 3)
    assert fig.recall == pytest.approx(4 / 6)
    assert fig.p50_ms == pytest.approx(2.0)
    assert fig.batched_qps == 900.0


def test_quick_defaults_and_explicit_options() -> None:
    quick = parse_args(["--quick"])
    assert (quick.rows, quick.queries, quick.repeats) == (QUICK["rows"], QUICK["queries"], QUICK["repeats"])
    full = parse_args(["--kinds", "ivf_flat", "--rows", "30000"])
    assert (full.rows, full.queries, full.kinds) == (30_000, 1_000, ["IVF_FLAT"])
    with pytest.raises(SystemExit):
        parse_args(["--kinds", "ANNOY"])


def test_venv_is_current_only_with_the_same_pins(tmp_path: Path) -> None:
    assert not lite_env.is_current(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / lite_env.STAMP).write_text(lite_env.stamp_text(lite_env.REQUIREMENTS))
    assert lite_env.is_current(tmp_path)
    assert not lite_env.is_current(tmp_path, ("milvus-lite==0.0",))


def test_worker_answers_bad_requests_with_a_message_and_stops_on_close() -> None:
    requests = io.StringIO('{"op": "nope"}\n\n{"op": "close"}\n{"op": "never read"}\n')
    replies = io.StringIO()
    lite_worker.serve(requests, replies, lite_worker.Worker())
    answers = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert answers == [{"ok": False, "error": "ValueError: unknown op 'nope'"}, {"ok": True}]


def test_header_names_machine_versions_command_and_both_clients(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ds = Dataset("tiny", "L2", rng.random((20, 128), dtype=np.float32), rng.random((3, 128), dtype=np.float32),
                 np.zeros((3, 10), dtype=np.int64), np.zeros((3, 10), dtype=np.float32))
    versions = {"python": "3.11", "milvus_lite": "2.5.1", "pymilvus": "2.5.18", "protobuf": "protobuf 7 (upb)",
                "numpy": "2", "server": [{"name": "milvus", "threads": 6}]}
    lines = header(parse_args(["--quick"]), ds, tmp_path, versions)
    starts = [line.split(":")[0].strip() for line in lines[1:]]
    assert starts == ["command", "machine", "ours", "lite", "mishards", "milvus", "data", "kinds"]
    text = "\n".join(lines)
    assert "milvus-lite 2.5.1" in text and "pymilvus 2.5.18" in text and "OMP_NUM_THREADS=1" in text
    assert "pymilvus 1.1.2" in text and "MilvusClient" in text and "20 x 128" in text
