"""Hybrid (scalar-filtered) collections: field declarations, the JSON DSL helper, and the wire bytes of the
hybrid RPCs (``CreateHybridCollection``, ``InsertEntity``, ``HybridSearch``, ``GetEntityByID``).

A hybrid collection has scalar fields (integers, floats, booleans) and one vector field. Entities are
inserted as columns; a search is a DSL document (Milvus 0.11's dialect)::

    {"bool": {"must": [{"range": {"age": {"GTE": 18, "LT": 65}}},
                       {"term": {"colour": [1, 3]}},
                       {"vector": {"embedding": {"topk": 10, "query": queries, "params": {"nprobe": 16}}}}],
              "must_not": [{"term": {"price": [0.0]}}]}}

The helpers ``bool_query``, ``term``, ``range_query`` and ``vector`` build such documents. The query vectors
(a 2-D array or lists) travel as ``RowRecord``s beside the DSL text, which is sent in
``HSearchParam.extra_params["dsl"]``; the server checks the query against the schema and answers a bad one
with a Milvus status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from . import codec
from ._grpc import milvus_pb2 as pb
from .exceptions import ParamError
from .types import MetricType

__all__ = [
    "DataType",
    "Field",
    "HybridSchema",
    "bool_query",
    "range_query",
    "scalar_field",
    "term",
    "vector",
    "vector_field",
]

DSL_KEY = "dsl"
OCCURS = ("must", "should", "must_not")
RANGE_OPERATORS = frozenset({"GT", "GTE", "LT", "LTE", "EQ", "NE"})
BINARY_METRICS = frozenset({3, 4, 5, 6, 7, "HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE"})


class DataType(IntEnum):
    """Field types of the hybrid proto (``DataType``)."""

    NULL = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    STRING = 20
    BOOL = 30
    FLOAT = 40
    DOUBLE = 41
    VECTOR = 100
    UNKNOWN = 9999


INTEGER_TYPES = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.BOOL})
FLOAT_TYPES = frozenset({DataType.FLOAT, DataType.DOUBLE})


@dataclass(frozen=True, slots=True)
class Field:
    """One field: a scalar (``type`` one of the integer, float or BOOL types) or the vector field (``VECTOR``,
    with ``dimension``; its ``params`` hold ``metric_type`` and ``index_file_size``)."""

    name: str
    type: DataType
    dimension: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HybridSchema:
    """A hybrid collection as ``describe_hybrid_collection`` answers it."""

    collection_name: str
    fields: tuple[Field, ...]

    @property
    def scalars(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type != DataType.VECTOR)

    @property
    def vector(self) -> Field:
        for f in self.fields:
            if f.type == DataType.VECTOR:
                return f
        raise ParamError(f"collection {self.collection_name} has no vector field")

    @property
    def is_binary(self) -> bool:
        return self.vector.params.get("metric_type", 1) in BINARY_METRICS


def scalar_field(name: str, data_type: DataType | int, params: Mapping[str, Any] | None = None) -> Field:
    """A scalar field declaration."""
    kind = DataType(data_type)
    if kind not in INTEGER_TYPES | FLOAT_TYPES:
        raise ParamError(f"field {name}: {kind.name} is not a scalar type (INT8..INT64, BOOL, FLOAT, DOUBLE)")
    return Field(name, kind, 0, dict(params or {}))


def vector_field(name: str, dimension: int, metric_type: MetricType | int | str = MetricType.L2,
                 index_file_size: int = 1024, **params: Any) -> Field:
    """The vector field declaration (metric as a number or a name, segment size in MB)."""
    metric = metric_type if isinstance(metric_type, str) else int(metric_type)
    return Field(name, DataType.VECTOR, int(dimension),
                 {"metric_type": metric, "index_file_size": index_file_size, **params})


# --- DSL -------------------------------------------------------------------------------------------------


def term(field_name: str, values: Iterable[Any]) -> dict[str, Any]:
    """``{"term": {field: [values]}}``: rows whose value is one of ``values``."""
    return {"term": {field_name: list(values)}}


def range_query(field_name: str, **comparisons: Any) -> dict[str, Any]:
    """``{"range": {field: {"GT": v, ...}}}`` (GT, GTE, LT, LTE, EQ, NE; ANDed)."""
    unknown = {k for k in comparisons if k.upper() not in RANGE_OPERATORS}
    if not comparisons or unknown:
        raise ParamError(f"range on {field_name}: give comparisons among GT, GTE, LT, LTE, EQ, NE; got "
                         f"{sorted(comparisons)}")
    return {"range": {field_name: {k.upper(): v for k, v in comparisons.items()}}}


def vector(field_name: str, topk: int, query: Any, params: Mapping[str, Any] | None = None,
           metric_type: str | int | None = None) -> dict[str, Any]:
    """The vector clause: ``topk`` nearest rows to each query vector among the rows the filter passes."""
    spec: dict[str, Any] = {"topk": topk, "query": query}
    if params:
        spec["params"] = dict(params)
    if metric_type is not None:
        spec["metric_type"] = metric_type
    return {"vector": {field_name: spec}}


def bool_query(must: Sequence[Any] = (), should: Sequence[Any] = (), must_not: Sequence[Any] = ()) -> dict[str, Any]:
    """``{"bool": {"must": [...], "should": [...], "must_not": [...]}}`` (empty groups left out)."""
    body = {k: list(v) for k, v in (("must", must), ("should", should), ("must_not", must_not)) if v}
    if not body:
        raise ParamError("a bool query needs at least one clause")
    return {"bool": body}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def split_dsl(dsl: Mapping[str, Any]) -> tuple[str, str, Any]:
    """``(DSL text without the query vectors, vector field, query vectors)``; ``ParamError`` when the document
    is not ``{"bool": ...}`` or does not hold exactly one vector clause with a ``query``."""
    if not isinstance(dsl, Mapping) or set(dsl) != {"bool"}:
        raise ParamError('a hybrid query is {"bool": {"must": [...], ...}}')
    found: list[tuple[str, Any]] = []

    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(n) for n in node]
        if not isinstance(node, Mapping):
            return node
        if set(node) == {"vector"} and isinstance(node["vector"], Mapping) and len(node["vector"]) == 1:
            name, spec = next(iter(node["vector"].items()))
            if isinstance(spec, Mapping) and "query" in spec:
                found.append((name, spec["query"]))
                return {"vector": {name: {k: v for k, v in spec.items() if k != "query"}}}
        return {k: strip(v) for k, v in node.items()}

    stripped = strip(dict(dsl))
    if len(found) != 1:
        raise ParamError(f"a hybrid query holds exactly one vector clause with its query vectors; found {len(found)}")
    try:
        text = json.dumps(stripped, separators=(",", ":"), default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ParamError(f"the query is not valid JSON: {exc}") from exc
    return text, found[0][0], found[0][1]


# --- wire -------------------------------------------------------------------------------------------------


def _kv(key: str, value: str) -> pb.KeyValuePair:
    return pb.KeyValuePair(key=key, value=value)


def mapping_bytes(collection_name: str, fields: Sequence[Field]) -> bytes:
    """``CreateHybridCollection``'s ``Mapping``."""
    out = pb.Mapping(collection_name=collection_name)
    for f in fields:
        param = out.fields.add(name=f.name)
        if f.type == DataType.VECTOR:
            param.type.vector_param.dimension = f.dimension
        else:
            param.type.data_type = int(f.type)
        if f.params:
            param.extra_params.append(_kv("params", json.dumps(dict(f.params), default=_json_default)))
    return out.SerializeToString()


def schema_from_mapping(reply: pb.Mapping) -> HybridSchema:
    fields: list[Field] = []
    for f in reply.fields:
        params: dict[str, Any] = {}
        for kv in f.extra_params:
            if kv.key == "params":
                try:
                    loaded = json.loads(kv.value)
                except ValueError:
                    loaded = {}
                params = loaded if isinstance(loaded, dict) else {}
        if f.type.WhichOneof("value") == "vector_param":
            fields.append(Field(f.name, DataType.VECTOR, int(f.type.vector_param.dimension), params))
        else:
            fields.append(Field(f.name, DataType(f.type.data_type), 0, params))
    return HybridSchema(reply.collection_name, tuple(fields))


def pack_columns(schema: HybridSchema, columns: Mapping[str, Any], rows: int) -> tuple[list[str], bytes]:
    """``(field_names, attr_records)``: every scalar field's column, 8 bytes a value (int64 for integers and BOOL,
    float64 for FLOAT/DOUBLE), in schema order, then the vector field's name."""
    scalars = schema.scalars
    names = {f.name for f in scalars}
    unknown = sorted(set(columns) - names)
    missing = sorted(names - set(columns))
    if unknown or missing:
        raise ParamError(f"columns must be the scalar fields of {schema.collection_name}: "
                         f"missing {missing}, unknown {unknown}")
    parts: list[bytes] = []
    for f in scalars:
        column = np.asarray(columns[f.name])
        if column.ndim != 1 or column.shape[0] != rows:
            raise ParamError(f"column {f.name}: {rows} values expected (one per vector), got shape {column.shape}")
        if f.type in INTEGER_TYPES:
            if column.dtype.kind not in "iub":
                raise ParamError(f"column {f.name} ({f.type.name}) takes integers, got {column.dtype}")
            parts.append(column.astype("<i8").tobytes())
        else:
            if column.dtype.kind not in "fiu":
                raise ParamError(f"column {f.name} ({f.type.name}) takes numbers, got {column.dtype}")
            parts.append(column.astype("<f8").tobytes())
    return [*(f.name for f in scalars), schema.vector.name], b"".join(parts)


def insert_entity_bytes(schema: HybridSchema, columns: Mapping[str, Any], records: codec.Records,
                        ids: npt.NDArray[np.int64] | None, partition_tag: str | None) -> bytes:
    """``InsertEntity``'s ``HInsertParam``, the vectors written as in ``Insert`` (one array operation)."""
    names, attrs = pack_columns(schema, columns, records.rows)
    vector_value = codec.rows(1, records)  # VectorFieldValue.value
    field_value = codec.ld(7, vector_value)  # FieldValue.vector_value
    entity = b"".join((
        b"".join(codec.ld(3, n.encode("utf-8")) for n in names),
        codec.ld(4, attrs) if attrs else b"",
        codec.varint_field(5, records.rows),
        codec.ld(6, field_value),
    ))
    return b"".join((
        codec.string(1, schema.collection_name),
        codec.string(2, partition_tag or ""),
        codec.ld(3, entity),
        codec.packed_int64(4, ids),
    ))


def search_bytes(collection_name: str, dsl: Mapping[str, Any], partition_tags: Sequence[str] | None) -> bytes:
    """``HybridSearch``'s ``HSearchParam``: the DSL text in ``extra_params["dsl"]``, its query vectors as
    ``RowRecord``s in a bare ``VectorQuery``."""
    text, vector_name, query = split_dsl(dsl)
    records = codec.to_records(query)
    vector_query = codec.string(1, vector_name) + codec.rows(3, records)
    general = codec.ld(4, vector_query)
    tags = b"".join(codec.ld(2, t.encode("utf-8")) for t in (partition_tags or ()))
    return b"".join((codec.string(1, collection_name), tags, codec.ld(3, general),
                     codec.ld(4, _kv(DSL_KEY, text).SerializeToString())))


def decode_entity(schema: HybridSchema, entity: pb.HEntity) -> dict[str, Any] | None:
    """One entity of ``GetEntityByID``'s reply: ``{field: value, ..., vector field: list of floats or bytes}``,
    ``None`` for an id not found."""
    if entity.row_num == 0 or not entity.result_values:
        return None
    names = list(entity.field_names)
    scalar_names = names[:-1]
    types = {f.name: f.type for f in schema.fields}
    attrs = np.frombuffer(entity.attr_records, dtype="<i8").reshape(len(scalar_names), -1) if scalar_names else None
    out: dict[str, Any] = {"id": int(entity.entity_id)}
    for i, name in enumerate(scalar_names):
        assert attrs is not None
        raw = attrs[i, 0]
        kind = types.get(name, DataType.INT64)
        if kind in FLOAT_TYPES:
            out[name] = float(np.array([raw], dtype="<i8").view("<f8")[0])
        elif kind == DataType.BOOL:
            out[name] = bool(raw)
        else:
            out[name] = int(raw)
    row = entity.result_values[0].vector_value.value[0]
    out[names[-1]] = bytes(row.binary_data) if row.binary_data else list(row.float_data)
    return out
