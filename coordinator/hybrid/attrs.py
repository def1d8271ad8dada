"""``HEntity.attr_records``: scalar columns on the wire, decoded and checked exactly, and packed back.

The encoding (the only one any 1.x producer used): ``field_names`` lists every scalar field once, in any
order, then the vector field last; ``attr_records`` holds the scalar columns one after another in that order,
``row_num`` values each, every value 8 bytes little-endian (int64 for INT8..INT64 and BOOL, float64 for FLOAT
and DOUBLE); the vectors are ``result_values[0].vector_value.value``, ``row_num`` of them. Lengths must match
exactly (a message of another encoding can decode without error yet carry nothing). Values a narrower type
cannot hold are refused, never wrapped: integers outside INT8/16/32's range, BOOL other than 0/1, FLOAT beyond
float32's range; NaN and infinity are refused in FLOAT and DOUBLE fields. FLOAT values are rounded to float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coordinator.errors import IllegalArgument
from coordinator.hybrid.schema import FieldSchema, HybridSchema
from coordinator.hybrid.types import FLOAT32_MAX, STORAGE_DTYPE, WIRE_VALUE_BYTES, DataType, integer_bounds, wire_dtype
from coordinator.hybrid.vectors import from_records, to_records
from milvus_wire import milvus_pb2


@dataclass(frozen=True, slots=True, eq=False)
class Entities:
    """Decoded rows of an ``InsertEntity``: scalar columns (schema order, storage dtypes) and vectors."""

    rows: int
    columns: Mapping[str, np.ndarray]
    vectors: np.ndarray


def scalar_order(schema: HybridSchema, field_names: Sequence[str]) -> tuple[FieldSchema, ...]:
    """The scalar fields in the order ``field_names`` gives them (each exactly once, the vector field last)."""
    vector = schema.vector.name
    if not field_names or field_names[-1] != vector:
        raise IllegalArgument(f"field_names must name every field of collection {schema.collection_name} with the "
                              f"vector field {vector} last.")
    order: list[FieldSchema] = []
    seen: set[str] = set()
    for name in field_names[:-1]:
        f = schema.field(name)
        if f is None:
            raise IllegalArgument(f"Field {name} does not exist in collection {schema.collection_name}.")
        if f.is_vector:
            raise IllegalArgument(f"field_names must name the vector field {vector} once, last.")
        if name in seen:
            raise IllegalArgument(f"Field {name} is named more than once in field_names.")
        seen.add(name)
        order.append(f)
    missing = [f.name for f in schema.scalars if f.name not in seen]
    if missing:
        raise IllegalArgument(f"field_names lacks field(s) {', '.join(missing)} of collection "
                              f"{schema.collection_name}: every field needs a value in every row.")
    return tuple(order)


def _refuse(f: FieldSchema, values: np.ndarray, bad: np.ndarray, why: str) -> None:
    row = int(np.flatnonzero(bad)[0])
    raise IllegalArgument(f"Value {values[row]!r} of field {f.name} (row index {row}) {why}.")


def narrow(f: FieldSchema, values: np.ndarray) -> np.ndarray:
    """Wire values (int64 or float64) of field ``f`` as its storage dtype; values it cannot hold are refused."""
    if f.type.is_integer:
        low, high = integer_bounds(f.type)
        if f.type is not DataType.INT64:
            bad = (values < low) | (values > high)
            if bad.any():
                _refuse(f, values.astype(object), bad, f"is out of range for {f.type.name} ({low} ~ {high})")
        return values.astype(STORAGE_DTYPE[f.type])
    bad = ~np.isfinite(values)
    if bad.any():
        _refuse(f, values, bad, "is not a finite number (NaN and infinity are refused)")
    if f.type is DataType.FLOAT:
        bad = np.abs(values) > FLOAT32_MAX
        if bad.any():
            # Values that round to the largest float32 are kept; only those that would become infinite are refused.
            with np.errstate(over="ignore"):
                bad = ~np.isfinite(values.astype(np.float32))
            if bad.any():
                _refuse(f, values, bad, f"is out of range for FLOAT (+-{FLOAT32_MAX!r})")
    return values.astype(STORAGE_DTYPE[f.type])


def decode_attributes(schema: HybridSchema, field_names: Sequence[str], attr_records: bytes,
                      rows: int) -> dict[str, np.ndarray]:
    """The scalar columns of ``rows`` rows, keyed by field name in schema order, as storage dtypes."""
    order = scalar_order(schema, field_names)
    expected = rows * WIRE_VALUE_BYTES * len(order)
    if len(attr_records) != expected:
        raise IllegalArgument(f"attr_records holds {len(attr_records)} bytes; {rows} rows of {len(order)} scalar "
                              f"field(s) need exactly {expected} ({WIRE_VALUE_BYTES} bytes a value).")
    decoded: dict[str, np.ndarray] = {}
    for i, f in enumerate(order):
        wire = np.frombuffer(attr_records, dtype=wire_dtype(f.type), count=rows, offset=i * rows * WIRE_VALUE_BYTES)
        decoded[f.name] = narrow(f, wire)
    return {f.name: decoded[f.name] for f in schema.scalars}


VectorDecoder = Callable[[Sequence[Any], HybridSchema], np.ndarray]


def entity_records(entity: Any) -> Sequence[Any]:
    """The vector ``RowRecord``s of an ``HEntity``: one ``FieldValue`` holding ``vector_value``."""
    values = entity.result_values
    if len(values) != 1 or values[0].WhichOneof("value") != "vector_value":
        raise IllegalArgument("HEntity.result_values must hold exactly one FieldValue with the vectors "
                              f"(vector_value); got {len(values)} value(s).")
    return values[0].vector_value.value


def decode_entities(schema: HybridSchema, entity: Any, decode_vectors: VectorDecoder = from_records) -> Entities:
    """An ``InsertEntity``'s ``HEntity`` checked and decoded: field names, counts, attributes, then vectors.

    ``decode_vectors`` turns the ``RowRecord``s into an array (a node may pass its bulk decoder)."""
    scalar_order(schema, list(entity.field_names))
    records = entity_records(entity)
    rows = int(entity.row_num)
    if len(records) != rows:
        raise IllegalArgument(f"HEntity.row_num is {rows} but it carries {len(records)} vector(s).")
    columns = decode_attributes(schema, list(entity.field_names), entity.attr_records, rows)
    vectors = decode_vectors(records, schema)
    return Entities(rows, columns, vectors)


def pack_attributes(schema: HybridSchema, columns: Mapping[str, Any]) -> bytes:
    """``attr_records`` of columns (arrays or sequences) in schema order; the reverse of
    :func:`decode_attributes` with ``field_names`` = :func:`field_names` (no range checks: what is packed is
    what the server will check)."""
    parts: list[bytes] = []
    rows: int | None = None
    for f in schema.scalars:
        if f.name not in columns:
            raise IllegalArgument(f"No values for field {f.name}.")
        values = np.asarray(columns[f.name])
        if values.ndim != 1:
            raise IllegalArgument(f"The values of field {f.name} must be one-dimensional.")
        if rows is not None and len(values) != rows:
            raise IllegalArgument(f"Field {f.name} has {len(values)} values, other fields {rows}.")
        rows = len(values)
        allowed = "iub" if f.type.is_integer else "iuf"
        if values.size and values.dtype.kind not in allowed:
            kind = "integers" if f.type.is_integer else "numbers"
            raise IllegalArgument(f"The values of field {f.name} ({f.type.name}) must be {kind}.")
        parts.append(values.astype(wire_dtype(f.type)).tobytes())
    return b"".join(parts)


def field_names(schema: HybridSchema) -> list[str]:
    """``HEntity.field_names`` as this server writes them: scalar fields in schema order, the vector last."""
    return [f.name for f in schema.scalars] + [schema.vector.name]


def entity_message(schema: HybridSchema, columns: Mapping[str, Any], vectors: np.ndarray, entity_id: int = 0) -> Any:
    """An ``HEntity`` (status unset) holding ``len(vectors)`` rows: ``GetEntityByID``'s reply with one row."""
    return milvus_pb2.HEntity(
        entity_id=entity_id,
        field_names=field_names(schema),
        attr_records=pack_attributes(schema, columns),
        row_num=len(vectors),
        result_values=[milvus_pb2.FieldValue(
            vector_value=milvus_pb2.VectorFieldValue(value=to_records(vectors, schema.is_binary)))],
    )
