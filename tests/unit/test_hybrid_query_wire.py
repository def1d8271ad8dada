"""``GeneralQuery`` / ``HSearchParam`` into the canonical tree: every operator and occur, nested trees, every
malformed tree with its exact refusal, the DSL entry in ``extra_params`` and its precedence, and the way back."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.from_wire import query_from_general, query_from_search_param, query_to_general
from coordinator.hybrid.tree import EVERYTHING, NOTHING, Bool, Comparison, Range, Term
from coordinator.hybrid.types import CompareOp
from coordinator.model import MAX_TOPK
from milvus_wire import milvus_pb2 as pb
from tests.support.hybrid import schema

S = schema()
VEC = [1.0, 2.0, 3.0, 4.0]


def vq(topk: int = 5, field: str = "v", rows: list[list[float]] | None = None, params: str | None = None) -> Any:
    pairs = [] if params is None else [pb.KeyValuePair(key="params", value=params)]
    records = [pb.RowRecord(float_data=r) for r in (rows if rows is not None else [VEC])]
    return pb.GeneralQuery(vector_query=pb.VectorQuery(field_name=field, records=records, topk=topk,
                                                       extra_params=pairs))


def term(field: str, *values: float, num: int | None = None, raw: bytes | None = None) -> Any:
    fmt = "q" if field in {"i8", "i16", "i32", "i64", "b"} else "d"
    packed = raw if raw is not None else struct.pack(f"<{len(values)}{fmt}", *values)
    return pb.GeneralQuery(term_query=pb.TermQuery(field_name=field, values=packed,
                                                   value_num=len(values) if num is None else num))


def rng(field: str, *ops: tuple[int, str]) -> Any:
    exprs = [pb.CompareExpr(operator=op, operand=text) for op, text in ops]  # type: ignore[arg-type]
    return pb.GeneralQuery(range_query=pb.RangeQuery(field_name=field, operand=exprs))


def node(occur: int, *children: Any) -> Any:
    return pb.GeneralQuery(boolean_query=pb.BooleanQuery(occur=occur, general_query=list(children)))  # type: ignore[arg-type]


def build(gq: Any) -> Any:
    return query_from_general(gq, S)


def refusal(gq: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        build(gq)
    return info.value


A = Term("i32", (1, 2))
B = Range("d", (Comparison(CompareOp.GT, 0.5),))
C = Term("i8", (3,))
D = Range("i64", (Comparison(CompareOp.LTE, 9),))
E = Term("b", (1,))


def a() -> Any:
    return term("i32", 1, 2)


def b() -> Any:
    return rng("d", (pb.GT, "0.5"))


def c() -> Any:
    return term("i8", 3)


def d() -> Any:
    return rng("i64", (pb.LTE, "9"))


def e() -> Any:
    return term("b", 1)


def test_the_sdk_shape() -> None:
    q = build(node(pb.MUST, a(), b(), vq(topk=7, params='{"nprobe": 16}')))
    assert q.filter == Bool(must=(A, B))
    assert q.vector.field == "v" and q.vector.topk == 7 and dict(q.vector.params) == {"nprobe": 16}
    assert not q.vector.exact and q.vector.nq == 1 and q.vector.vectors.dtype == np.float32
    assert q.vector.vectors.tolist() == [VEC]


@pytest.mark.parametrize("occur", [pb.MUST, pb.INVALID])
def test_must_and_invalid_are_and(occur: int) -> None:
    assert build(node(occur, a(), node(occur, b(), c()), vq())).filter == Bool(must=(A, B, C))


def test_should_and_must_not() -> None:
    q = build(node(pb.MUST, a(), node(pb.SHOULD, b(), c()), node(pb.MUST_NOT, d(), e()), vq()))
    assert q.filter == Bool(must=(A,), should=(B, C), must_not=(D, E))


def test_groupings_of_the_same_query_give_the_same_tree() -> None:
    flat = build(node(pb.MUST, a(), node(pb.SHOULD, b(), c()), node(pb.MUST_NOT, d()), vq()))
    wrapped = build(node(pb.INVALID, node(pb.MUST, a(), vq()), node(pb.SHOULD, b(), c()),
                         node(pb.MUST_NOT, d())))
    deep = build(node(pb.MUST, node(pb.MUST, node(pb.MUST, a()), node(pb.SHOULD, node(pb.SHOULD, b()), c())),
                      node(pb.MUST_NOT, node(pb.SHOULD, d())), node(pb.MUST, vq())))
    assert flat.filter == wrapped.filter == deep.filter == Bool(must=(A,), should=(B, C), must_not=(D,))


def test_nested_trees_keep_their_meaning() -> None:
    q = build(node(pb.MUST, node(pb.SHOULD, node(pb.MUST, a(), b()), c()), node(pb.SHOULD, d(), e()),
                   node(pb.MUST_NOT, node(pb.MUST, a(), c())), vq()))
    assert q.filter == Bool(must=(Bool(should=(D, E)),), should=(Bool(must=(A, B)), C),
                            must_not=(Bool(must=(A, C)),))


def test_a_single_should_alternative_is_a_must() -> None:
    assert build(node(pb.MUST, node(pb.SHOULD, a()), vq())).filter == Bool(must=(A,))


def test_bare_vector_query_and_vector_only_trees_pass_every_row() -> None:
    assert build(vq()).filter == EVERYTHING
    assert build(node(pb.MUST, vq())).filter == EVERYTHING
    assert build(node(pb.MUST, node(pb.MUST), node(pb.MUST_NOT), vq())).filter == EVERYTHING


def test_empty_should_passes_no_row() -> None:
    assert build(node(pb.MUST, a(), node(pb.SHOULD), vq())).filter == NOTHING
    assert build(node(pb.MUST, node(pb.MUST_NOT, node(pb.MUST)), vq())).filter == NOTHING


def test_a_leaf_at_the_root_level() -> None:
    assert build(node(pb.MUST, c(), vq())).filter == Bool(must=(C,))


@pytest.mark.parametrize(("field", "op", "text", "value"), [
    ("i8", pb.LT, "-128", -128), ("i16", pb.LTE, "+7", 7), ("i32", pb.EQ, " 12 ", 12),
    ("i64", pb.GT, "-9223372036854775808", -(2**63)), ("i64", pb.GTE, "9223372036854775807", 2**63 - 1),
    ("i8", pb.NE, "1000", 1000), ("b", pb.EQ, "1", 1), ("b", pb.NE, "0", 0),
    ("f", pb.LT, "0.1", 0.1), ("f", pb.GT, "1e39", 1e39), ("d", pb.GTE, "-2.5E-3", -2.5e-3),
    ("d", pb.LTE, "7", 7.0), ("d", pb.EQ, ".5", 0.5), ("d", pb.NE, "3.", 3.0),
])
def test_every_operator_and_operand_form(field: str, op: int, text: str, value: float) -> None:
    q = build(node(pb.MUST, rng(field, (op, text)), vq()))
    assert q.filter == Bool(must=(Range(field, (Comparison(CompareOp(op), value),)),))
    assert type(q.filter.must[0].comparisons[0].value) is type(value)


def test_several_operands_are_kept_in_order() -> None:
    q = build(node(pb.MUST, rng("i32", (pb.GTE, "1"), (pb.LT, "10"), (pb.NE, "5")), vq()))
    assert q.filter.must == (Range("i32", (Comparison(CompareOp.GTE, 1), Comparison(CompareOp.LT, 10),
                                           Comparison(CompareOp.NE, 5))),)


@pytest.mark.parametrize(("gq", "values"), [
    (term("i8", -128, 127), (-128, 127)), (term("b", 0, 1), (0, 1)), (term("f", 0.1, -2.0), (0.1, -2.0)),
    (term("d", 1e300), (1e300,)), (term("i64", 5, num=0), (5,)), (term("i32"), ()),
    (term("i16", 3, 3), (3, 3)),
])
def test_term_values(gq: Any, values: tuple[float, ...]) -> None:
    q = build(node(pb.MUST, gq, vq()))
    assert q.filter.must[0].values == values


TOO_DEEP = vq()
for _ in range(33):
    TOO_DEEP = node(pb.MUST, TOO_DEEP)


@pytest.mark.parametrize(("gq", "code", "reason"), [
    (node(pb.MUST, a()), ErrorCode.ILLEGAL_ARGUMENT,
     "The query has no vector query: a hybrid search needs exactly one."),
    (a(), ErrorCode.ILLEGAL_ARGUMENT, "The query has no vector query: a hybrid search needs exactly one."),
    (node(pb.MUST, vq(), node(pb.MUST, vq())), ErrorCode.ILLEGAL_ARGUMENT,
     "The query has 2 vector queries: a hybrid search needs exactly one."),
    (node(pb.MUST, node(pb.SHOULD, a(), vq())), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a SHOULD clause: it may sit only under MUST clauses (a filter never decides "
     "which vectors are searched for)."),
    (node(pb.MUST_NOT, vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a MUST_NOT clause: it may sit only under MUST clauses (a filter never decides "
     "which vectors are searched for)."),
    (node(pb.MUST, node(pb.SHOULD, node(pb.MUST, vq()))), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a SHOULD clause: it may sit only under MUST clauses (a filter never decides "
     "which vectors are searched for)."),
    (pb.GeneralQuery(), ErrorCode.ILLEGAL_ARGUMENT, "A GeneralQuery of the query is empty: it must set one of "
     "boolean_query, term_query, range_query, vector_query."),
    (node(pb.MUST, pb.GeneralQuery(), vq()), ErrorCode.ILLEGAL_ARGUMENT, "A GeneralQuery of the query is empty: "
     "it must set one of boolean_query, term_query, range_query, vector_query."),
    (node(7, vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid occur 7 of a boolean query: INVALID (0), MUST (1), SHOULD (2) or MUST_NOT (3)."),
    (node(pb.MUST, term("nope", 1), vq()), ErrorCode.ILLEGAL_ARGUMENT, "Field nope does not exist in collection coll."),
    (node(pb.MUST, rng("", (pb.LT, "1")), vq()), ErrorCode.ILLEGAL_ARGUMENT, "A range query needs a field name."),
    (node(pb.MUST, term("v", 1.0), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Field v is the vector field: a term query needs a scalar field."),
    (node(pb.MUST, rng("v", (pb.LT, "1")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Field v is the vector field: a range query needs a scalar field."),
    (node(pb.MUST, rng("i32"), vq()), ErrorCode.ILLEGAL_ARGUMENT, "Range query on field i32 has no comparison."),
    (node(pb.MUST, rng("i32", (9, "1")), vq()), ErrorCode.ILLEGAL_ARGUMENT, "Invalid compare operator 9 in a "
     "range query on field i32: LT (0), LTE (1), EQ (2), GT (3), GTE (4) or NE (5)."),
    (node(pb.MUST, rng("i32", (pb.LT, "abc")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 'abc' of field i32 (INT32) is not an integer."),
    (node(pb.MUST, rng("i32", (pb.LT, "1.5")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand '1.5' of field i32 (INT32) is not an integer."),
    (node(pb.MUST, rng("i32", (pb.LT, "")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand '' of field i32 (INT32) is not an integer."),
    (node(pb.MUST, rng("i64", (pb.LT, "9223372036854775808")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 9223372036854775808 of field i64 is out of the int64 range."),
    (node(pb.MUST, rng("d", (pb.LT, "nan")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 'nan' of field d (DOUBLE) is not a number."),
    (node(pb.MUST, rng("d", (pb.LT, "inf")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 'inf' of field d (DOUBLE) is not a number."),
    (node(pb.MUST, rng("d", (pb.LT, "1e999")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand inf of field d is not a finite number."),
    (node(pb.MUST, rng("f", (pb.LT, "0x10")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand '0x10' of field f (FLOAT) is not a number."),
    (node(pb.MUST, rng("b", (pb.LT, "1")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Range query on BOOL field b: only EQ and NE compare booleans, not LT."),
    (node(pb.MUST, rng("b", (pb.EQ, "2")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 2 of BOOL field b must be 0 or 1."),
    (node(pb.MUST, term("i32", 1, 2, num=3), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term query on field i32: value_num is 3 but values holds 2 value(s)."),
    (node(pb.MUST, term("i32", raw=b"\0" * 12), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term query on field i32: values holds 12 bytes, not a multiple of 8 (one 8-byte value each)."),
    (node(pb.MUST, term("i8", 128), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 128 is out of range for field i8 (INT8: -128 ~ 127)."),
    (node(pb.MUST, term("b", 2), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 2 is out of range for field b (BOOL: 0 ~ 1)."),
    (node(pb.MUST, term("f", 1e39), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 1e+39 is out of range for field f (FLOAT)."),
    (node(pb.MUST, term("d", float("nan")), vq()), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value nan of field d is not a finite number."),
    (node(pb.MUST, vq(field="w")), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query names field w; the vector field of collection coll is v."),
    (node(pb.MUST, vq(field="")), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query names field (empty); the vector field of collection coll is v."),
    (node(pb.MUST, vq(topk=0)), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: 0. The topk must be within the range of 1 ~ {MAX_TOPK}."),
    (node(pb.MUST, vq(topk=MAX_TOPK + 1)), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: {MAX_TOPK + 1}. The topk must be within the range of 1 ~ {MAX_TOPK}."),
    (node(pb.MUST, vq(topk=MAX_TOPK, rows=[VEC] * 200)), ErrorCode.ILLEGAL_TOPK,
     f"Invalid nq 200 topk {MAX_TOPK}. The search result size may exceed the RPC transmission limit."),
    (node(pb.MUST, vq(rows=[])), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector array is empty. Make sure you have entered vector records."),
    (node(pb.MUST, vq(rows=[[1.0, 2.0]])), ErrorCode.ILLEGAL_DIMENSION,
     "The vector dimension must be equal to the collection dimension."),
    (node(pb.MUST, vq(rows=[[1.0, float("inf"), 0.0, 0.0]])), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector data must not contain NaN or infinity values."),
    (node(pb.MUST, vq(params="{nprobe}")), ErrorCode.ILLEGAL_ARGUMENT, None),
    (node(pb.MUST, vq(params='{"exact": 1}')), ErrorCode.ILLEGAL_ARGUMENT,
     'Invalid search params: "exact" must be true or false.'),
    (TOO_DEEP, ErrorCode.ILLEGAL_ARGUMENT, "The query is nested deeper than 32 levels."),
])
def test_refusals(gq: Any, code: ErrorCode, reason: str | None) -> None:
    err = refusal(gq)
    assert err.code == code
    if reason is None:
        assert err.reason.startswith("Invalid search params: not valid JSON")
    else:
        assert err.reason == reason


def test_the_first_error_in_tree_order_is_reported() -> None:
    err = refusal(node(pb.MUST, term("nope", 1), rng("i32", (pb.LT, "x")), vq(topk=0)))
    assert err.reason == "Field nope does not exist in collection coll."


def test_exact_is_taken_out_of_the_params() -> None:
    q = build(node(pb.MUST, vq(params='{"nprobe": 4, "exact": true}')))
    assert q.vector.exact and dict(q.vector.params) == {"nprobe": 4}
    q = build(node(pb.MUST, vq(params='{"exact": false}')))
    assert not q.vector.exact and dict(q.vector.params) == {}


def test_binary_collection_vectors() -> None:
    s = schema(dim=16, vector_params='{"metric_type": 4}')
    gq = pb.GeneralQuery(vector_query=pb.VectorQuery(field_name="v", topk=2, records=[
        pb.RowRecord(binary_data=b"\x01\x80"), pb.RowRecord(binary_data=b"\xff\x00")]))
    q = query_from_general(gq, s)
    assert q.vector.vectors.dtype == np.uint8 and q.vector.vectors.tolist() == [[1, 128], [255, 0]]
    bad = pb.GeneralQuery(vector_query=pb.VectorQuery(field_name="v", topk=2, records=[
        pb.RowRecord(binary_data=b"\x01")]))
    with pytest.raises(MilvusError) as info:
        query_from_general(bad, s)
    assert info.value.code == ErrorCode.ILLEGAL_DIMENSION


@pytest.mark.parametrize("gq", [
    node(pb.MUST, a(), vq(params='{"nprobe": 3, "exact": true}')),
    node(pb.MUST, node(pb.SHOULD, node(pb.MUST, a(), b()), c()), node(pb.SHOULD, d(), e()),
         node(pb.MUST_NOT, node(pb.MUST, a(), c())), vq(rows=[VEC, VEC])),
    node(pb.MUST, node(pb.SHOULD), vq()),
    vq(),
    node(pb.MUST, rng("f", (pb.GT, "1e39"), (pb.LT, "0.1")), term("d", 1e-300), term("i32"), vq()),
])
def test_back_to_general_query_and_again(gq: Any) -> None:
    q = build(gq)
    assert query_from_general(query_to_general(q, S), S) == q


DSL = {"bool": {"must": [{"range": {"i32": {"GT": 1}}},
                         {"vector": {"v": {"topk": 3, "query": [VEC], "params": {"nprobe": 2}}}}]}}
EXPECTED = Bool(must=(Range("i32", (Comparison(CompareOp.GT, 1),)),))


def _param(general: Any = None, dsl: Any = None, extra: list[tuple[str, str]] | None = None) -> Any:
    pairs = [pb.KeyValuePair(key=k, value=v) for k, v in extra or []]
    if dsl is not None:
        pairs.append(pb.KeyValuePair(key="dsl", value=dsl if isinstance(dsl, str) else json.dumps(dsl)))
    p = pb.HSearchParam(collection_name="coll", extra_params=pairs)
    if general is not None:
        p.general_query.CopyFrom(general)
    return p


def test_search_param_without_dsl_reads_the_general_query() -> None:
    q = query_from_search_param(_param(node(pb.MUST, a(), vq()), extra=[("params", '{"x": 1}')]), S)
    assert q.filter == Bool(must=(A,))


def test_search_param_with_dsl_only() -> None:
    q = query_from_search_param(_param(dsl=DSL), S)
    assert q.filter == EXPECTED and q.vector.topk == 3 and dict(q.vector.params) == {"nprobe": 2}


def test_dsl_vectors_carried_by_a_bare_vector_query() -> None:
    dsl = json.loads(json.dumps(DSL))
    del dsl["bool"]["must"][1]["vector"]["v"]["query"]
    carrier = vq(topk=0, rows=[VEC, [0.0, 0.0, 0.0, 1.0]])
    q = query_from_search_param(_param(carrier, dsl), S)
    assert q.filter == EXPECTED and q.vector.nq == 2 and q.vector.topk == 3
    carrier.vector_query.field_name = ""
    assert query_from_search_param(_param(carrier, dsl), S) == q


@pytest.mark.parametrize(("general", "dsl", "reason"), [
    (None, None, "HSearchParam has no query: set general_query, or a dsl in extra_params."),
    (pb.GeneralQuery(), None, "HSearchParam has no query: set general_query, or a dsl in extra_params."),
    (node(pb.MUST, vq()), DSL, "HSearchParam has both a general_query and a dsl: send one of them (beside a dsl, "
     "general_query may only be a VectorQuery carrying the query vectors)."),
    (vq(topk=0), DSL, "The query vectors are given twice: in the dsl and in the VectorQuery."),
    (vq(topk=3), DSL, "Beside a dsl, the VectorQuery carries only the query vectors: topk and params belong to "
     "the dsl's vector clause."),
    (vq(topk=0, params="{}"), DSL, "Beside a dsl, the VectorQuery carries only the query vectors: topk and params "
     "belong to the dsl's vector clause."),
    (None, "{not json", None),
    (None, '{"bool": {"must": [], "must": []}}', None),
    (None, '{"bool": {"must": [{"range": {"d": {"GT": NaN}}}]}}', None),
])
def test_search_param_refusals(general: Any, dsl: Any, reason: str | None) -> None:
    with pytest.raises(MilvusError) as info:
        query_from_search_param(_param(general, dsl), S)
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT
    if reason is None:
        assert info.value.reason.startswith("Invalid dsl: not valid JSON")
    else:
        assert info.value.reason == reason


def test_carrier_field_must_be_the_vector_field() -> None:
    dsl = json.loads(json.dumps(DSL))
    del dsl["bool"]["must"][1]["vector"]["v"]["query"]
    with pytest.raises(MilvusError) as info:
        query_from_search_param(_param(vq(topk=0, field="w"), dsl), S)
    assert info.value.reason == "The vector query names field w; the vector field of collection coll is v."
    with pytest.raises(MilvusError) as info:
        query_from_search_param(_param(None, dsl), S)
    assert info.value.reason == "The vector clause on field v has no query vectors."
