"""The schema of a hybrid collection: its fields, from ``CreateHybridCollection``'s ``Mapping`` and back.

A hybrid collection has scalar fields (INT8, INT16, INT32, INT64, FLOAT, DOUBLE; BOOL as an extension) and
exactly one vector field, declared with ``type.vector_param.dimension``. The vector field's ``extra_params``
entry ``params`` (a JSON object) gives the collection's ``metric_type`` (1..7 or a metric name, default L2) and
``index_file_size`` (MB, default 1024). Every field keeps its ``extra_params`` exactly as given, in order, so
that ``DescribeHybridCollection`` answers them unchanged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from coordinator import validation
from coordinator.errors import IllegalArgument, IllegalMetricType
from coordinator.hybrid.jsonvalue import is_integer, params_object
from coordinator.hybrid.types import SCALAR_TYPES, DataType
from coordinator.model import MAX_NAME_LENGTH, Collection, MetricType
from milvus_wire import milvus_pb2

MAX_FIELDS = 64
DEFAULT_METRIC = MetricType.L2
DEFAULT_INDEX_FILE_SIZE_MB = 1024
SCALAR_NAMES = "INT8, INT16, INT32, INT64, FLOAT, DOUBLE or BOOL"


@dataclass(frozen=True, slots=True)
class FieldSchema:
    name: str
    type: DataType  # DataType.VECTOR for the vector field
    params: tuple[tuple[str, str], ...] = ()  # extra_params as given (key, value), in order
    dimension: int = 0  # the vector field's
    id: int = 0  # FieldParam.id as given (not interpreted)

    @property
    def is_vector(self) -> bool:
        return self.type is DataType.VECTOR


@dataclass(frozen=True, slots=True)
class HybridSchema:
    """Build with :func:`build_schema` (which validates); fields keep their declared order."""

    collection_name: str
    fields: tuple[FieldSchema, ...]
    metric: MetricType
    index_file_size: int  # MB

    @property
    def vector(self) -> FieldSchema:
        return next(f for f in self.fields if f.is_vector)

    @property
    def scalars(self) -> tuple[FieldSchema, ...]:
        """The scalar fields in declared order: the order of ``attr_records`` columns this server writes."""
        return tuple(f for f in self.fields if not f.is_vector)

    @property
    def dimension(self) -> int:
        return self.vector.dimension

    @property
    def is_binary(self) -> bool:
        return self.metric.is_binary

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def field_name(name: str) -> None:
    """Field names follow the collection-name rules; a bad one is ILLEGAL_ARGUMENT."""
    if not name:
        raise IllegalArgument("Field name should not be empty.")
    prefix = f"Invalid field name: {name}. "
    if len(name) > MAX_NAME_LENGTH:
        raise IllegalArgument(prefix + f"The length of a field name must be less than {MAX_NAME_LENGTH} characters.")
    first = name[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise IllegalArgument(prefix + "The first character of a field name must be an underscore or letter.")
    if not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name[1:]):
        raise IllegalArgument(prefix + "Field name can only contain numbers, letters, and underscores.")


def _check_type(f: FieldSchema) -> None:
    if f.is_vector or f.type in SCALAR_TYPES:
        return
    if f.type is DataType.STRING:
        raise IllegalArgument(f"Field {f.name}: type STRING is not supported. The scalar fields of a hybrid "
                              f"collection are {SCALAR_NAMES}.")
    raise IllegalArgument(f"Field {f.name}: invalid data type {f.type.name}. The scalar fields of a hybrid "
                          f"collection are {SCALAR_NAMES}; the vector field is declared with type.vector_param.")


def _metric(raw: Any) -> MetricType:
    if isinstance(raw, str) and raw in MetricType.__members__:
        return MetricType[raw]
    if is_integer(raw):
        return validation.metric_type(raw)
    raise IllegalMetricType(f"Invalid index metric type: {json.dumps(raw)}. Make sure the metric type is in "
                            "MetricType list.")


def _vector_settings(vector: FieldSchema) -> tuple[MetricType, int]:
    params = params_object(vector.params, f"params of field {vector.name}")
    metric = _metric(params["metric_type"]) if "metric_type" in params else DEFAULT_METRIC
    validation.dimension(vector.dimension, metric)
    size = params.get("index_file_size", DEFAULT_INDEX_FILE_SIZE_MB)
    if not is_integer(size):
        raise IllegalArgument(f"Invalid index file size: {json.dumps(size)}. The index file size must be an "
                              "integer.")
    validation.index_file_size(size)
    return metric, size


def build_schema(collection_name: str, fields: Sequence[FieldSchema]) -> HybridSchema:
    """Validate a collection name and its fields; the errors carry Milvus codes (see the module doc)."""
    validation.collection_name(collection_name)
    if not fields:
        raise IllegalArgument(f"Collection {collection_name} has no field: a hybrid collection needs exactly "
                              "one vector field.")
    if len(fields) > MAX_FIELDS:
        raise IllegalArgument(f"A hybrid collection may have at most {MAX_FIELDS} fields, got {len(fields)}.")
    seen: set[str] = set()
    for f in fields:
        field_name(f.name)
        if f.name in seen:
            raise IllegalArgument(f"Duplicate field name: {f.name}.")
        seen.add(f.name)
        _check_type(f)
    vectors = [f.name for f in fields if f.is_vector]
    if not vectors:
        raise IllegalArgument(f"Collection {collection_name} has no vector field: a hybrid collection needs exactly "
                              "one (declared with type.vector_param and its dimension).")
    if len(vectors) > 1:
        raise IllegalArgument(f"Collection {collection_name} has {len(vectors)} vector fields "
                              f"({', '.join(vectors)}): a hybrid collection needs exactly one.")
    vector = next(f for f in fields if f.is_vector)
    metric, size = _vector_settings(vector)
    return HybridSchema(collection_name, tuple(fields), metric, size)


def _field_from_param(param: Any) -> FieldSchema:
    params = tuple((kv.key, kv.value) for kv in param.extra_params)
    kind = param.type.WhichOneof("value")
    if kind == "vector_param":
        return FieldSchema(param.name, DataType.VECTOR, params, int(param.type.vector_param.dimension), param.id)
    raw = int(param.type.data_type) if kind == "data_type" else DataType.NULL
    if raw == DataType.VECTOR:
        field_name(param.name)
        raise IllegalArgument(f"Field {param.name}: a vector field is declared with type.vector_param (its "
                              "dimension), not data_type VECTOR.")
    try:
        data_type = DataType(raw)
    except ValueError:
        field_name(param.name)
        raise IllegalArgument(f"Field {param.name}: invalid data type {raw}. The scalar fields of a hybrid "
                              f"collection are {SCALAR_NAMES}.") from None
    return FieldSchema(param.name, data_type, params, 0, param.id)


def schema_from_mapping(mapping: Any) -> HybridSchema:
    """``CreateHybridCollection``'s request (``status`` and ``collection_id`` are ignored)."""
    return build_schema(mapping.collection_name, [_field_from_param(p) for p in mapping.fields])


def _field_param(f: FieldSchema) -> Any:
    if f.is_vector:
        kind = milvus_pb2.FieldType(vector_param=milvus_pb2.VectorFieldParam(dimension=f.dimension))
    else:
        kind = milvus_pb2.FieldType(data_type=cast(Any, int(f.type)))
    pairs = [milvus_pb2.KeyValuePair(key=k, value=v) for k, v in f.params]
    return milvus_pb2.FieldParam(id=f.id, name=f.name, type=kind, extra_params=pairs)


def schema_to_mapping(schema: HybridSchema, collection_id: int = 0) -> Any:
    """``DescribeHybridCollection``'s answer without its status: every field in declared order, with its type
    (the vector field with its dimension) and its ``extra_params`` as given."""
    return milvus_pb2.Mapping(collection_id=collection_id, collection_name=schema.collection_name,
                              fields=[_field_param(f) for f in schema.fields])


def schema_to_json(schema: HybridSchema) -> str:
    """Compact JSON of the fields, for the catalog."""
    fields = [{"name": f.name, "type": int(f.type), "dimension": f.dimension, "id": f.id,
               "params": [list(p) for p in f.params]} for f in schema.fields]
    return json.dumps({"fields": fields}, separators=(",", ":"), ensure_ascii=False)


def schema_from_json(collection_name: str, text: str) -> HybridSchema:
    """The schema :func:`schema_to_json` wrote (validated again)."""
    doc = json.loads(text)
    fields: Iterable[dict[str, Any]] = doc["fields"]
    return build_schema(collection_name, [
        FieldSchema(f["name"], DataType(f["type"]), tuple((k, v) for k, v in f["params"]), f["dimension"], f["id"])
        for f in fields
    ])


@functools.lru_cache(maxsize=1024)
def _parsed(collection_name: str, text: str) -> HybridSchema:
    return schema_from_json(collection_name, text)


def collection_schema(coll: Collection) -> HybridSchema | None:
    """The schema of a hybrid collection (each distinct catalog text parsed once), None for a plain one."""
    if not coll.hybrid_schema:
        return None
    return _parsed(coll.name, coll.hybrid_schema)
