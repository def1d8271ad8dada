"""Hybrid collection schemas: every accepted field type, every refusal with its code and reason, and the round
trips through ``Mapping`` (DescribeHybridCollection) and the catalog's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.schema import (
    MAX_FIELDS,
    FieldSchema,
    build_schema,
    schema_from_json,
    schema_from_mapping,
    schema_to_json,
    schema_to_mapping,
)
from coordinator.hybrid.types import DataType
from coordinator.model import MetricType
from milvus_wire import milvus_pb2
from tests.support.hybrid import mapping


def _refusal(m: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        schema_from_mapping(m)
    return info.value


def _field(name: str, data_type: int, params: list[tuple[str, str]] | None = None, fid: int = 0) -> Any:
    pairs = [milvus_pb2.KeyValuePair(key=k, value=v) for k, v in params or []]
    return milvus_pb2.FieldParam(id=fid, name=name, type=milvus_pb2.FieldType(data_type=data_type),  # type: ignore[arg-type]
                                 extra_params=pairs)


def _vector(name: str = "v", dim: int = 8, params: str | None = None) -> Any:
    pairs = [] if params is None else [milvus_pb2.KeyValuePair(key="params", value=params)]
    return milvus_pb2.FieldParam(name=name, type=milvus_pb2.FieldType(
        vector_param=milvus_pb2.VectorFieldParam(dimension=dim)), extra_params=pairs)


def test_every_scalar_type_is_accepted_in_declared_order() -> None:
    s = schema_from_mapping(mapping())
    assert [f.name for f in s.fields] == ["i8", "i16", "i32", "i64", "b", "f", "d", "v"]
    assert [f.type for f in s.scalars] == [DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
                                           DataType.BOOL, DataType.FLOAT, DataType.DOUBLE]
    assert s.vector.name == "v" and s.dimension == 4
    assert s.metric is MetricType.L2 and s.index_file_size == 16 and not s.is_binary
    assert s.field("i32") is not None and s.field("nope") is None


def test_vector_field_may_come_first_and_defaults_apply() -> None:
    m = milvus_pb2.Mapping(collection_name="c", fields=[_vector(dim=16), _field("a", milvus_pb2.INT64)])
    s = schema_from_mapping(m)
    assert [f.name for f in s.fields] == ["v", "a"]
    assert s.metric is MetricType.L2 and s.index_file_size == 1024 and s.dimension == 16


@pytest.mark.parametrize(("params", "metric", "size"), [
    ('{"metric_type": 2}', MetricType.IP, 1024),
    ('{"metric_type": "JACCARD", "index_file_size": 8}', MetricType.JACCARD, 8),
    ('{"metric_type": 3, "engine_type": 1, "other": [1]}', MetricType.HAMMING, 1024),
    ("", MetricType.L2, 1024),
    ("null", MetricType.L2, 1024),
])
def test_vector_params(params: str, metric: MetricType, size: int) -> None:
    s = schema_from_mapping(milvus_pb2.Mapping(collection_name="c", fields=[_vector(dim=16, params=params)]))
    assert (s.metric, s.index_file_size, s.is_binary) == (metric, size, metric.is_binary)


@pytest.mark.parametrize(("m", "code", "reason"), [
    (milvus_pb2.Mapping(collection_name="", fields=[_vector()]), ErrorCode.ILLEGAL_COLLECTION_NAME,
     "Collection name should not be empty."),
    (milvus_pb2.Mapping(collection_name="1c", fields=[_vector()]), ErrorCode.ILLEGAL_COLLECTION_NAME,
     "Invalid collection name: 1c. The first character of a collection name must be an underscore or letter."),
    (milvus_pb2.Mapping(collection_name="c"), ErrorCode.ILLEGAL_ARGUMENT,
     "Collection c has no field: a hybrid collection needs exactly one vector field."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("a", milvus_pb2.INT8)]), ErrorCode.ILLEGAL_ARGUMENT,
     "Collection c has no vector field: a hybrid collection needs exactly one (declared with type.vector_param and "
     "its dimension)."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector("v1"), _vector("v2")]), ErrorCode.ILLEGAL_ARGUMENT,
     "Collection c has 2 vector fields (v1, v2): a hybrid collection needs exactly one."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("s", milvus_pb2.STRING), _vector()]),
     ErrorCode.ILLEGAL_ARGUMENT, "Field s: type STRING is not supported. The scalar fields of a hybrid collection "
     "are INT8, INT16, INT32, INT64, FLOAT, DOUBLE or BOOL."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("n", milvus_pb2.NULL), _vector()]),
     ErrorCode.ILLEGAL_ARGUMENT, "Field n: invalid data type NULL. The scalar fields of a hybrid collection are "
     "INT8, INT16, INT32, INT64, FLOAT, DOUBLE or BOOL; the vector field is declared with type.vector_param."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("u", milvus_pb2.UNKNOWN), _vector()]),
     ErrorCode.ILLEGAL_ARGUMENT, "Field u: invalid data type UNKNOWN. The scalar fields of a hybrid collection are "
     "INT8, INT16, INT32, INT64, FLOAT, DOUBLE or BOOL; the vector field is declared with type.vector_param."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("u", 7), _vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Field u: invalid data type 7. The scalar fields of a hybrid collection are INT8, INT16, INT32, INT64, FLOAT, "
     "DOUBLE or BOOL."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("v", milvus_pb2.VECTOR)]), ErrorCode.ILLEGAL_ARGUMENT,
     "Field v: a vector field is declared with type.vector_param (its dimension), not data_type VECTOR."),
    (milvus_pb2.Mapping(collection_name="c", fields=[milvus_pb2.FieldParam(name="x"), _vector()]),
     ErrorCode.ILLEGAL_ARGUMENT, "Field x: invalid data type NULL. The scalar fields of a hybrid collection are "
     "INT8, INT16, INT32, INT64, FLOAT, DOUBLE or BOOL; the vector field is declared with type.vector_param."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("a", 1), _field("a", 4), _vector()]),
     ErrorCode.ILLEGAL_ARGUMENT, "Duplicate field name: a."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("a", 1), _vector("a")]), ErrorCode.ILLEGAL_ARGUMENT,
     "Duplicate field name: a."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("", 1), _vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Field name should not be empty."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("9a", 1), _vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid field name: 9a. The first character of a field name must be an underscore or letter."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("a-b", 1), _vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid field name: a-b. Field name can only contain numbers, letters, and underscores."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_field("x" * 256, 1), _vector()]), ErrorCode.ILLEGAL_ARGUMENT,
     f"Invalid field name: {'x' * 256}. The length of a field name must be less than 255 characters."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(dim=0)]), ErrorCode.ILLEGAL_DIMENSION,
     "Invalid collection dimension: 0. The collection dimension must be within the range of 1 ~ 32768."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(dim=32769)]), ErrorCode.ILLEGAL_DIMENSION,
     "Invalid collection dimension: 32769. The collection dimension must be within the range of 1 ~ 32768."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(dim=12, params='{"metric_type": 3}')]),
     ErrorCode.ILLEGAL_DIMENSION, "Invalid collection dimension: 12. The collection dimension must be a multiple of 8"),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='{"metric_type": 9}')]),
     ErrorCode.ILLEGAL_METRIC_TYPE,
     "Invalid index metric type: 9. Make sure the metric type is in MetricType list."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='{"metric_type": "COSINE"}')]),
     ErrorCode.ILLEGAL_METRIC_TYPE,
     'Invalid index metric type: "COSINE". Make sure the metric type is in MetricType list.'),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='{"metric_type": true}')]),
     ErrorCode.ILLEGAL_METRIC_TYPE,
     "Invalid index metric type: true. Make sure the metric type is in MetricType list."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='{"index_file_size": 0}')]),
     ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid index file size: 0. The index file size must be within the range of 1 ~ 4096."),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='{"index_file_size": "64"}')]),
     ErrorCode.ILLEGAL_ARGUMENT, 'Invalid index file size: "64". The index file size must be an integer.'),
    (milvus_pb2.Mapping(collection_name="c", fields=[_vector(params='[1]')]), ErrorCode.ILLEGAL_ARGUMENT,
     "Invalid params of field v: expected a JSON object, got list"),
])
def test_refusals(m: Any, code: ErrorCode, reason: str) -> None:
    err = _refusal(m)
    assert (err.code, err.reason) == (code, reason)


@pytest.mark.parametrize("text", ['{"metric_type": NaN}', '{"metric_type": 1, "metric_type": 2}', "{"])
def test_params_must_be_strict_json(text: str) -> None:
    err = _refusal(milvus_pb2.Mapping(collection_name="c", fields=[_vector(params=text)]))
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason.startswith("Invalid params of field v: not valid JSON")


def test_field_count_limit() -> None:
    fields = [_field(f"a{i}", milvus_pb2.INT64) for i in range(MAX_FIELDS - 1)] + [_vector()]
    assert len(schema_from_mapping(milvus_pb2.Mapping(collection_name="c", fields=fields)).fields) == MAX_FIELDS
    fields.insert(0, _field("extra", milvus_pb2.INT64))
    err = _refusal(milvus_pb2.Mapping(collection_name="c", fields=fields))
    assert err.reason == f"A hybrid collection may have at most {MAX_FIELDS} fields, got {MAX_FIELDS + 1}."


def test_describe_answers_every_field_with_params_as_given() -> None:
    given = milvus_pb2.Mapping(collection_name="c", collection_id=99, fields=[
        _field("a", milvus_pb2.INT16, [("params", '{"x": 1}'), ("note", "kept")], fid=7),
        _vector(dim=16, params='{"metric_type": 2, "index_file_size": 32, "engine_type": 1}'),
        _field("d", milvus_pb2.DOUBLE),
    ])
    given.status.reason = "ignored"
    described = schema_to_mapping(schema_from_mapping(given), collection_id=5)
    expected = milvus_pb2.Mapping()
    expected.CopyFrom(given)
    expected.ClearField("status")
    expected.collection_id = 5
    assert described == expected
    assert described.fields[1].type.vector_param.dimension == 16
    assert described.fields[1].type.WhichOneof("value") == "vector_param"


def test_catalog_json_round_trip() -> None:
    s = schema_from_mapping(mapping(vector_params='{"metric_type": "IP", "index_file_size": 3, "ü": "ß"}'))
    text = schema_to_json(s)
    assert schema_from_json("coll", text) == s
    assert "ü" in text


def test_build_schema_directly() -> None:
    s = build_schema("c", [FieldSchema("a", DataType.INT8), FieldSchema("v", DataType.VECTOR, dimension=8)])
    assert s.vector.dimension == 8 and [f.name for f in s.scalars] == ["a"]
    with pytest.raises(MilvusError) as info:
        build_schema("c", [FieldSchema("a", DataType.STRING), FieldSchema("v", DataType.VECTOR, dimension=8)])
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT
