"""The vectorised filter: every operator on every type against hand-written masks, literal semantics (float32
rounding, operands beyond a type's range), boolean corner cases, memory-mapped columns, and the planner helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coordinator.hybrid.evaluate import (
    EXACT_DISTANCE_BUDGET,
    estimate_selectivity,
    evaluate,
    prefer_exact,
    selectivity,
    widened,
)
from coordinator.hybrid.tree import EVERYTHING, NOTHING, Bool, Comparison, Range, Term, fields_of
from coordinator.hybrid.types import CompareOp

LT, LTE, EQ, GT, GTE, NE = CompareOp.LT, CompareOp.LTE, CompareOp.EQ, CompareOp.GT, CompareOp.GTE, CompareOp.NE

COLUMNS: dict[str, np.ndarray] = {
    "i8": np.array([-128, -1, 0, 5, 127], dtype=np.int8),
    "i16": np.array([-32768, 7, 7, 300, 32767], dtype=np.int16),
    "i32": np.array([0, 1, 2, 3, 4], dtype=np.int32),
    "i64": np.array([-(2**63), -5, 0, 5, 2**63 - 1], dtype=np.int64),
    "b": np.array([True, False, True, False, False]),
    "f": np.array([0.1, -1.5, 2.5, 3.4028234663852886e38, 0.0], dtype=np.float32),
    "d": np.array([0.1, -1.5, 2.5, 1e300, -0.0], dtype=np.float64),
}
N = 5


def mask(node: Term | Range | Bool) -> list[bool]:
    return evaluate(node, COLUMNS, N).tolist()


def cmp(field: str, op: CompareOp, value: float) -> list[bool]:
    return mask(Range(field, (Comparison(op, value),)))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("i8", 5, {LT: [1, 1, 1, 0, 0], LTE: [1, 1, 1, 1, 0], EQ: [0, 0, 0, 1, 0], GT: [0, 0, 0, 0, 1],
               GTE: [0, 0, 0, 1, 1], NE: [1, 1, 1, 0, 1]}),
    ("i16", 7, {LT: [1, 0, 0, 0, 0], LTE: [1, 1, 1, 0, 0], EQ: [0, 1, 1, 0, 0], GT: [0, 0, 0, 1, 1],
                GTE: [0, 1, 1, 1, 1], NE: [1, 0, 0, 1, 1]}),
    ("i32", 2, {LT: [1, 1, 0, 0, 0], LTE: [1, 1, 1, 0, 0], EQ: [0, 0, 1, 0, 0], GT: [0, 0, 0, 1, 1],
                GTE: [0, 0, 1, 1, 1], NE: [1, 1, 0, 1, 1]}),
    ("i64", 2**63 - 1, {LT: [1, 1, 1, 1, 0], LTE: [1] * 5, EQ: [0, 0, 0, 0, 1], GT: [0] * 5,
                        GTE: [0, 0, 0, 0, 1], NE: [1, 1, 1, 1, 0]}),
    ("f", 0.1, {LT: [0, 1, 0, 0, 1], LTE: [1, 1, 0, 0, 1], EQ: [1, 0, 0, 0, 0], GT: [0, 0, 1, 1, 0],
                GTE: [1, 0, 1, 1, 0], NE: [0, 1, 1, 1, 1]}),
    ("d", 0.0, {LT: [0, 1, 0, 0, 0], LTE: [0, 1, 0, 0, 1], EQ: [0, 0, 0, 0, 1], GT: [1, 0, 1, 1, 0],
                GTE: [1, 0, 1, 1, 1], NE: [1, 1, 1, 1, 0]}),
])
def test_every_operator(field: str, value: float, expected: dict[CompareOp, list[int]]) -> None:
    for op in CompareOp:
        assert cmp(field, op, value) == [bool(x) for x in expected[op]], op.name


def test_bool_field() -> None:
    assert cmp("b", EQ, 1) == [True, False, True, False, False]
    assert cmp("b", NE, 1) == [False, True, False, True, True]
    assert mask(Term("b", (0,))) == [False, True, False, True, True]
    assert mask(Term("b", (0, 1))) == [True] * 5


def test_eq_is_not_ne_and_several_operands_are_anded() -> None:
    assert cmp("i32", EQ, 3) != cmp("i32", NE, 3)
    assert mask(Range("i32", (Comparison(GTE, 1), Comparison(LT, 4), Comparison(NE, 2)))) == [0, 1, 0, 1, 0]
    assert mask(Range("i32", (Comparison(LT, 0), Comparison(GT, 10)))) == [False] * 5


def test_terms() -> None:
    assert mask(Term("i16", (7, 300, 7))) == [False, True, True, True, False]
    assert mask(Term("i8", ())) == [False] * 5
    assert mask(Term("d", (2.5, 1e300))) == [False, False, True, True, False]
    assert mask(Term("i64", (-(2**63),))) == [True, False, False, False, False]


def test_float_literals_match_what_was_inserted() -> None:
    # 0.1 stored in a FLOAT field is float32(0.1); the literal 0.1 is rounded the same way
    assert mask(Term("f", (0.1,))) == [True, False, False, False, False]
    assert mask(Term("f", (0.1, 2.5))) == [True, False, True, False, False]
    assert cmp("f", LT, 0.1)[0] is False and cmp("f", LTE, 0.1)[0] is True
    # the DOUBLE field holds 0.1 exactly as the literal
    assert cmp("d", EQ, 0.1) == [True, False, False, False, False]


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("f", 1e39, {LT: True, LTE: True, NE: True, GT: False, GTE: False, EQ: False}),
    ("f", -1e300, {LT: False, LTE: False, NE: True, GT: True, GTE: True, EQ: False}),
    ("i8", 1000, {LT: True, LTE: True, NE: True, GT: False, GTE: False, EQ: False}),
    ("i8", -129, {LT: False, LTE: False, NE: True, GT: True, GTE: True, EQ: False}),
    ("i16", 2**40, {LT: True, LTE: True, NE: True, GT: False, GTE: False, EQ: False}),
    ("i32", -(2**63), {LT: False, LTE: False, NE: True, GT: True, GTE: True, EQ: False}),
])
def test_operands_beyond_the_type_keep_their_meaning(field: str, value: float, expected: dict[CompareOp, bool]) -> None:
    for op in CompareOp:
        assert cmp(field, op, value) == [expected[op]] * 5, op.name


def test_boolean_combinations() -> None:
    a = Term("i32", (1, 2))
    b = Range("i8", (Comparison(GTE, 0),))
    assert mask(Bool(must=(a, b))) == [False, False, True, False, False]
    assert mask(Bool(should=(a, b))) == [False, True, True, True, True]
    assert mask(Bool(must_not=(a, b))) == [True, False, False, False, False]
    assert mask(Bool(should=(a, b))) != mask(Bool(must_not=(a, b)))
    assert mask(Bool(must=(a,), should=(b, Term("i32", (0,))), must_not=(Term("i16", (7,)),))) == [False] * 5
    assert mask(Bool(must=(Bool(should=(a, Term("i32", (4,)))),), must_not=(Term("i32", (2,)),))) == \
        [False, True, False, False, True]
    assert mask(EVERYTHING) == [True] * 5 and mask(NOTHING) == [False] * 5


def test_no_rows() -> None:
    empty = {k: v[:0] for k, v in COLUMNS.items()}
    assert evaluate(Bool(must=(Term("i8", (1,)),)), empty, 0).shape == (0,)
    assert evaluate(EVERYTHING, {}, 0).shape == (0,)
    assert selectivity(np.zeros(0, dtype=bool)) == 0.0


def test_memory_mapped_columns(tmp_path: Path) -> None:
    for name, column in COLUMNS.items():
        np.save(tmp_path / f"{name}.npy", column)
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in COLUMNS}
    tree = Bool(must=(Range("f", (Comparison(GT, 0.0),)),), should=(Term("b", (1,)), Term("i16", (300,))))
    result = evaluate(tree, mapped, N)
    assert result.tolist() == mask(tree) == [True, False, True, True, False]
    assert isinstance(result, np.ndarray) and not isinstance(result, np.memmap)


def test_column_length_must_match() -> None:
    with pytest.raises(ValueError, match="column i8 has 5 rows, expected 4"):
        evaluate(Term("i8", (1,)), COLUMNS, 4)


def test_fields_of() -> None:
    tree = Bool(must=(Term("a", (1,)),), should=(Range("b", (Comparison(LT, 1),)), Bool(must_not=(Term("c", ()),))))
    assert fields_of(tree) == {"a", "b", "c"}
    assert fields_of(EVERYTHING) == frozenset()


def test_selectivity_and_its_estimate() -> None:
    rows = 100_000
    column = np.arange(rows, dtype=np.int64) % 100
    tree = Bool(must=(Range("x", (Comparison(LT, 10),)),))
    exact = selectivity(evaluate(tree, {"x": column}, rows))
    assert exact == 0.1
    assert abs(estimate_selectivity(tree, {"x": column}, rows) - 0.1) < 0.02
    small = column[:1000]
    assert estimate_selectivity(tree, {"x": small}, 1000) == selectivity(evaluate(tree, {"x": small}, 1000))


def test_prefer_exact() -> None:
    assert prefer_exact(0, 1_000_000, 10, 128)
    assert prefer_exact(EXACT_DISTANCE_BUDGET // 128, 1_000_000, 10, 128)
    assert not prefer_exact(EXACT_DISTANCE_BUDGET // 128 + 1, 200_000, 10, 128)
    assert prefer_exact(60_000, 1_000_000, 10, 128)  # 6 % of the segment
    assert not prefer_exact(80_000, 1_000_000, 10, 128)
    assert prefer_exact(50, 60, 100, 32768)  # fewer than topk


def test_widened() -> None:
    assert widened(16, 0.5, 256) == 32
    assert widened(16, 0.01, 256) == 256
    assert widened(16, 1.0, 256) == 16
    assert widened(16, 0.0, 256) == 256
    assert widened(300, 0.5, 256) == 300  # never narrower than asked
