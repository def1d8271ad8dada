"""JSON bodies of the hybrid routes (``/hybrid/collections...``) into the hybrid RPCs' protobuf requests (pure).

- Create: ``{"collection_name", "fields": [{"name", "type", "dimension", "params"}]}`` becomes
  ``CreateHybridCollection``'s ``Mapping``: one ``FieldParam`` per field, ``type`` a ``DataType`` name (the
  vector field ``VECTOR`` with its ``dimension``), ``params`` (an object) its ``extra_params`` entry ``params``.
- Insert: rows ``{"entities": [{field: value, ...}, ...]}`` or columns ``{"columns": {field: [values]}}`` (every
  field of the schema, the vector field included), ``ids`` and ``partition_tag`` optional, become
  ``InsertEntity``'s ``HInsertParam``, its attributes packed by :func:`coordinator.hybrid.attrs.pack_attributes`
  (the encoding every hybrid producer uses), its vectors read by :func:`coordinator.hybrid.vectors.from_json` (with
  Insert's checks) and written as ``RowRecord`` fields in one pass.
- Search: ``{"dsl": {"bool": ...}, "partition_tags": [...], "fields": [...]}`` becomes ``HybridSearch``'s
  ``HSearchParam`` with the DSL as text in ``extra_params["dsl"]``: the server reads it with the same parser as a
  gRPC client's DSL (:func:`coordinator.hybrid.dsl.query_from_dsl`), so both paths refuse and answer alike.

What only JSON can get wrong is refused here with the REST codes of :mod:`coordinator.rest.bodies` (34 missing,
35 illegal, 36 wrong type); what the schema decides raises the model's own errors (``IllegalArgument`` naming the
field, ...) or is left to the server (values out of a narrower type's range, dimensions, names).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from coordinator.errors import IllegalArgument
from coordinator.hybrid import jsonvalue
from coordinator.hybrid.attrs import field_names, pack_attributes
from coordinator.hybrid.from_wire import DSL_KEY
from coordinator.hybrid.schema import FieldSchema, HybridSchema
from coordinator.hybrid.types import DataType, integer_bounds
from coordinator.hybrid.vectors import from_json
from coordinator.rest import bodies
from coordinator.rest.codes import RestError, WebCode
from coordinator.rest.encode import records
from coordinator.wire import field
from milvus_wire import milvus_pb2

# Type names a field may declare; STRING is passed on so that the server refuses it with its own reason.
TYPE_NAMES: dict[str, DataType] = {t.name: t for t in DataType if t not in (DataType.NULL, DataType.UNKNOWN)}
CREATE_KEYS = ("collection_name", "fields")
FIELD_KEYS = ("name", "type", "dimension", "params")
INSERT_KEYS = ("entities", "columns", "ids", "partition_tag")
SEARCH_KEYS = ("dsl", "partition_tags", "fields")
_ID = re.compile(r"-?[0-9]+")
INT64_MIN, INT64_MAX = integer_bounds(DataType.INT64)


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


# -- create ----------------------------------------------------------------------------------------


def _field(spec: Any, index: int) -> Any:
    where = f"fields[{index}]"
    if not isinstance(spec, dict):
        raise bodies.type_error(where, "an object", spec)
    unknown = [key for key in spec if key not in FIELD_KEYS]
    if unknown:
        raise RestError(WebCode.ILLEGAL_BODY, f"Unknown key '{unknown[0]}' in {where}; a field takes "
                                              f"{', '.join(FIELD_KEYS)}")
    name = bodies.string(spec, "name", f"Field 'name' of {where} is missing")
    type_text = bodies.string(spec, "type", f"Field 'type' of {where} ({name}) is missing")
    data_type = TYPE_NAMES.get(type_text.upper())
    if data_type is None:
        raise IllegalArgument(f"Field {name}: unknown type {type_text!r}. Scalar fields are INT8, INT16, INT32, "
                              "INT64, FLOAT, DOUBLE or BOOL; the vector field is VECTOR with its dimension.")
    pairs = []
    params = spec.get("params")
    if params is not None:
        if not isinstance(params, dict):
            raise bodies.type_error("params", "an object", params)
        pairs.append(milvus_pb2.KeyValuePair(key="params", value=_json_text(params)))
    if data_type is DataType.VECTOR:
        dimension = bodies.integer(spec, "dimension", f"Field 'dimension' of {where} ({name}) is missing: the vector "
                                                      "field needs its dimension")
        kind = milvus_pb2.FieldType(vector_param=milvus_pb2.VectorFieldParam(dimension=dimension))
    else:
        if "dimension" in spec:
            raise RestError(WebCode.ILLEGAL_BODY, f"{where} ({name}): only the vector field takes a dimension")
        kind = milvus_pb2.FieldType(data_type=cast(Any, int(data_type)))
    return milvus_pb2.FieldParam(name=name, type=kind, extra_params=pairs)


def mapping_from_json(doc: Mapping[str, Any]) -> Any:
    """``CreateHybridCollection``'s request of a create body (the schema itself is checked by the server)."""
    bodies.strict_keys(doc, CREATE_KEYS)
    name = bodies.string(doc, "collection_name", "Field 'collection_name' is missing")
    fields = doc.get("fields")
    if fields is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'fields' is missing")
    if not isinstance(fields, list):
        raise bodies.type_error("fields", "an array of field objects", fields)
    return milvus_pb2.Mapping(collection_name=name, fields=[_field(f, i) for i, f in enumerate(fields)])


# -- ids -------------------------------------------------------------------------------------------


def id_list(value: Any, name: str = "ids") -> list[int]:
    """Entity ids as JSON integers or decimal strings (replies write them as strings), each within int64."""
    if not isinstance(value, list):
        raise bodies.type_error(name, "an array of ids", value)
    out: list[int] = []
    for item in value:
        if type(item) is int:
            number = item
        elif type(item) is str and item.isascii() and _ID.fullmatch(item):
            number = int(item)
        elif isinstance(item, str):
            raise RestError(WebCode.ILLEGAL_BODY, f"Members of '{name}' must be integers, not {item[:40]!r}")
        else:
            raise bodies.type_error(name, "an array of integers or integer strings", item)
        if not INT64_MIN <= number <= INT64_MAX:
            raise RestError(WebCode.ILLEGAL_BODY, f"Member {number} of '{name}' is out of the int64 range")
        out.append(number)
    return out


# -- insert ----------------------------------------------------------------------------------------


def _missing(schema: HybridSchema, name: str, where: str) -> IllegalArgument:
    return IllegalArgument(f"{where} has no value for field {name} of collection {schema.collection_name}: every "
                           "field needs a value in every row.")


def _unknown(schema: HybridSchema, name: str, where: str) -> IllegalArgument:
    return IllegalArgument(f"Field {name} does not exist in collection {schema.collection_name} ({where}).")


def rows_to_columns(schema: HybridSchema, rows: Any) -> dict[str, list[Any]]:
    """The values of row objects, one list per field of the schema (every row names every field, nothing else)."""
    if not isinstance(rows, list):
        raise bodies.type_error("entities", "an array of objects", rows)
    names = [f.name for f in schema.fields]
    known = frozenset(names)
    out: dict[str, list[Any]] = {n: [] for n in names}
    appends = [(n, out[n].append) for n in names]
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bodies.type_error(f"entities[{i}]", "an object", row)
        if len(row) != len(names) or not known.issuperset(row):
            extra = next((k for k in row if k not in known), None)
            if extra is not None:
                raise _unknown(schema, extra, f"entities[{i}]")
            raise _missing(schema, next(n for n in names if n not in row), f"entities[{i}]")
        for name, append in appends:
            append(row[name])
    return out


def columns_of(schema: HybridSchema, value: Any) -> dict[str, list[Any]]:
    """The lists of a column body, one per field of the schema, all of one length."""
    if not isinstance(value, dict):
        raise bodies.type_error("columns", "an object of arrays", value)
    extra = next((k for k in value if schema.field(k) is None), None)
    if extra is not None:
        raise _unknown(schema, extra, "columns")
    out: dict[str, list[Any]] = {}
    for f in schema.fields:
        if f.name not in value:
            raise _missing(schema, f.name, "columns")
        column = value[f.name]
        if not isinstance(column, list):
            raise bodies.type_error(f"columns.{f.name}", "an array", column)
        first = next(iter(out.items()), None)
        if first is not None and len(column) != len(first[1]):
            raise IllegalArgument(f"Field {f.name} has {len(column)} values, field {first[0]} {len(first[1])}: every "
                                  "field needs a value in every row.")
        out[f.name] = column
    return out


def _value_type(f: FieldSchema, row: int, value: Any, wanted: str) -> RestError:
    return RestError(WebCode.BODY_PARSE_FAIL, f"json error: the value of field '{f.name}' in row index {row} must "
                                              f"be {wanted} ({f.type.name}), not {bodies.json_kind(value)}")


def scalar_column(f: FieldSchema, values: list[Any]) -> np.ndarray:
    """One scalar field's JSON values as the wire type (int64, or float64 for FLOAT/DOUBLE). Integer fields take
    JSON integers (BOOL also true/false), float fields numbers; ranges narrower than int64 are the server's to
    check, as for a gRPC insert."""
    if f.type.is_integer:
        boolean = f.type is DataType.BOOL
        for row, value in enumerate(values):
            if type(value) is not int and not (boolean and type(value) is bool):
                raise _value_type(f, row, value, "an integer or true/false" if boolean else "an integer")
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            row = next(i for i, v in enumerate(values) if not INT64_MIN <= v <= INT64_MAX)
            low, high = integer_bounds(f.type)
            raise IllegalArgument(f"Value {values[row]} of field {f.name} (row index {row}) is out of range for "
                                  f"{f.type.name} ({low} ~ {high}).") from None
    for row, value in enumerate(values):
        if type(value) is not int and type(value) is not float:
            raise _value_type(f, row, value, "a number")
    return np.array(values, dtype=np.float64)  # orjson reads integers beyond 64 bits and 1e309 as errors or floats


ENTITY_VALUES, VECTOR_VALUE, RECORDS, ENTITIES = 6, 7, 1, 3  # HEntity.result_values, FieldValue.vector_value, ...


def entity_bytes(schema: HybridSchema, scalars: Mapping[str, np.ndarray], vectors: np.ndarray) -> bytes:
    """A serialized ``HEntity`` equal to :func:`coordinator.hybrid.attrs.entity_message`'s, its vectors written as
    ``RowRecord`` fields in one pass (:func:`coordinator.rest.encode.records`) instead of a message per row."""
    head = milvus_pb2.HEntity(field_names=field_names(schema), attr_records=pack_attributes(schema, scalars),
                              row_num=len(vectors))
    rows = records(RECORDS, vectors, schema.is_binary)
    return bytes(head.SerializeToString()) + field(ENTITY_VALUES, field(VECTOR_VALUE, rows))


@dataclass(frozen=True, slots=True)
class InsertRequest:
    """``InsertEntity``'s serialized request and the number of rows it carries."""

    body: bytes
    rows: int


def insert_param(name: str, schema: HybridSchema, doc: Mapping[str, Any]) -> InsertRequest:
    """``InsertEntity``'s request of an insert body, for collection ``name`` of schema ``schema``."""
    bodies.strict_keys(doc, INSERT_KEYS)
    rows, columns = doc.get("entities"), doc.get("columns")
    if (rows is None) == (columns is None):
        code = WebCode.BODY_FIELD_LOSS if rows is None else WebCode.ILLEGAL_BODY
        raise RestError(code, "Give the entities as rows ('entities': [{field: value, ...}, ...]) or as columns "
                              "('columns': {field: [values]}), one of the two")
    values = rows_to_columns(schema, rows) if rows is not None else columns_of(schema, columns)
    scalars = {f.name: scalar_column(f, values[f.name]) for f in schema.scalars}
    vectors = from_json(values[schema.vector.name], schema, f"vectors of field {schema.vector.name}")
    ids = [] if doc.get("ids") is None else id_list(doc["ids"])
    tag = bodies.string(doc, "partition_tag", None)
    head = milvus_pb2.HInsertParam(collection_name=name, partition_tag=tag, entity_id_array=ids)
    body = bytes(head.SerializeToString()) + field(ENTITIES, entity_bytes(schema, scalars, vectors))
    return InsertRequest(body, len(vectors))


# -- search ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search body: ``HybridSearch``'s request, and the fields each hit should carry (None: ids and distances)."""

    param: Any
    fields: tuple[str, ...] | None


def strict_object(body: bytes) -> dict[str, Any]:
    """A body parsed as strict JSON by the hybrid model's own reader (no NaN / Infinity, no key twice in one
    object), as the DSL text of a gRPC search is: a DSL reads the same whichever way it arrives."""
    if not body.strip():
        raise RestError(WebCode.BODY_FIELD_LOSS, "Request payload is required.")
    try:
        doc = jsonvalue.loads(body.decode("utf-8"), "request body")
    except UnicodeDecodeError as exc:
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: {exc}") from None
    except IllegalArgument as exc:
        raise RestError(WebCode.BODY_PARSE_FAIL, f"json error: {exc.reason}") from None
    if not isinstance(doc, dict):
        raise RestError(WebCode.BODY_PARSE_FAIL, "json error: the body must be a JSON object")
    return doc


def search_request(name: str, doc: Mapping[str, Any]) -> SearchRequest:
    """``HybridSearch``'s request of a search body for collection ``name``: the DSL travels as text under
    ``extra_params["dsl"]``, its query vectors inside it."""
    bodies.strict_keys(doc, SEARCH_KEYS)
    dsl = doc.get("dsl")
    if dsl is None:
        raise RestError(WebCode.BODY_FIELD_LOSS, "Field 'dsl' is required: {\"bool\": {...}} holding one vector clause")
    if not isinstance(dsl, dict):
        raise bodies.type_error("dsl", "an object", dsl)
    tags = bodies.strings(doc.get("partition_tags"), "partition_tags")
    fields = tuple(bodies.strings(doc.get("fields"), "fields")) or None  # none asked: ids and distances only
    param = milvus_pb2.HSearchParam(collection_name=name, partition_tag_array=tags,
                                    extra_params=[milvus_pb2.KeyValuePair(key=DSL_KEY, value=_json_text(dsl))])
    return SearchRequest(param, fields)
