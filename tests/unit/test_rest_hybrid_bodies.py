"""The hybrid REST routes' JSON into protobuf requests (and replies back), without a network: the requests are what
a gRPC client builds with the client helper, the server's decoders read them back to the same schema, rows and query,
and every malformed body is refused with its code before anything is sent."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.attrs import decode_entities, entity_message
from coordinator.hybrid.dsl import query_from_dsl
from coordinator.hybrid.from_wire import query_from_search_param
from coordinator.hybrid.schema import schema_from_mapping
from coordinator.rest.codes import RestError, WebCode
from coordinator.rest.hybrid_bodies import (
    entity_bytes,
    id_list,
    insert_param,
    mapping_from_json,
    search_request,
    strict_object,
)
from coordinator.rest.hybrid_replies import entity_json, field_json, hits_json, schema_json
from milvus_wire import milvus_pb2 as pb
from mishards import hybrid_client as hc

TYPES = {"i8": "INT8", "i16": "INT16", "i32": "INT32", "i64": "INT64", "b": "BOOL", "f": "FLOAT", "d": "DOUBLE"}
CREATE = {"collection_name": "shop", "fields": [
    *({"name": n, "type": t} for n, t in TYPES.items()),
    {"name": "v", "type": "VECTOR", "dimension": 4, "params": {"metric_type": "IP", "index_file_size": 64}}]}
SCHEMA = schema_from_mapping(mapping_from_json(CREATE))
ROWS = [
    {"i8": -128, "i16": 32767, "i32": -5, "i64": -(2**63), "b": True, "f": 0.1, "d": -1e300, "v": [1, 2, 3, 4]},
    {"i8": 127, "i16": 0, "i32": 2**31 - 1, "i64": 2**63 - 1, "b": 0, "f": -2, "d": 5e-324, "v": [0.5, 0, 0, -1]},
]
DSL = {"bool": {"must": [{"range": {"i32": {"GTE": 0}}}, {"vector": {"v": {"topk": 3, "query": [[1, 0, 0, 0]],
                                                                           "params": {"nprobe": 4}}}}],
                "should": [{"term": {"b": [True]}}, {"range": {"f": {"lt": 0.5}}}]}}


def code_of(call: Any) -> int:
    with pytest.raises((RestError, MilvusError)) as info:
        call()
    error = info.value
    assert isinstance(error, RestError | MilvusError)
    return int(error.code)


def test_create_body_is_the_mapping_the_client_helper_builds() -> None:
    mapping = mapping_from_json(CREATE)
    fields = [hc.scalar_field(n, hc.DataType[t]) for n, t in TYPES.items()]
    fields.append(pb.FieldParam(name="v", type=pb.FieldType(vector_param=pb.VectorFieldParam(dimension=4)),
                                extra_params=[pb.KeyValuePair(key="params", value='{"metric_type":"IP",'
                                                                                  '"index_file_size":64}')]))
    assert mapping == hc.mapping("shop", fields)
    assert SCHEMA.metric.name == "IP" and SCHEMA.index_file_size == 64 and SCHEMA.dimension == 4
    assert [f.type.name for f in SCHEMA.scalars] == list(TYPES.values())
    lower = mapping_from_json({"collection_name": "c", "fields": [{"name": "a", "type": "int8"},
                                                                  {"name": "v", "type": "vector", "dimension": 8}]})
    assert lower.fields[0].type.data_type == pb.INT8 and not lower.fields[1].extra_params


def test_a_description_creates_the_same_collection_again() -> None:
    described = schema_json(SCHEMA)
    assert described["metric_type"] == "IP" and described["dimension"] == 4 and described["index_file_size"] == 64
    assert described["fields"][-1] == {"name": "v", "type": "VECTOR", "dimension": 4,
                                       "params": {"metric_type": "IP", "index_file_size": 64}}
    again = mapping_from_json({"collection_name": "shop", "fields": described["fields"]})
    assert schema_from_mapping(again) == SCHEMA
    odd = hc.scalar_field("x", hc.DataType.INT8)
    odd.extra_params.extend([pb.KeyValuePair(key="params", value="not json"), pb.KeyValuePair(key="k", value="1")])
    assert field_json(schema_from_mapping(hc.mapping("c", [odd, hc.vector_field("v", 8)])).fields[0]) == {
        "name": "x", "type": "INT8", "params": "not json", "extra_params": {"k": "1"}}


@pytest.mark.parametrize(("body", "code"), [
    ({"fields": []}, WebCode.BODY_FIELD_LOSS),
    ({"collection_name": "c"}, WebCode.BODY_FIELD_LOSS),
    ({"collection_name": "c", "fields": {}}, WebCode.BODY_PARSE_FAIL),
    ({"collection_name": 3, "fields": []}, WebCode.BODY_PARSE_FAIL),
    ({"collection_name": "c", "fields": [], "metric_type": "L2"}, WebCode.ILLEGAL_BODY),
    ({"collection_name": "c", "fields": ["a"]}, WebCode.BODY_PARSE_FAIL),
    ({"collection_name": "c", "fields": [{"name": "a", "type": "INT8", "size": 1}]}, WebCode.ILLEGAL_BODY),
    ({"collection_name": "c", "fields": [{"type": "INT8"}]}, WebCode.BODY_FIELD_LOSS),
    ({"collection_name": "c", "fields": [{"name": "a"}]}, WebCode.BODY_FIELD_LOSS),
    ({"collection_name": "c", "fields": [{"name": "a", "type": "TEXT"}]}, ErrorCode.ILLEGAL_ARGUMENT),
    ({"collection_name": "c", "fields": [{"name": "a", "type": "NULL"}]}, ErrorCode.ILLEGAL_ARGUMENT),
    ({"collection_name": "c", "fields": [{"name": "v", "type": "VECTOR"}]}, WebCode.BODY_FIELD_LOSS),
    ({"collection_name": "c", "fields": [{"name": "v", "type": "VECTOR", "dimension": 4.0}]},
     WebCode.BODY_PARSE_FAIL),
    ({"collection_name": "c", "fields": [{"name": "a", "type": "INT8", "dimension": 4}]}, WebCode.ILLEGAL_BODY),
    ({"collection_name": "c", "fields": [{"name": "a", "type": "INT8", "params": "x"}]}, WebCode.BODY_PARSE_FAIL),
])
def test_malformed_create_bodies_are_refused(body: dict[str, Any], code: int) -> None:
    assert code_of(lambda: mapping_from_json(body)) == code


def _insert(body: dict[str, Any], schema: Any = SCHEMA) -> Any:
    request = insert_param(schema.collection_name, schema, body)
    param = pb.HInsertParam.FromString(request.body)
    assert request.rows == param.entities.row_num
    return param


def test_rows_and_columns_are_the_client_helpers_insert() -> None:
    param = _insert({"entities": ROWS, "ids": ["7", 8], "partition_tag": "p"})
    columns = {n: [r[n] for r in ROWS] for n in TYPES}
    vectors = np.array([r["v"] for r in ROWS], dtype=np.float32)
    expected = hc.insert_param(SCHEMA, columns, vectors, ids=[7, 8], partition_tag="p")
    assert param == expected
    as_columns = _insert({"columns": {**columns, "v": [r["v"] for r in ROWS]}, "ids": [7, 8], "partition_tag": "p"})
    assert as_columns == expected
    decoded = decode_entities(SCHEMA, param.entities)
    assert decoded.columns["i64"].tolist() == [-(2**63), 2**63 - 1] and decoded.columns["b"].tolist() == [True, False]
    assert decoded.columns["d"].tolist() == [-1e300, 5e-324] and np.array_equal(decoded.vectors, vectors)
    assert decoded.columns["f"].tolist() == [np.float32(0.1), -2.0]
    plain = _insert({"entities": ROWS[:1]})
    assert list(plain.entity_id_array) == [] and plain.partition_tag == ""


def test_entity_bytes_are_the_serialized_entity_message() -> None:
    binary = schema_from_mapping(mapping_from_json({"collection_name": "bits", "fields": [
        {"name": "a", "type": "INT8"}, {"name": "v", "type": "VECTOR", "dimension": 16,
                                         "params": {"metric_type": "HAMMING"}}]}))
    rng = np.random.default_rng(0)
    for schema, vectors in ((SCHEMA, rng.standard_normal((5, 4)).astype(np.float32)),
                            (binary, rng.integers(0, 256, (5, 2), dtype=np.uint8))):
        columns = {f.name: np.arange(5) for f in schema.scalars}
        assert entity_bytes(schema, columns, vectors) == entity_message(schema, columns, vectors).SerializeToString()


def _row(**change: Any) -> dict[str, Any]:
    return {"entities": [ROWS[0], {**ROWS[1], **change}]}


@pytest.mark.parametrize(("body", "code"), [
    ({}, WebCode.BODY_FIELD_LOSS),
    ({"entities": ROWS, "columns": {}}, WebCode.ILLEGAL_BODY),
    ({"entities": ROWS, "tag": "p"}, WebCode.ILLEGAL_BODY),
    ({"entities": {}}, WebCode.BODY_PARSE_FAIL),
    ({"entities": [ROWS[0], [1]]}, WebCode.BODY_PARSE_FAIL),
    ({"entities": []}, ErrorCode.ILLEGAL_ROWRECORD),
    (_row(x=1), ErrorCode.ILLEGAL_ARGUMENT),  # an unknown field
    ({"entities": [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "d"}]}, ErrorCode.ILLEGAL_ARGUMENT),
    ({"entities": [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "v"}]}, ErrorCode.ILLEGAL_ARGUMENT),
    (_row(i32="5"), WebCode.BODY_PARSE_FAIL),
    (_row(i32=5.0), WebCode.BODY_PARSE_FAIL),
    (_row(i32=True), WebCode.BODY_PARSE_FAIL),
    (_row(i8=None), WebCode.BODY_PARSE_FAIL),
    (_row(b=0.0), WebCode.BODY_PARSE_FAIL),
    (_row(d="1.5"), WebCode.BODY_PARSE_FAIL),
    (_row(f=False), WebCode.BODY_PARSE_FAIL),
    (_row(i64=2**63), ErrorCode.ILLEGAL_ARGUMENT),
    (_row(i8=-(2**64)), ErrorCode.ILLEGAL_ARGUMENT),
    (_row(v=[1, 2, 3]), ErrorCode.ILLEGAL_DIMENSION),
    (_row(v=[1, 2, 3, "4"]), ErrorCode.ILLEGAL_ARGUMENT),
    (_row(v=5), ErrorCode.ILLEGAL_ARGUMENT),
    ({**_row(), "ids": "7"}, WebCode.BODY_PARSE_FAIL),
    ({**_row(), "ids": ["x", "y"]}, WebCode.ILLEGAL_BODY),
    ({**_row(), "ids": [1.0, 2.0]}, WebCode.BODY_PARSE_FAIL),
    ({**_row(), "ids": [2**63, 1]}, WebCode.ILLEGAL_BODY),
    ({**_row(), "partition_tag": 1}, WebCode.BODY_PARSE_FAIL),
    ({"columns": []}, WebCode.BODY_PARSE_FAIL),
    ({"columns": {n: [0] for n in TYPES}}, ErrorCode.ILLEGAL_ARGUMENT),  # no vectors
    ({"columns": {**{n: [0] for n in TYPES}, "v": [[1, 2, 3, 4]], "w": [1]}}, ErrorCode.ILLEGAL_ARGUMENT),
    ({"columns": {**{n: [0] for n in TYPES}, "i8": [0, 1], "v": [[1, 2, 3, 4]]}}, ErrorCode.ILLEGAL_ARGUMENT),
    ({"columns": {**{n: [0] for n in TYPES}, "i8": 0, "v": [[1, 2, 3, 4]]}}, WebCode.BODY_PARSE_FAIL),
])
def test_malformed_insert_bodies_are_refused(body: dict[str, Any], code: int) -> None:
    assert code_of(lambda: insert_param("shop", SCHEMA, body)) == code


def test_values_out_of_a_narrower_range_are_left_to_the_server() -> None:
    param = _insert(_row(i8=300, b=2, f=1e39))
    with pytest.raises(MilvusError) as info:
        decode_entities(SCHEMA, param.entities)  # what the node runs before writing anything
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT and "i8" in info.value.reason


def test_binary_collections_take_byte_values() -> None:
    schema = schema_from_mapping(mapping_from_json({"collection_name": "bits", "fields": [
        {"name": "a", "type": "INT16"}, {"name": "v", "type": "VECTOR", "dimension": 16,
                                          "params": {"metric_type": "JACCARD"}}]}))
    param = _insert({"entities": [{"a": 1, "v": [255, 0]}, {"a": 2, "v": [1, 2]}]}, schema)
    assert param.entities.result_values[0].vector_value.value[0].binary_data == b"\xff\x00"
    assert code_of(lambda: insert_param("bits", schema, {"entities": [{"a": 1, "v": [256, 0]}]})) == 5
    assert code_of(lambda: insert_param("bits", schema, {"entities": [{"a": 1, "v": [1, 2, 3]}]})) == 7


def test_search_body_carries_the_dsl_the_server_reads_as_the_grpc_one() -> None:
    wanted = search_request("shop", {"dsl": DSL, "partition_tags": ["p", "q"], "fields": ["i8", "v"]})
    assert wanted.fields == ("i8", "v")
    param = wanted.param
    assert param.collection_name == "shop" and list(param.partition_tag_array) == ["p", "q"]
    assert [kv.key for kv in param.extra_params] == ["dsl"] and json.loads(param.extra_params[0].value) == DSL
    assert not param.HasField("general_query")
    assert query_from_search_param(param, SCHEMA) == query_from_dsl(DSL, SCHEMA)
    grpc = hc.search_param(SCHEMA, DSL, ["p", "q"], as_dsl=True)
    assert query_from_search_param(grpc, SCHEMA) == query_from_search_param(param, SCHEMA)
    assert search_request("shop", {"dsl": DSL}).fields is None
    assert search_request("shop", {"dsl": DSL, "fields": []}).fields is None


@pytest.mark.parametrize(("body", "code"), [
    ({}, WebCode.BODY_FIELD_LOSS),
    ({"dsl": "{}"}, WebCode.BODY_PARSE_FAIL),
    ({"dsl": DSL, "topk": 3}, WebCode.ILLEGAL_BODY),
    ({"dsl": DSL, "partition_tags": "p"}, WebCode.BODY_PARSE_FAIL),
    ({"dsl": DSL, "fields": [1]}, WebCode.BODY_PARSE_FAIL),
])
def test_malformed_search_bodies_are_refused(body: dict[str, Any], code: int) -> None:
    assert code_of(lambda: search_request("shop", body)) == code


def test_a_dsl_without_vector_clause_is_refused_by_the_shared_parser() -> None:
    param = search_request("shop", {"dsl": {"bool": {"must": [{"term": {"i8": [1]}}]}}}).param
    with pytest.raises(MilvusError) as info:
        query_from_search_param(param, SCHEMA)
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT and "no vector query" in info.value.reason


def test_search_bodies_are_strict_json() -> None:
    assert strict_object(b'{"dsl": {"bool": {}}}') == {"dsl": {"bool": {}}}
    for body, code in ((b"", WebCode.BODY_FIELD_LOSS), (b"{", WebCode.BODY_PARSE_FAIL),
                       (b'{"dsl": {"bool": {"must": [], "must": []}}}', WebCode.BODY_PARSE_FAIL),
                       (b'{"dsl": NaN}', WebCode.BODY_PARSE_FAIL), (b"[1]", WebCode.BODY_PARSE_FAIL),
                       (b"\xff", WebCode.BODY_PARSE_FAIL), (b"[" * 100000, WebCode.BODY_PARSE_FAIL)):
        assert code_of(lambda body=body: strict_object(body)) == code, body


def test_ids_are_integers_or_integer_strings() -> None:
    assert id_list([1, "2", "-3", 2**63 - 1, str(-(2**63))]) == [1, 2, -3, 2**63 - 1, -(2**63)]
    assert code_of(lambda: id_list(["1.5"])) == WebCode.ILLEGAL_BODY
    assert code_of(lambda: id_list(["٣"])) == WebCode.ILLEGAL_BODY  # a digit, but not an ASCII one
    assert code_of(lambda: id_list([str(2**63)])) == WebCode.ILLEGAL_BODY
    assert code_of(lambda: id_list([None])) == WebCode.BODY_PARSE_FAIL
    assert code_of(lambda: id_list({"a": 1})) == WebCode.BODY_PARSE_FAIL


def test_entities_and_hits_as_json() -> None:
    columns = {n: np.array([r[n] for r in ROWS][1:]) for n in TYPES}
    entity = entity_message(SCHEMA, columns, np.array([[0.5, 0, 0, -1]], dtype=np.float32), entity_id=9)
    values = entity_json(SCHEMA, entity)
    assert values is not None and list(values) == [*TYPES, "v"]
    assert values["b"] is False and values["i64"] == 2**63 - 1 and values["f"] == -2.0
    text = json.loads(hits_json(1, np.array([9]), np.array([0.5]), {9: values}))
    assert text["result"][0][0]["entity"] == {**{n: r for n, r in ROWS[1].items() if n != "b"}, "b": False}
    chosen = entity_json(SCHEMA, entity, ("v", "i8"))
    assert chosen is not None and list(chosen) == ["v", "i8"] and chosen["i8"] == 127
    assert chosen["v"].tolist() == [0.5, 0, 0, -1]
    assert entity_json(SCHEMA, pb.HEntity(entity_id=9)) is None
    float32 = entity_message(SCHEMA, {**columns, "f": np.array([0.1])}, np.zeros((1, 4), dtype=np.float32))
    assert json.loads(hits_json(1, np.array([3]), np.array([1.0]), {3: entity_json(SCHEMA, float32)}))[
        "result"][0][0]["entity"]["f"] == 0.1  # the float32 in its shortest form, not 0.10000000149011612
    two = json.loads(hits_json(2, np.array([4, -1, 5, 6]), np.array([1.0, 0.0, 2.5, 3.0]), {4: None}))
    assert two == {"num": 2, "result": [[{"distance": "1.000000", "entity": None, "id": "4"}],
                                        [{"distance": "2.500000", "entity": None, "id": "5"},
                                         {"distance": "3.000000", "entity": None, "id": "6"}]]}
    assert hits_json(0, np.array([]), np.array([]), {}) == b'{"num":0,"result":[]}'
