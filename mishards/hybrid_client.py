"""Build the requests of Milvus 1.1's hybrid RPCs for the plain gRPC stubs (no released pymilvus speaks them).

Example (``stub`` a ``milvus_pb2_grpc.MilvusServiceStub``)::

    from milvus_wire import milvus_pb2
    from mishards import hybrid_client as hc

    fields = [hc.scalar_field("age", hc.DataType.INT32), hc.scalar_field("price", hc.DataType.DOUBLE),
              hc.vector_field("embedding", 128, metric_type="L2")]
    stub.CreateHybridCollection(hc.mapping("shop", fields))
    schema = hc.schema_of(stub.DescribeHybridCollection(milvus_pb2.CollectionName(collection_name="shop")))
    stub.InsertEntity(hc.insert_param(schema, {"age": [31, 45], "price": [9.5, 20.0]}, vectors))
    dsl = {"bool": {"must": [{"range": {"age": {"GTE": 18, "LT": 65}}},
                             {"vector": {"embedding": {"topk": 10, "query": queries, "params": {"nprobe": 16}}}}],
                    "must_not": [{"term": {"price": [0.0]}}]}}
    reply = stub.HybridSearch(hc.search_param(schema, dsl))   # a TopKQueryResult, as Search answers

The DSL is checked here with the server's own parser, so a malformed query fails before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from coordinator.hybrid.attrs import Entities, decode_entities, field_names, pack_attributes
from coordinator.hybrid.dsl import query_from_dsl
from coordinator.hybrid.from_wire import DSL_KEY, query_to_general, vector_message
from coordinator.hybrid.schema import HybridSchema, schema_from_mapping
from coordinator.hybrid.types import STORAGE_DTYPE, CompareOp, DataType, Occur
from coordinator.hybrid.vectors import to_records
from coordinator.model import MetricType
from milvus_wire import milvus_pb2

__all__ = ["CompareOp", "DataType", "MetricType", "Occur", "decode_entity", "general_query", "insert_param",
           "mapping", "scalar_field", "schema_of", "search_param", "vector_field"]


def _params(params: Mapping[str, Any] | None) -> list[Any]:
    if not params:
        return []
    return [milvus_pb2.KeyValuePair(key="params", value=json.dumps(dict(params)))]


def scalar_field(name: str, data_type: DataType | int, params: Mapping[str, Any] | None = None) -> Any:
    """A ``FieldParam`` of a scalar field."""
    kind = milvus_pb2.FieldType(data_type=cast(Any, int(data_type)))
    return milvus_pb2.FieldParam(name=name, type=kind, extra_params=_params(params))


def vector_field(name: str, dimension: int, metric_type: MetricType | int | str = MetricType.L2,
                 index_file_size: int = 1024, **params: Any) -> Any:
    """The ``FieldParam`` of the vector field: metric (number or name) and segment size in its params."""
    metric = metric_type if isinstance(metric_type, str) else int(metric_type)
    settings = {"metric_type": metric, "index_file_size": index_file_size, **params}
    kind = milvus_pb2.FieldType(vector_param=milvus_pb2.VectorFieldParam(dimension=dimension))
    return milvus_pb2.FieldParam(name=name, type=kind, extra_params=_params(settings))


def mapping(collection_name: str, fields: Iterable[Any]) -> Any:
    """``CreateHybridCollection``'s request."""
    return milvus_pb2.Mapping(collection_name=collection_name, fields=list(fields))


def schema_of(described: Any) -> HybridSchema:
    """The schema of a ``Mapping`` (``DescribeHybridCollection``'s reply, or the one created)."""
    return schema_from_mapping(described)


def insert_param(schema: HybridSchema, columns: Mapping[str, Sequence[Any] | np.ndarray], vectors: Any,
                 ids: Sequence[int] | None = None, partition_tag: str = "") -> Any:
    """``InsertEntity``'s request: one value per row for every scalar field, and the rows' vectors (float, or
    packed bits as uint8 for binary collections). Values are sent as given; the server checks their ranges."""
    array = np.asarray(vectors, dtype=np.uint8 if schema.is_binary else np.float32)
    if array.ndim != 2:
        raise ValueError("vectors must be a two-dimensional array (one row per entity)")
    entity = milvus_pb2.HEntity(
        field_names=field_names(schema),
        attr_records=pack_attributes(schema, columns),
        row_num=array.shape[0],
        result_values=[milvus_pb2.FieldValue(
            vector_value=milvus_pb2.VectorFieldValue(value=to_records(array, schema.is_binary)))],
    )
    return milvus_pb2.HInsertParam(collection_name=schema.collection_name, partition_tag=partition_tag,
                                   entities=entity, entity_id_array=list(ids or []))


def general_query(schema: HybridSchema, dsl: Mapping[str, Any]) -> Any:
    """The ``GeneralQuery`` tree of a DSL query (term values packed, operands as decimal strings)."""
    return query_to_general(query_from_dsl(dict(dsl), schema), schema)


def _without_query(node: Any) -> Any:
    """A copy of a DSL document whose vector clause has no ``query`` (the vectors travel as RowRecords)."""
    if isinstance(node, list):
        return [_without_query(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"vector"} and isinstance(node["vector"], dict):
        return {"vector": {f: {k: v for k, v in spec.items() if k != "query"} for f, spec in node["vector"].items()}}
    return {k: _without_query(v) for k, v in node.items()}


def search_param(schema: HybridSchema, dsl: Mapping[str, Any], partition_tags: Sequence[str] = (),
                 as_dsl: bool = False) -> Any:
    """``HybridSearch``'s request. By default the query travels as a ``GeneralQuery`` tree (what any 1.1 server
    of hybrid search reads); with ``as_dsl`` as the DSL text in ``extra_params["dsl"]`` (this server's
    extension), its vectors in a bare ``VectorQuery`` beside it."""
    query = query_from_dsl(dict(dsl), schema)
    if not as_dsl:
        return milvus_pb2.HSearchParam(collection_name=schema.collection_name,
                                       partition_tag_array=list(partition_tags),
                                       general_query=query_to_general(query, schema))
    carrier = vector_message(query, schema.is_binary)
    carrier.vector_query.ClearField("topk")
    carrier.vector_query.ClearField("extra_params")
    return milvus_pb2.HSearchParam(
        collection_name=schema.collection_name, partition_tag_array=list(partition_tags), general_query=carrier,
        extra_params=[milvus_pb2.KeyValuePair(key=DSL_KEY, value=json.dumps(_without_query(dict(dsl))))])


def decode_entity(schema: HybridSchema, entity: Any) -> Entities:
    """The rows of an ``HEntity`` (``GetEntityByID``'s reply): scalar columns and vectors; an entity without
    rows or values (an id not found) gives zero rows."""
    if entity.row_num == 0 and not entity.result_values and not entity.attr_records:
        width = schema.dimension // 8 if schema.is_binary else schema.dimension
        empty = np.zeros((0, width), dtype=np.uint8 if schema.is_binary else np.float32)
        return Entities(0, {f.name: np.zeros(0, STORAGE_DTYPE[f.type]) for f in schema.scalars}, empty)
    return decode_entities(schema, entity)
