"""Wire enums of the hybrid messages (mirrors of ``milvus.grpc``) and how each scalar type is stored."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class DataType(IntEnum):
    """``milvus.grpc.DataType``: field types of a hybrid collection."""

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

    @property
    def is_integer(self) -> bool:
        """Integer-valued scalar types (BOOL counts: its values are the integers 0 and 1)."""
        return self in INTEGER_TYPES

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT, DataType.DOUBLE)


class CompareOp(IntEnum):
    """``milvus.grpc.CompareOperator``."""

    LT = 0
    LTE = 1
    EQ = 2
    GT = 3
    GTE = 4
    NE = 5


class Occur(IntEnum):
    """``milvus.grpc.Occur``: the operator of a ``BooleanQuery`` over its children."""

    INVALID = 0
    MUST = 1
    SHOULD = 2
    MUST_NOT = 3


INTEGER_TYPES = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.BOOL})
SCALAR_TYPES = INTEGER_TYPES | {DataType.FLOAT, DataType.DOUBLE}

# What a column of each scalar type is stored as (segments, buffers, evaluation).
STORAGE_DTYPE: dict[DataType, np.dtype] = {
    DataType.INT8: np.dtype(np.int8),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.BOOL: np.dtype(np.bool_),
    DataType.FLOAT: np.dtype(np.float32),
    DataType.DOUBLE: np.dtype(np.float64),
}

# Every value travels as 8 bytes little-endian: int64 for integer types (BOOL as 0/1), float64 otherwise.
WIRE_VALUE_BYTES = 8
WIRE_INT = np.dtype("<i8")
WIRE_FLOAT = np.dtype("<f8")


def wire_dtype(data_type: DataType) -> np.dtype:
    return WIRE_INT if data_type.is_integer else WIRE_FLOAT


def integer_bounds(data_type: DataType) -> tuple[int, int]:
    """Smallest and largest value an integer type holds (BOOL: 0 and 1)."""
    if data_type is DataType.BOOL:
        return 0, 1
    info = np.iinfo(STORAGE_DTYPE[data_type])
    return int(info.min), int(info.max)


FLOAT32_MAX = float(np.finfo(np.float32).max)
