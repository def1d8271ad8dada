"""The only node code that touches protobuf types: request decoding and reply building."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from coordinator import validation
from coordinator.errors import ErrorCode, IllegalDimension, IllegalRowRecord, MilvusError
from coordinator.model import MAX_INSERT_BYTES, Collection
from coordinator.topk import TopK
from coordinator.wire import encode_topk, varint
from milvus_wire import milvus_pb2, status_pb2


def status(code: ErrorCode = ErrorCode.SUCCESS, reason: str = "") -> Any:
    return status_pb2.Status(error_code=cast(Any, int(code)), reason=reason)


OK = status()


def error_reply(reply_type: Any, err: MilvusError) -> Any:
    """The reply of ``reply_type`` carrying only an error status (other fields at defaults)."""
    st = status(err.code, err.reason)
    if reply_type is status_pb2.Status:
        return st
    return reply_type(status=st)


def _bulk_decode(raw: Sequence[bytes], coll: Collection) -> np.ndarray | None:
    """Decode raw RowRecord bytes in one numpy operation when every record has the canonical shape.

    The canonical encoding of a record is a single length-delimited field: ``float_data`` (field 1,
    packed) for float collections, ``binary_data`` (field 2) for binary ones. Anything else returns
    None and is decoded message by message.
    """
    dtype: type[np.generic]
    if coll.is_binary:
        dtype, payload, tag = np.uint8, coll.dimension // 8, 0x12
    else:
        dtype, payload, tag = np.float32, coll.dimension * 4, 0x0A
    prefix = bytes([tag]) + varint(payload)
    width = len(prefix) + payload
    if any(len(r) != width for r in raw):
        return None
    rows = np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(len(raw), width)
    if not (rows[:, : len(prefix)] == np.frombuffer(prefix, dtype=np.uint8)).all():
        return None
    return np.ascontiguousarray(rows[:, len(prefix) :]).view(dtype)


def vectors(records: Sequence[Any], coll: Collection) -> np.ndarray:
    """Decode RowRecords into one contiguous array: float32 (n, dim) or uint8 packed bits (n, dim/8).

    ``records`` are RowRecord messages, or their raw bytes (the fast-path request types).
    """
    if len(records) == 0:
        raise IllegalRowRecord(validation.EMPTY_VECTORS)
    n = len(records)
    row_bytes = coll.dimension // 8 if coll.is_binary else coll.dimension * 4
    if n * row_bytes > MAX_INSERT_BYTES:
        raise IllegalRowRecord("The amount of data inserted each time cannot exceed 256 MB")
    if isinstance(records[0], bytes):
        bulk = _bulk_decode(records, coll)
        if bulk is not None:
            validation.finite(bulk)
            return bulk
        try:
            records = [milvus_pb2.RowRecord.FromString(r) for r in records]
        except Exception:
            raise IllegalRowRecord("Malformed vector record") from None
    if coll.is_binary:
        width = coll.dimension // 8
        if any(len(r.binary_data) != width for r in records):
            raise IllegalDimension(validation.WRONG_DIMENSION)
        return np.frombuffer(b"".join(r.binary_data for r in records), dtype=np.uint8).reshape(n, width)
    dim = coll.dimension
    out = np.empty((n, dim), dtype=np.float32)
    for i, rec in enumerate(records):
        data = rec.float_data
        if len(data) != dim:
            raise IllegalDimension(validation.WRONG_DIMENSION)
        out[i] = data
    validation.finite(out)
    return out


def topk_result(result: TopK) -> bytes:
    """A rectangular TopKQueryResult, already serialized; an all-empty result has row_num 0 (as Milvus 1.1)."""
    return encode_topk(result)


def row_record(vector: np.ndarray | None, binary: bool) -> Any:
    if vector is None:
        return milvus_pb2.RowRecord()
    if binary:
        return milvus_pb2.RowRecord(binary_data=np.ascontiguousarray(vector, dtype=np.uint8).tobytes())
    return milvus_pb2.RowRecord(float_data=np.asarray(vector, dtype=np.float32).tolist())
