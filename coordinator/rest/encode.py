"""Requests of the Milvus 1.1 wire format built from REST values, as the bytes a gRPC client would send.

Small messages are built with protobuf; the vectors of inserts and searches are written as ``RowRecord``
fields by numpy in one pass (a prefix repeated per row, then the rows' bytes), and appended: serialized
protobuf messages concatenate field by field, so the result parses as one message (the node's fast-path
request types read the records without decoding them one by one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coordinator.rest.bodies import Vectors
from coordinator.rest.codes import RestError, WebCode
from coordinator.wire import field, varint
from milvus_wire import milvus_pb2

INSERT_RECORDS = 2  # InsertParam.row_record_array
SEARCH_RECORDS = 3  # SearchParam.query_record_array


def _record_prefix(number: int, payload: int, binary: bool) -> bytes:
    inner = (bytes([0x12 if binary else 0x0A]) + varint(payload)) if payload else b""
    return bytes([number << 3 | 2]) + varint(len(inner) + payload) + inner


def records(number: int, rows: Vectors, binary: bool, head: bytes = b"") -> bytes:
    """``head`` followed by field ``number`` repeated, one ``RowRecord`` per row: ``float_data`` (packed float32)
    or ``binary_data`` (written in one buffer, copied once into the bytes returned)."""
    if isinstance(rows, np.ndarray):
        n = rows.shape[0]
        if n == 0:
            return head
        data = np.ascontiguousarray(rows, dtype=np.uint8 if binary else "<f4").view(np.uint8).reshape(n, -1)
        prefix = np.frombuffer(_record_prefix(number, data.shape[1], binary), dtype=np.uint8)
        width = prefix.size + data.shape[1]
        buffer = np.empty(len(head) + n * width, dtype=np.uint8)
        buffer[:len(head)] = np.frombuffer(head, dtype=np.uint8)
        out = buffer[len(head):].reshape(n, width)
        out[:, :prefix.size] = prefix
        out[:, prefix.size:] = data
        return buffer.tobytes()
    parts = [head]
    for row in rows:
        data_bytes = np.ascontiguousarray(row, dtype=np.uint8 if binary else "<f4").tobytes()
        parts.append(_record_prefix(number, len(data_bytes), binary) + data_bytes)
    return b"".join(parts)


def _params(params_json: str) -> list[milvus_pb2.KeyValuePair]:
    return [milvus_pb2.KeyValuePair(key="params", value=params_json)]


def _int64(value: int, name: str) -> int:
    if not -(1 << 63) <= value < (1 << 63):
        raise RestError(WebCode.ILLEGAL_BODY, f"Field '{name}' is out of the int64 range")
    return value


def insert(collection: str, rows: Vectors, binary: bool, ids: np.ndarray | None, tag: str) -> bytes:
    head = milvus_pb2.InsertParam(collection_name=collection, partition_tag=tag)
    if ids is not None and ids.size:
        head.row_id_array.extend(ids.tolist())
    return records(INSERT_RECORDS, rows, binary, bytes(head.SerializeToString()))


def search_param(collection: str, tags: Sequence[str], rows: Vectors, binary: bool, topk: int,
                 params_json: str) -> bytes:
    head = milvus_pb2.SearchParam(collection_name=collection, partition_tag_array=list(tags),
                                  topk=_int64(topk, "topk"), extra_params=_params(params_json))
    return records(SEARCH_RECORDS, rows, binary, bytes(head.SerializeToString()))


def search_in_files(file_ids: Sequence[str], collection: str, rows: Vectors, binary: bool, topk: int,
                    params_json: str) -> bytes:
    head = milvus_pb2.SearchInFilesParam(file_id_array=list(file_ids))
    inner = search_param(collection, (), rows, binary, topk, params_json)
    return bytes(head.SerializeToString()) + field(2, inner)


def search_by_id(collection: str, tags: Sequence[str], ids: np.ndarray, topk: int, params_json: str) -> bytes:
    msg = milvus_pb2.SearchByIDParam(collection_name=collection, partition_tag_array=list(tags),
                                     id_array=ids.tolist(), topk=_int64(topk, "topk"),
                                     extra_params=_params(params_json))
    return bytes(msg.SerializeToString())
