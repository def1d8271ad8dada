"""The saved 1M-row figures in the repository (``benchmarks/results/scale``) are complete and readable, and the
capacity plan that docs/CAPACITY.md quotes is computed from them on a fresh clone: every kind of scale_bench, both
data sets' inserts, build and worker memory of every float kind, and no worker cost inferred."""

from __future__ import annotations

import pytest

from benchmarks import capacity_plan
from benchmarks.scale_memory_values import read_all
from benchmarks.scale_results import RESULTS_DIR, read_results
from benchmarks.scale_specs import BINARY_KINDS, FLOAT_KINDS

ROWS = 1_000_000


def test_every_kind_and_both_inserts_are_saved() -> None:
    inserts, kinds = read_results(RESULTS_DIR, ROWS)
    assert {i.data for i in inserts} == {"float", "binary"}
    assert all(i.vectors_per_s > 0 for i in inserts)
    assert {k.kind for k in kinds} == set(FLOAT_KINDS) | set(BINARY_KINDS)
    for k in kinds:
        assert k.rows == ROWS and k.points, k.kind
        assert all(0 < p.recall <= 1 and p.qps100 > 0 for p in k.points), k.kind


def test_build_and_worker_memory_of_every_float_kind_are_saved() -> None:
    builds, readers = read_all(RESULTS_DIR / "memory")
    assert {b.kind for b in builds if b.rows == ROWS} >= set(FLOAT_KINDS) - {"FLAT"}
    served = {(r.kind, r.workers) for r in readers if r.rows == ROWS}
    assert {(kind, workers) for kind in FLOAT_KINDS for workers in (1, 2)} <= served


def test_the_plan_is_computed_from_the_saved_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert capacity_plan.main(["--reader-memory-gib", "56"]) == 0
    out = capsys.readouterr().out
    flat = out[out.index("-- FLAT "):out.index("\n-- ", out.index("-- FLAT ") + 1)]
    assert "builds 2 x 0 B/row (nothing built)" in flat  # an exact index costs the writer no build memory
    table = [line for line in out.splitlines() if line.startswith("| ")][1:]
    assert {line.split("|")[1].strip() for line in table} == set(FLOAT_KINDS)
    assert all("(measured)" in line for line in table), table
