"""The JSON DSL (0.11 dialect) into the canonical tree: the documented examples, every clause form, the same
tree as the equivalent GeneralQuery, and every malformed document with its exact refusal."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.dsl import query_from_dsl
from coordinator.hybrid.from_wire import query_from_general
from coordinator.hybrid.tree import EVERYTHING, NOTHING, Bool, Comparison, Range, Term
from coordinator.hybrid.types import CompareOp
from coordinator.model import MAX_TOPK
from mishards.hybrid_client import general_query
from tests.support.hybrid import schema

S = schema()
VEC = [0.1, 0.2, 0.3, 0.4]


def vector(topk: Any = 10, **extra: Any) -> dict[str, Any]:
    return {"vector": {"v": {"topk": topk, "query": [VEC], **extra}}}


def query(**body: Any) -> dict[str, Any]:
    return {"bool": body}


def build(doc: Any) -> Any:
    return query_from_dsl(doc, S)


def refusal(doc: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        build(doc)
    return info.value


def test_the_simple_example() -> None:
    q = build(query(must=[{"term": {"i32": {"values": [1, 2, 5]}}}, {"range": {"d": {"GT": 1, "LT": 100}}},
                          vector(metric_type="L2", params={"nprobe": 10})]))
    assert q.filter == Bool(must=(Term("i32", (1, 2, 5)),
                                  Range("d", (Comparison(CompareOp.GT, 1.0), Comparison(CompareOp.LT, 100.0)))))
    assert q.vector.topk == 10 and dict(q.vector.params) == {"nprobe": 10} and not q.vector.exact
    assert q.vector.vectors.dtype == np.float32 and np.allclose(q.vector.vectors, [VEC])


def test_the_wrapped_should_and_must_not_example() -> None:
    q = build(query(must=[
        {"must": [{"should": [{"term": {"i32": [1, 2, 5]}}, {"range": {"d": {"gte": 8.0}}}]}]},
        {"must": [{"must_not": [{"term": {"i8": {"values": [0]}}}]}]},
        {"must": [vector()]},
    ]))
    assert q.filter == Bool(should=(Term("i32", (1, 2, 5)), Range("d", (Comparison(CompareOp.GTE, 8.0),))),
                            must_not=(Term("i8", (0,)),))


def test_unwrapped_groups_mean_the_same() -> None:
    wrapped = build(query(must=[{"must": [{"should": [{"term": {"i32": [1]}}, {"term": {"i8": [2]}}]}]},
                                {"must": [{"must_not": [{"term": {"i16": [3]}}]}]}, vector()]))
    direct = build(query(must=[vector()], should=[{"term": {"i32": [1]}}, {"term": {"i8": [2]}}],
                         must_not=[{"term": {"i16": [3]}}]))
    mixed = build(query(must=[{"should": [{"term": {"i32": [1]}}, {"term": {"i8": [2]}}]}, vector(),
                              {"bool": {"must_not": [{"term": {"i16": [3]}}]}}]))
    assert wrapped.filter == direct.filter == mixed.filter


@pytest.mark.parametrize(("op", "expected"), [(k, v) for k, v in
                                              {"GT": CompareOp.GT, "gte": CompareOp.GTE, "LT": CompareOp.LT,
                                               "lte": CompareOp.LTE, "EQ": CompareOp.EQ, "ne": CompareOp.NE}.items()])
def test_every_range_operator(op: str, expected: CompareOp) -> None:
    q = build(query(must=[{"range": {"i64": {op: -3}}}, vector()]))
    assert q.filter.must == (Range("i64", (Comparison(expected, -3),)),)


@pytest.mark.parametrize(("field", "given", "values"), [
    ("b", [True, False, 1, 0], (1, 0, 1, 0)), ("d", [1, 2.5], (1.0, 2.5)), ("f", [-0.5, 7], (-0.5, 7.0)),
    ("i8", [-128, 127], (-128, 127)), ("i64", [2**63 - 1], (2**63 - 1,)), ("i16", [], ()),
])
def test_term_values(field: str, given: list[Any], values: tuple[Any, ...]) -> None:
    q = build(query(must=[{"term": {field: given}}, vector()]))
    assert q.filter.must == (Term(field, values),)
    assert [type(v) for v in q.filter.must[0].values] == [type(v) for v in values]


def test_bool_operands() -> None:
    q = build(query(must=[{"range": {"b": {"EQ": True, "NE": 0}}}, vector()]))
    assert q.filter.must == (Range("b", (Comparison(CompareOp.EQ, 1), Comparison(CompareOp.NE, 0))),)


def test_empty_should_passes_nothing_and_vector_only_passes_everything() -> None:
    assert build(query(must=[vector()], should=[])).filter == NOTHING
    assert build(query(must=[vector()])).filter == EVERYTHING
    assert build(query(must=[vector()], must_not=[])).filter == EVERYTHING


def test_vector_clause_options() -> None:
    q = build(query(must=[vector(topk=3, metric_type="L2", params={"nprobe": 8, "exact": True})]))
    assert q.vector.exact and dict(q.vector.params) == {"nprobe": 8} and q.vector.topk == 3
    assert build(query(must=[vector(metric_type=1, params=None)])).vector.params == {}
    q = build(query(must=[{"vector": {"v": {"topk": 1, "query": [VEC, [1, 2, 3, 4]]}}}]))
    assert q.vector.nq == 2 and q.vector.vectors.tolist()[1] == [1.0, 2.0, 3.0, 4.0]


def test_binary_collection_queries() -> None:
    s = schema(dim=16, vector_params='{"metric_type": "HAMMING"}')
    q = query_from_dsl(query(must=[{"vector": {"v": {"topk": 1, "query": [[1, 255]], "metric_type": "HAMMING"}}}]), s)
    assert q.vector.vectors.dtype == np.uint8 and q.vector.vectors.tolist() == [[1, 255]]
    with pytest.raises(MilvusError) as info:
        query_from_dsl(query(must=[{"vector": {"v": {"topk": 1, "query": [[1, 256]]}}}]), s)
    assert info.value.reason == "Invalid query vectors: a binary vector is a list of byte values 0 ~ 255"


@pytest.mark.parametrize("doc", [
    query(must=[{"term": {"i32": [1, 2]}}, {"range": {"d": {"GT": 0.5, "lte": 9}}}, vector(params={"nprobe": 4})]),
    query(must=[vector()], should=[{"term": {"i8": [1]}}, {"must": [{"term": {"i16": [2]}}, {"term": {"b": [1]}}]}],
          must_not=[{"range": {"f": {"LT": 0.1}}}, {"should": [{"term": {"i64": [3]}}, {"term": {"i32": [4]}}]}]),
    query(must=[{"should": [{"term": {"i8": [1]}}, {"term": {"i8": [2]}}]},
                {"should": [{"term": {"i16": [1]}}, {"term": {"i16": [2]}}]}, vector(params={"exact": True})]),
    query(must=[vector()], should=[]),
])
def test_the_same_tree_as_the_general_query(doc: dict[str, Any]) -> None:
    assert query_from_general(general_query(S, doc), S) == build(doc)


TOO_DEEP: dict[str, Any] = query(must=[vector()])
for _ in range(33):
    TOO_DEEP = query(must=[TOO_DEEP["bool"]])


@pytest.mark.parametrize(("doc", "code", "reason"), [
    ([], ErrorCode.ILLEGAL_ARGUMENT, 'The DSL must be an object with the single key "bool".'),
    ({}, ErrorCode.ILLEGAL_ARGUMENT, 'The DSL must be an object with the single key "bool".'),
    ({"bool1": {"must": [vector()]}}, ErrorCode.ILLEGAL_ARGUMENT,
     'The DSL must be an object with the single key "bool".'),
    ({"bool": {"must": [vector()]}, "fields": []}, ErrorCode.ILLEGAL_ARGUMENT,
     'The DSL must be an object with the single key "bool".'),
    ({"bool": {}}, ErrorCode.ILLEGAL_ARGUMENT, "A bool clause must be an object with must, should or must_not lists."),
    ({"bool": []}, ErrorCode.ILLEGAL_ARGUMENT, "A bool clause must be an object with must, should or must_not lists."),
    (query(must1=[vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Unknown key "must1" in a bool clause: must, should or must_not.'),
    (query(must=vector()), ErrorCode.ILLEGAL_ARGUMENT, 'The value of "must" must be a list of clauses.'),
    (query(must=[vector()], should={"term": {"i8": [1]}}), ErrorCode.ILLEGAL_ARGUMENT,
     'The value of "should" must be a list of clauses.'),
    (query(must=[vector(), []]), ErrorCode.ILLEGAL_ARGUMENT, "Every clause of a bool list must be a non-empty object."),
    (query(must=[vector(), {}]), ErrorCode.ILLEGAL_ARGUMENT, "Every clause of a bool list must be a non-empty object."),
    (query(must=[{"term": {"i8": [1]}, "range": {"i8": {"GT": 1}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "A clause holds one of term, range, vector or a nested bool; got keys range, term."),
    (query(must=[{"match": {"i8": 1}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Unknown clause "match": term, range, vector or a nested bool (must, should, must_not).'),
    (query(must=[{"term": {"i8": [1], "i16": [1]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'A term clause names exactly one field: {"term": {FIELD: ...}}; got 2.'),
    (query(must=[{"term": [1]}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'A term clause names exactly one field: {"term": {FIELD: ...}}; got 0.'),
    (query(must=[{"range": {}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'A range clause names exactly one field: {"range": {FIELD: ...}}; got 0.'),
    (query(must=[{"term": {"i8": {"value": [1]}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Term clause on field i8: give the values as a list or as {"values": [...]}.'),
    (query(must=[{"term": {"i8": 1}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term clause on field i8: the values must be a list."),
    (query(must=[{"term": {"x": [1]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Field x does not exist in collection coll."),
    (query(must=[{"term": {"v": [1]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Field v is the vector field: a term query needs a scalar field."),
    (query(must=[{"term": {"": [1]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT, "A term query needs a field name."),
    (query(must=[{"term": {"i8": [1.0]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 1.0 of field i8 (INT8) must be an integer."),
    (query(must=[{"term": {"i8": [True]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value True of field i8 (INT8) must be an integer."),
    (query(must=[{"term": {"i8": [200]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 200 is out of range for field i8 (INT8: -128 ~ 127)."),
    (query(must=[{"term": {"i64": [2**63]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     f"Term value {2**63} is out of range for field i64 (INT64: {-(2**63)} ~ {2**63 - 1})."),
    (query(must=[{"term": {"d": ["1"]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value '1' of field d (DOUBLE) must be a number."),
    (query(must=[{"term": {"d": [10**400]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     f"Term value {str(10**400)[:64]!r}... of field d is not a finite number.".replace("'", "")),
    (query(must=[{"term": {"f": [1e39]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 1e+39 is out of range for field f (FLOAT)."),
    (query(must=[{"term": {"b": [2]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Term value 2 is out of range for field b (BOOL: 0 ~ 1)."),
    (query(must=[{"range": {"i8": {}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Range clause on field i8: give the comparisons as {"GT": v, "LT": w, ...}.'),
    (query(must=[{"range": {"i8": [1, 2]}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Range clause on field i8: give the comparisons as {"GT": v, "LT": w, ...}.'),
    (query(must=[{"range": {"i8": {"BETWEEN": 1}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Unknown range operator "BETWEEN" on field i8: GT, GTE, LT, LTE, EQ or NE.'),
    (query(must=[{"range": {"i8": {"Gt": 1}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     'Unknown range operator "Gt" on field i8: GT, GTE, LT, LTE, EQ or NE.'),
    (query(must=[{"range": {"i8": {"GT": "1"}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand '1' of field i8 (INT8) must be an integer."),
    (query(must=[{"range": {"i8": {"GT": 1.5}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand 1.5 of field i8 (INT8) must be an integer."),
    (query(must=[{"range": {"d": {"GT": None}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Operand None of field d (DOUBLE) must be a number."),
    (query(must=[{"range": {"d": {"GT": 10**400}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT, None),
    (query(must=[{"range": {"i64": {"GT": 2**64}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     f"Operand {2**64} of field i64 is out of the int64 range."),
    (query(must=[{"range": {"b": {"GTE": 1}}}, vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Range query on BOOL field b: only EQ and NE compare booleans, not GTE."),
    (query(must=[{"term": {"i8": [1]}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The query has no vector query: a hybrid search needs exactly one."),
    (query(must=[vector(), {"must": [vector()]}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The query has 2 vector queries: a hybrid search needs exactly one."),
    (query(should=[vector(), {"term": {"i8": [1]}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a SHOULD clause: it may sit only under MUST clauses (a filter never decides which "
     "vectors are searched for)."),
    (query(must_not=[vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a MUST_NOT clause: it may sit only under MUST clauses (a filter never decides "
     "which vectors are searched for)."),
    (query(should=[{"must": [vector()]}, {"term": {"i8": [1]}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query is under a SHOULD clause: it may sit only under MUST clauses (a filter never decides which "
     "vectors are searched for)."),
    (query(must=[{"vector": {"v": {"topk": 1, "query": [VEC]}, "w": {}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     'A vector clause names exactly one field: {"vector": {FIELD: ...}}; got 2.'),
    (query(must=[{"vector": {"i8": {"topk": 1, "query": [VEC]}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector query names field i8; the vector field of collection coll is v."),
    (query(must=[{"vector": {"v": [VEC]}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause on field v must be an object with topk and query."),
    (query(must=[vector(top_k=3)]), ErrorCode.ILLEGAL_ARGUMENT,
     'Unknown key "top_k" in the vector clause: topk, query, metric_type, params.'),
    (query(must=[{"vector": {"v": {"query": [VEC]}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause on field v needs a topk."),
    (query(must=[vector(topk="10")]), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: '10'. The topk must be an integer within the range of 1 ~ {MAX_TOPK}."),
    (query(must=[vector(topk=True)]), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: True. The topk must be an integer within the range of 1 ~ {MAX_TOPK}."),
    (query(must=[vector(topk=0)]), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: 0. The topk must be within the range of 1 ~ {MAX_TOPK}."),
    (query(must=[vector(topk=MAX_TOPK + 1)]), ErrorCode.ILLEGAL_TOPK,
     f"Invalid topk: {MAX_TOPK + 1}. The topk must be within the range of 1 ~ {MAX_TOPK}."),
    (query(must=[vector(metric_type="IP")]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause's metric_type 'IP' names another metric than collection coll (L2)."),
    (query(must=[vector(metric_type="COSINE")]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause's metric_type 'COSINE' is not a metric of collection coll (L2)."),
    (query(must=[vector(metric_type=2)]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause's metric_type 2 names another metric than collection coll (L2)."),
    (query(must=[vector(params=[1])]), ErrorCode.ILLEGAL_ARGUMENT,
     "The params of the vector clause must be a JSON object."),
    (query(must=[vector(params={"exact": "yes"})]), ErrorCode.ILLEGAL_ARGUMENT,
     'Invalid search params: "exact" must be true or false.'),
    (query(must=[{"vector": {"v": {"topk": 1, "query": []}}}]), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector array is empty. Make sure you have entered vector records."),
    (query(must=[{"vector": {"v": {"topk": 1, "query": [[1, 2]]}}}]), ErrorCode.ILLEGAL_DIMENSION,
     "The vector dimension must be equal to the collection dimension."),
    (query(must=[{"vector": {"v": {"topk": 1, "query": [[1, 2, "3", 4]]}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid query vectors: every vector must be a list of numbers"),
    (query(must=[{"vector": {"v": {"topk": 1, "query": [[1, 2, True, 4]]}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid query vectors: every vector must be a list of numbers"),
    (query(must=[{"vector": {"v": {"topk": 1, "query": VEC}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid query vectors: every vector must be a list of numbers"),
    (query(must=[{"vector": {"v": {"topk": 1, "query": "abc"}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid query vectors: expected a list of vectors"),
    (query(must=[{"vector": {"v": {"topk": 1, "query": [[1e39, 0, 0, 0]]}}}]), ErrorCode.ILLEGAL_ROWRECORD,
     "The vector data must not contain NaN or infinity values."),
    (query(must=[{"vector": {"v": {"topk": 1}}}]), ErrorCode.ILLEGAL_ARGUMENT,
     "The vector clause on field v has no query vectors."),
    (TOO_DEEP, ErrorCode.ILLEGAL_ARGUMENT, "The query is nested deeper than 32 levels."),
])
def test_refusals(doc: Any, code: ErrorCode, reason: str | None) -> None:
    err = refusal(doc)
    assert err.code == code
    if reason is not None:
        assert err.reason == reason


def test_layers_may_mix_leaves_and_nested_bodies() -> None:
    q = build(query(must=[{"term": {"i8": [1]}}, {"should": [{"term": {"i16": [1]}}, {"term": {"i16": [2]}}]},
                          vector()]))
    assert q.filter == Bool(must=(Term("i8", (1,)),), should=(Term("i16", (1,)), Term("i16", (2,))))


def test_the_document_is_not_modified() -> None:
    doc = query(must=[{"term": {"i8": [1]}}, vector(params={"exact": True, "nprobe": 2})])
    before = copy.deepcopy(doc)
    build(doc)
    assert doc == before
