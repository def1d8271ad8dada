"""The only node code that touches protobuf types: request decoding and reply building."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from coordinator import validation
from coordinator.errors import ErrorCode, IllegalRowRecord, MilvusError
from coordinator.model import Collection
from coordinator.row_records import decode_row_records
from coordinator.topk import TopK
from coordinator.wire import SUCCESS_REASON, SUCCESS_STATUS, encode_topk, encode_vector_ids, field, varint
from milvus_wire import milvus_pb2, status_pb2


def status(code: ErrorCode = ErrorCode.SUCCESS, reason: str = "") -> Any:
    return status_pb2.Status(error_code=cast(Any, int(code)), reason=reason)


OK = status(reason=SUCCESS_REASON)


def error_reply(reply_type: Any, err: MilvusError) -> Any:
    """The reply of ``reply_type`` carrying only an error status (other fields at defaults)."""
    st = status(err.code, err.reason)
    if reply_type is status_pb2.Status:
        return st
    return reply_type(status=st)


# Bytes of records joined per pass of the bulk decoder.
_DECODE_BLOCK_BYTES = 16 * 1024 * 1024


@functools.lru_cache(maxsize=64)
def _record_prefix(binary: bool, dimension: int) -> tuple[bytes, int, np.dtype[Any]]:
    """The bytes before the payload of a canonical RowRecord, the payload's size and its dtype."""
    if binary:
        return b"\x12" + varint(dimension // 8), dimension // 8, np.dtype(np.uint8)
    return b"\x0a" + varint(dimension * 4), dimension * 4, np.dtype("<f4")


def _bulk_decode(raw: Sequence[bytes], coll: Collection) -> np.ndarray | None:
    """Decode raw RowRecord bytes in one numpy operation when every record has the canonical shape.

    The canonical encoding of a record is a single length-delimited field: ``float_data`` (field 1,
    packed) for float collections, ``binary_data`` (field 2) for binary ones. Anything else returns
    None and is decoded message by message.
    """
    prefix, payload, dtype = _record_prefix(coll.is_binary, coll.dimension)
    width = len(prefix) + payload
    n = len(raw)
    if n == 1:  # one query (nq=1 searches): no joined copy, no array comparison
        only = raw[0]
        if len(only) != width or not only.startswith(prefix):
            return None
        return np.frombuffer(only, dtype=dtype, offset=len(prefix)).reshape(1, -1).copy()
    if any(len(r) != width for r in raw):
        return None
    expected = np.frombuffer(prefix, dtype=np.uint8)
    out = np.empty((n, payload), dtype=np.uint8)
    # A block of records at a time: joining them all at once would hold a bytes object per record alive.
    step = max(1, _DECODE_BLOCK_BYTES // width)
    for start in range(0, n, step):
        block = raw[start:start + step]
        rows = np.frombuffer(b"".join(block), dtype=np.uint8).reshape(len(block), width)
        if not (rows[:, : len(prefix)] == expected).all():
            return None
        out[start:start + len(block)] = rows[:, len(prefix) :]
    return out.view(dtype)


def vectors(records: Sequence[Any], coll: Collection) -> np.ndarray:
    """Decode RowRecords into one contiguous array: float32 (n, dim) or uint8 packed bits (n, dim/8).

    ``records`` are RowRecord messages, or their raw bytes (the fast-path request types).
    """
    if len(records) == 0:
        raise IllegalRowRecord(validation.EMPTY_VECTORS)
    n = len(records)
    validation.vector_bytes(n, coll.row_bytes)
    if isinstance(records[0], bytes):
        bulk = _bulk_decode(records, coll)
        if bulk is not None:
            validation.finite(bulk)
            return bulk
        try:
            records = [milvus_pb2.RowRecord.FromString(r) for r in records]
        except Exception:
            raise IllegalRowRecord("Malformed vector record") from None
    return decode_row_records(records, coll.dimension, coll.is_binary)


def topk_result(result: TopK) -> bytes:
    """A rectangular TopKQueryResult, already serialized; an all-empty result has row_num 0 (as Milvus 1.1)."""
    return encode_topk(result)


def vector_ids(ids: np.ndarray) -> bytes:
    """A successful VectorIds reply, already serialized (no Python int per id)."""
    return encode_vector_ids(ids)


def vectors_data(found: Sequence[np.ndarray | None], binary: bool) -> bytes:
    """A successful VectorsData reply, already serialized: one RowRecord per id, empty where it was not found
    (no Python float per component)."""
    parts = [SUCCESS_STATUS]
    for vector in found:
        if vector is None:
            parts.append(b"\x12\x00")
            continue
        data = np.ascontiguousarray(vector, dtype=np.uint8 if binary else "<f4").tobytes()
        parts.append(field(2, field(2 if binary else 1, data) if data else b""))
    return b"".join(parts)
