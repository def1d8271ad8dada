"""Property tests of the boolean logic: random GeneralQuery trees and DSL documents (every occur, every operator,
every scalar type, nested up to several levels) over random columns, filtered by the vectorised evaluator and by
a row-by-row reference written from the documented semantics; plus normal-form and round-trip laws."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.hybrid.evaluate import evaluate
from coordinator.hybrid.from_wire import query_from_general, query_to_general
from coordinator.hybrid.tree import EVERYTHING, NOTHING, Bool, Comparison, Node, Range, Term, bool_of, normal, walk
from coordinator.hybrid.types import CompareOp
from milvus_wire import milvus_pb2 as pb
from mishards.hybrid_client import general_query
from tests.support.hybrid import INTEGER, SCALARS, dsl_row, proto_row, rows_of, schema

S = schema()
F32_MAX = 3.4028234663852886e38

# Stored values: boundaries and a few small values, so that terms and equalities hit.
STORED: dict[str, list[Any]] = {
    "i8": [-128, -127, -1, 0, 1, 2, 126, 127],
    "i16": [-32768, -1, 0, 1, 2, 32767],
    "i32": [-(2**31), -1, 0, 1, 2, 2**31 - 1],
    "i64": [-(2**63), -1, 0, 1, 2, 2**63 - 1],
    "b": [0, 1],
    "f": [0.0, -0.0, 0.1, 1 / 3, -2.2, -1.5, 2.5, F32_MAX, -F32_MAX, 1.401298464324817e-45],
    "d": [0.0, 0.1, -1.5, 2.5, 1e300, -1e300, 5e-324],
}
# Operands may also lie beyond a type's range.
OPERANDS: dict[str, list[Any]] = {
    **STORED,
    "i8": [*STORED["i8"], -129, 128, -1000, 10**6],
    "i16": [*STORED["i16"], -32769, 32768],
    "i32": [*STORED["i32"], -(2**31) - 1, 2**31],
    "f": [*STORED["f"], 1e39, -1e39, 1e300, 0.30000001192092896],
}
FIELDS = sorted(SCALARS)
Columns = tuple[int, dict[str, np.ndarray]]


def _column(name: str, values: list[Any]) -> np.ndarray:
    dtype = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64, "b": np.bool_,
             "f": np.float32, "d": np.float64}[name]
    return np.array(values, dtype=dtype)


@st.composite
def columns(draw: st.DrawFn) -> Columns:
    n = draw(st.integers(0, 24))
    out = {}
    for name in FIELDS:
        # a few distinct values per column, so that terms and equalities often hit
        chosen = draw(st.lists(st.sampled_from(STORED[name]), min_size=1, max_size=3, unique=True))
        pool = st.sampled_from(chosen)
        if name == "f":
            pool = pool | st.floats(width=32, allow_nan=False, allow_infinity=False)
        out[name] = _column(name, draw(st.lists(pool, min_size=n, max_size=n)))
    return n, out


def _pack(name: str, values: list[Any]) -> bytes:
    return struct.pack(f"<{len(values)}{'q' if name in INTEGER else 'd'}", *values)


@st.composite
def proto_leaf(draw: st.DrawFn, field: str | None = None) -> Any:
    name = field or draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        values = draw(st.lists(st.sampled_from(STORED[name]), max_size=3))
        num = draw(st.sampled_from([0, len(values)]))
        return pb.GeneralQuery(term_query=pb.TermQuery(field_name=name, values=_pack(name, values), value_num=num))
    ops = [pb.EQ, pb.NE] if name == "b" else [pb.LT, pb.LTE, pb.EQ, pb.GT, pb.GTE, pb.NE]
    exprs = []
    for _ in range(draw(st.integers(1, 3))):
        value = draw(st.sampled_from(OPERANDS[name]))
        text = str(int(value)) if name in INTEGER else repr(float(value))
        exprs.append(pb.CompareExpr(operator=draw(st.sampled_from(ops)), operand=text))
    return pb.GeneralQuery(range_query=pb.RangeQuery(field_name=name, operand=exprs))


def _boolean(occur: int, children: list[Any]) -> Any:
    return pb.GeneralQuery(boolean_query=pb.BooleanQuery(occur=occur, general_query=children))  # type: ignore[arg-type]


proto_tree = st.recursive(
    proto_leaf(),
    lambda kids: st.builds(_boolean, st.sampled_from([pb.INVALID, pb.MUST, pb.SHOULD, pb.MUST_NOT]),
                           st.lists(kids, max_size=3)),
    max_leaves=10,
)
VECTOR = pb.GeneralQuery(vector_query=pb.VectorQuery(field_name="v", topk=3,
                                                     records=[pb.RowRecord(float_data=[0.0, 1.0, 2.0, 3.0])]))


@st.composite
def proto_query(draw: st.DrawFn) -> Any:
    tree = draw(proto_tree)
    root = draw(st.sampled_from([pb.MUST, pb.INVALID]))
    where = draw(st.integers(0, 2))
    if where == 0:
        return _boolean(root, [tree, VECTOR])
    if where == 1:
        return _boolean(root, [VECTOR, tree])
    return _boolean(root, [tree, _boolean(pb.MUST, [_boolean(root, [VECTOR])])])


@settings(max_examples=300, deadline=None)
@given(proto_query(), columns())
def test_general_query_filter_matches_the_row_by_row_reference(gq: Any, data: Columns) -> None:
    n, cols = data
    q = query_from_general(gq, S)
    expected = [proto_row(gq, row) for row in rows_of(cols, n)]
    assert evaluate(q.filter, cols, n).tolist() == expected


@pytest.mark.parametrize("field", FIELDS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_each_leaf_matches_the_row_by_row_reference(field: str, data: st.DataObject) -> None:
    gq = _boolean(pb.MUST, [data.draw(proto_leaf(field)), VECTOR])
    n, cols = data.draw(columns())
    expected = [proto_row(gq, row) for row in rows_of(cols, n)]
    assert evaluate(query_from_general(gq, S).filter, cols, n).tolist() == expected


@settings(max_examples=150, deadline=None)
@given(proto_query())
def test_normal_form_is_stable_and_the_general_query_round_trips(gq: Any) -> None:
    q = query_from_general(gq, S)
    assert normal(q.filter) == q.filter
    assert bool_of(must=(q.filter,)) == q.filter
    assert query_from_general(query_to_general(q, S), S) == q


def _json_value(name: str, value: Any, draw: st.DrawFn) -> Any:
    if name == "b" and draw(st.booleans()):
        return bool(value)
    if name in ("f", "d") and float(value).is_integer() and abs(value) < 2**53 and draw(st.booleans()):
        return int(value)
    return value


@st.composite
def dsl_leaf(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        values = [_json_value(name, v, draw) for v in draw(st.lists(st.sampled_from(STORED[name]), max_size=3))]
        return {"term": {name: {"values": values} if draw(st.booleans()) else values}}
    ops = ["EQ", "NE"] if name == "b" else ["LT", "LTE", "EQ", "GT", "GTE", "NE"]
    chosen = draw(st.lists(st.sampled_from(ops), min_size=1, max_size=3, unique=True))
    spec = {(op if draw(st.booleans()) else op.lower()): _json_value(name, draw(st.sampled_from(OPERANDS[name])), draw)
            for op in chosen}
    return {"range": {name: spec}}


def _body(parts: dict[str, list[Any]], wrap: bool) -> dict[str, Any]:
    return {"bool": parts} if wrap else parts


dsl_tree = st.recursive(
    dsl_leaf(),
    lambda kids: st.builds(_body, st.dictionaries(st.sampled_from(["must", "should", "must_not"]),
                                                  st.lists(kids, max_size=3), min_size=1), st.booleans()),
    max_leaves=10,
)
DSL_VECTOR = {"vector": {"v": {"topk": 3, "query": [[0.0, 1.0, 2.0, 3.0]], "params": {"nprobe": 2}}}}


@st.composite
def dsl_query(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, list[Any]] = draw(st.dictionaries(st.sampled_from(["should", "must_not"]),
                                                      st.lists(dsl_tree, max_size=3)))
    must = draw(st.lists(dsl_tree, max_size=3))
    vector: Any = DSL_VECTOR if draw(st.booleans()) else {"must": [DSL_VECTOR]}
    must.insert(draw(st.integers(0, len(must))), vector)
    return {"bool": {"must": must, **body}}


@settings(max_examples=300, deadline=None)
@given(dsl_query(), columns())
def test_dsl_filter_matches_the_row_by_row_reference(doc: dict[str, Any], data: Columns) -> None:
    n, cols = data
    from coordinator.hybrid.dsl import query_from_dsl

    q = query_from_dsl(doc, S)
    expected = [dsl_row(doc, row) for row in rows_of(cols, n)]
    assert evaluate(q.filter, cols, n).tolist() == expected


@settings(max_examples=150, deadline=None)
@given(dsl_query())
def test_dsl_and_its_general_query_give_one_tree(doc: dict[str, Any]) -> None:
    from coordinator.hybrid.dsl import query_from_dsl

    q = query_from_dsl(doc, S)
    assert query_from_general(general_query(S, doc), S) == q
    assert normal(q.filter) == q.filter


@st.composite
def raw_leaf(draw: st.DrawFn) -> Term | Range:
    name = draw(st.sampled_from(FIELDS))
    if draw(st.booleans()):
        return Term(name, tuple(draw(st.lists(st.sampled_from(STORED[name]), max_size=3))))
    ops = [CompareOp.EQ, CompareOp.NE] if name == "b" else list(CompareOp)
    comparisons = draw(st.lists(st.builds(Comparison, st.sampled_from(ops), st.sampled_from(OPERANDS[name])),
                                min_size=1, max_size=3))
    return Range(name, tuple(comparisons))


raw_tree = st.recursive(
    raw_leaf() | st.sampled_from([EVERYTHING, NOTHING]),
    lambda kids: st.builds(Bool, st.lists(kids, max_size=3).map(tuple), st.lists(kids, max_size=3).map(tuple),
                           st.lists(kids, max_size=3).map(tuple)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(raw_tree, columns())
def test_the_normal_form_of_any_tree_keeps_its_meaning(tree: Node, data: Columns) -> None:
    n, cols = data
    canonical = normal(tree)
    assert evaluate(canonical, cols, n).tolist() == evaluate(tree, cols, n).tolist()
    assert normal(canonical) == canonical
    nodes = list(walk(canonical))
    assert (canonical in (NOTHING, EVERYTHING)) or (NOTHING not in nodes and EVERYTHING not in nodes)
