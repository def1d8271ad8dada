"""The only node code that touches protobuf types: request decoding and reply building."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode, IllegalDimension, IllegalRowRecord, MilvusError
from coordinator.model import MAX_INSERT_BYTES, Collection
from milvus_wire import milvus_pb2, status_pb2
from node import validation
from node.topk import TopK


def status(code: ErrorCode = ErrorCode.SUCCESS, reason: str = "") -> Any:
    return status_pb2.Status(error_code=int(code), reason=reason)


OK = status()


def error_reply(reply_type: Any, err: MilvusError) -> Any:
    """The reply of ``reply_type`` carrying only an error status (other fields at defaults)."""
    st = status(err.code, err.reason)
    if reply_type is status_pb2.Status:
        return st
    return reply_type(status=st)


def vectors(records: Sequence[Any], coll: Collection) -> np.ndarray:
    """Decode RowRecords into one contiguous array: float32 (n, dim) or uint8 packed bits (n, dim/8)."""
    if len(records) == 0:
        raise IllegalRowRecord(validation.EMPTY_VECTORS)
    n = len(records)
    if coll.is_binary:
        width = coll.dimension // 8
        if any(len(r.binary_data) != width for r in records):
            raise IllegalDimension(validation.WRONG_DIMENSION)
        if n * width > MAX_INSERT_BYTES:
            raise IllegalRowRecord("The amount of data inserted each time cannot exceed 256 MB")
        return np.frombuffer(b"".join(r.binary_data for r in records), dtype=np.uint8).reshape(n, width)
    dim = coll.dimension
    if n * dim * 4 > MAX_INSERT_BYTES:
        raise IllegalRowRecord("The amount of data inserted each time cannot exceed 256 MB")
    out = np.empty((n, dim), dtype=np.float32)
    for i, rec in enumerate(records):
        data = rec.float_data
        if len(data) != dim:
            raise IllegalDimension(validation.WRONG_DIMENSION)
        out[i] = data
    validation.finite(out)
    return out


def topk_result(result: TopK) -> Any:
    """A rectangular TopKQueryResult; an all-empty result has row_num 0 (as Milvus 1.1)."""
    if result.k == 0:
        return milvus_pb2.TopKQueryResult(status=OK, row_num=0)
    return milvus_pb2.TopKQueryResult(
        status=OK,
        row_num=result.nq,
        ids=result.ids.ravel().tolist(),
        distances=result.distances.ravel().tolist(),
    )


def row_record(vector: np.ndarray | None, binary: bool) -> Any:
    if vector is None:
        return milvus_pb2.RowRecord()
    if binary:
        return milvus_pb2.RowRecord(binary_data=np.ascontiguousarray(vector, dtype=np.uint8).tobytes())
    return milvus_pb2.RowRecord(float_data=np.asarray(vector, dtype=np.float32).tolist())
