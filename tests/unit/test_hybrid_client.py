"""The hybrid client helper: the requests it builds are what the server side decodes back to the same schema,
rows and query, in both query forms (GeneralQuery tree, DSL text beside a VectorQuery)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.hybrid.attrs import decode_entities, entity_message
from coordinator.hybrid.dsl import query_from_dsl
from coordinator.hybrid.from_wire import query_from_search_param
from coordinator.hybrid.schema import schema_from_mapping, schema_to_mapping
from milvus_wire import milvus_pb2 as pb
from milvus_wire import milvus_pb2_grpc, status_pb2
from mishards import hybrid_client as hc

FIELDS = [hc.scalar_field("age", hc.DataType.INT32), hc.scalar_field("price", hc.DataType.DOUBLE, {"unit": "EUR"}),
          hc.scalar_field("ok", hc.DataType.BOOL), hc.vector_field("emb", 8, metric_type="IP", index_file_size=64)]
SCHEMA = hc.schema_of(hc.mapping("shop", FIELDS))
QUERIES = [[0.5] * 8, [1.0] + [0.0] * 7]
DSL = {"bool": {"must": [{"range": {"age": {"GTE": 18, "LT": 65}}},
                         {"vector": {"emb": {"topk": 10, "query": QUERIES, "params": {"nprobe": 16}}}}],
                "should": [{"term": {"ok": [True]}}, {"range": {"price": {"lt": 9.5}}}],
                "must_not": [{"term": {"price": [0.0]}}]}}


def test_fields_and_mapping() -> None:
    m = hc.mapping("shop", FIELDS)
    assert m.collection_name == "shop" and [f.name for f in m.fields] == ["age", "price", "ok", "emb"]
    assert m.fields[0].type.data_type == pb.INT32 and not m.fields[0].extra_params
    assert json.loads(m.fields[1].extra_params[0].value) == {"unit": "EUR"}
    assert m.fields[3].type.vector_param.dimension == 8
    assert json.loads(m.fields[3].extra_params[0].value) == {"metric_type": "IP", "index_file_size": 64}
    assert SCHEMA.metric == hc.MetricType.IP and SCHEMA.index_file_size == 64
    assert schema_to_mapping(schema_from_mapping(m)) == m  # what DescribeHybridCollection answers
    numeric = hc.vector_field("v", 16, metric_type=hc.MetricType.JACCARD, nlist=4)
    assert json.loads(numeric.extra_params[0].value) == {"metric_type": 4, "index_file_size": 1024, "nlist": 4}


def test_insert_param_decodes_to_the_same_rows() -> None:
    vectors = np.arange(24, dtype=np.float32).reshape(3, 8)
    param = hc.insert_param(SCHEMA, {"age": [1, 2, 3], "price": np.array([0.5, 1.5, 2.5]), "ok": [True, False, True]},
                            vectors, ids=[7, 8, 9], partition_tag="p")
    assert param.collection_name == "shop" and param.partition_tag == "p" and list(param.entity_id_array) == [7, 8, 9]
    assert list(param.entities.field_names) == ["age", "price", "ok", "emb"]
    assert param.entities.attr_records == struct.pack("<3q3d3q", 1, 2, 3, 0.5, 1.5, 2.5, 1, 0, 1)
    decoded = decode_entities(SCHEMA, param.entities)
    assert decoded.rows == 3 and np.array_equal(decoded.vectors, vectors)
    assert decoded.columns["age"].tolist() == [1, 2, 3] and decoded.columns["ok"].tolist() == [True, False, True]


def test_insert_param_leaves_range_checks_to_the_server() -> None:
    param = hc.insert_param(SCHEMA, {"age": [2**40], "price": [1.0], "ok": [0]}, np.zeros((1, 8)))
    with pytest.raises(MilvusError) as info:
        decode_entities(SCHEMA, param.entities)
    assert info.value.reason == "Value 1099511627776 of field age (row index 0) is out of range for INT32 " \
                                "(-2147483648 ~ 2147483647)."
    with pytest.raises(ValueError, match="two-dimensional"):
        hc.insert_param(SCHEMA, {"age": [1], "price": [1.0], "ok": [0]}, np.zeros(8))


def test_binary_insert() -> None:
    s = hc.schema_of(hc.mapping("bits", [hc.scalar_field("a", hc.DataType.INT8),
                                         hc.vector_field("v", 16, metric_type="HAMMING")]))
    param = hc.insert_param(s, {"a": [1, -1]}, np.array([[1, 2], [3, 4]], dtype=np.uint8))
    assert [r.binary_data for r in param.entities.result_values[0].vector_value.value] == [b"\x01\x02", b"\x03\x04"]
    assert decode_entities(s, param.entities).vectors.tolist() == [[1, 2], [3, 4]]


def test_general_query_layout() -> None:
    gq = hc.general_query(SCHEMA, DSL)
    root = gq.boolean_query
    assert root.occur == pb.MUST
    kinds = [c.WhichOneof("query") for c in root.general_query]
    assert kinds == ["boolean_query", "range_query", "boolean_query", "vector_query"]
    should, age, must_not, vector = root.general_query
    assert should.boolean_query.occur == pb.SHOULD and must_not.boolean_query.occur == pb.MUST_NOT
    assert [(e.operator, e.operand) for e in age.range_query.operand] == [(pb.GTE, "18"), (pb.LT, "65")]
    ok_term = should.boolean_query.general_query[0].term_query
    assert (ok_term.field_name, ok_term.values, ok_term.value_num) == ("ok", struct.pack("<q", 1), 1)
    price = must_not.boolean_query.general_query[0].term_query
    assert price.values == struct.pack("<d", 0.0)
    assert should.boolean_query.general_query[1].range_query.operand[0].operand == "9.5"
    assert vector.vector_query.topk == 10 and len(vector.vector_query.records) == 2
    assert json.loads(vector.vector_query.extra_params[0].value) == {"nprobe": 16}


@pytest.mark.parametrize("as_dsl", [False, True])
def test_search_param_reads_back_as_the_query(as_dsl: bool) -> None:
    param = hc.search_param(SCHEMA, DSL, partition_tags=["a", "b"], as_dsl=as_dsl)
    assert param.collection_name == "shop" and list(param.partition_tag_array) == ["a", "b"]
    assert query_from_search_param(param, SCHEMA) == query_from_dsl(DSL, SCHEMA)
    keys = [kv.key for kv in param.extra_params]
    if as_dsl:
        assert keys == ["dsl"] and "query" not in param.extra_params[0].value
        assert param.general_query.WhichOneof("query") == "vector_query"
        assert param.general_query.vector_query.topk == 0 and len(param.general_query.vector_query.records) == 2
    else:
        assert keys == [] and param.general_query.WhichOneof("query") == "boolean_query"


def test_malformed_dsl_fails_before_sending() -> None:
    with pytest.raises(MilvusError) as info:
        hc.search_param(SCHEMA, {"bool": {"should": [{"term": {"nope": [1]}}]}})
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT
    assert info.value.reason == "Field nope does not exist in collection shop."


def test_decode_entity() -> None:
    reply = entity_message(SCHEMA, {"age": [5], "price": [2.5], "ok": [1]}, np.ones((1, 8), np.float32), entity_id=3)
    rows = hc.decode_entity(SCHEMA, reply)
    assert rows.rows == 1 and rows.columns["price"].tolist() == [2.5] and rows.vectors.tolist() == [[1.0] * 8]
    empty = hc.decode_entity(SCHEMA, pb.HEntity())
    assert empty.rows == 0 and empty.vectors.shape == (0, 8) and empty.columns["age"].dtype == np.int32


class _FakeStub:
    """Answers the hybrid RPCs with the server-side model, so the README example is checked end to end."""

    def __init__(self, channel: object) -> None:
        self.schema: Any = None
        self.seen: list[Any] = []

    def CreateHybridCollection(self, request: Any) -> Any:
        self.schema = schema_from_mapping(request)
        return status_pb2.Status()

    def DescribeHybridCollection(self, request: Any) -> Any:
        assert request.collection_name == self.schema.collection_name
        return schema_to_mapping(self.schema)

    def InsertEntity(self, request: Any) -> Any:
        rows = decode_entities(self.schema, request.entities)
        self.seen.append(rows)
        return pb.HEntityIDs(entity_id_array=list(range(rows.rows)))

    def HybridSearch(self, request: Any) -> Any:
        self.seen.append(query_from_search_param(request, self.schema))
        return pb.TopKQueryResult()


def test_the_readme_example(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Hybrid collections"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python"))]
    stubs: list[_FakeStub] = []

    def make(channel: object) -> _FakeStub:
        stubs.append(_FakeStub(channel))
        return stubs[-1]

    monkeypatch.setattr(milvus_pb2_grpc, "MilvusServiceStub", make)
    scope: dict[str, Any] = {"channel": object(), "vectors": np.ones((2, 128), np.float32),
                             "queries": [[0.5] * 128]}
    exec(compile(code, "README.md", "exec"), scope)
    inserted, query = stubs[0].seen
    assert inserted.rows == 2 and inserted.columns["age"].tolist() == [31, 45]
    assert query.vector.topk == 10 and query.filter.must and query.filter.should and query.filter.must_not
