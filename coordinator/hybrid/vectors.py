"""Vectors of hybrid requests into numpy, with the checks and reasons of Milvus 1.1's Insert and Search.

Float collections: float32 ``(n, dim)``; binary ones: packed bits as uint8 ``(n, dim / 8)``. Empty lists are
ILLEGAL_ROWRECORD, a wrong length ILLEGAL_DIMENSION, NaN or infinity ILLEGAL_ROWRECORD, more than 256 MB of
vectors ILLEGAL_ROWRECORD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coordinator import validation
from coordinator.errors import IllegalArgument, IllegalDimension, IllegalRowRecord
from coordinator.hybrid.jsonvalue import is_integer, is_number
from coordinator.hybrid.schema import HybridSchema
from coordinator.row_records import decode_row_records
from milvus_wire import milvus_pb2


def row_bytes(schema: HybridSchema) -> int:
    return schema.dimension // 8 if schema.is_binary else schema.dimension * 4


def from_records(records: Sequence[Any], schema: HybridSchema) -> np.ndarray:
    """``RowRecord`` messages (``float_data`` or ``binary_data`` by the collection's kind) into one array."""
    if len(records) == 0:
        raise IllegalRowRecord(validation.EMPTY_VECTORS)
    n = len(records)
    validation.vector_bytes(n, row_bytes(schema))
    decoded = decode_row_records(records, schema.dimension, schema.is_binary)
    return decoded.copy() if schema.is_binary else decoded


def from_json(rows: Any, schema: HybridSchema, what: str) -> np.ndarray:
    """A JSON list of vectors: lists of numbers (float collections) or of byte values 0..255 (binary ones)."""
    if not isinstance(rows, list):
        raise IllegalArgument(f"Invalid {what}: expected a list of vectors")
    if not rows:
        raise IllegalRowRecord(validation.EMPTY_VECTORS)
    validation.vector_bytes(len(rows), row_bytes(schema))
    width = schema.dimension // 8 if schema.is_binary else schema.dimension
    for row in rows:
        if not isinstance(row, list):
            raise IllegalArgument(f"Invalid {what}: every vector must be a list of numbers")
        if len(row) != width:
            raise IllegalDimension(validation.WRONG_DIMENSION)
        if schema.is_binary:
            if not all(is_integer(v) and 0 <= v <= 255 for v in row):
                raise IllegalArgument(f"Invalid {what}: a binary vector is a list of byte values 0 ~ 255")
        elif not all(is_number(v) for v in row):
            raise IllegalArgument(f"Invalid {what}: every vector must be a list of numbers")
    if schema.is_binary:
        return np.array(rows, dtype=np.uint8).reshape(len(rows), width)
    with np.errstate(over="ignore"):
        out = np.array(rows, dtype=np.float32).reshape(len(rows), width)
    validation.finite(out)
    return out


def to_records(vectors: np.ndarray, binary: bool) -> list[Any]:
    """``RowRecord`` messages of an array of vectors (the reverse of :func:`from_records`)."""
    if binary:
        packed = np.ascontiguousarray(vectors, dtype=np.uint8)
        return [milvus_pb2.RowRecord(binary_data=row.tobytes()) for row in packed]
    floats = np.ascontiguousarray(vectors, dtype=np.float32)
    return [milvus_pb2.RowRecord(float_data=row) for row in floats]
