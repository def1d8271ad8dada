"""Protocol buffer wire bytes of the vector-heavy messages, built from and read into numpy arrays.

``InsertParam`` and ``SearchParam`` carry one ``RowRecord`` per vector. Every row of a batch has the
same dimension, so every row has the same header (field tag, message length, packed-field tag, payload
length): the batch is one ``(rows, header + payload)`` uint8 array, the header broadcast into the first
columns and the float32 (or packed bit) payload copied into the rest. Replies are read field by field
at the top level; packed ``float`` fields become arrays with ``np.frombuffer`` and packed varints are
decoded with array arithmetic. No vector ever becomes a Python list on the way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .exceptions import ParamError

__all__ = [
    "Records",
    "WireError",
    "decode_status_only",
    "decode_topk",
    "decode_varints",
    "decode_vector_ids",
    "decode_vectors",
    "encode_insert",
    "encode_search",
    "encode_search_in_files",
    "encode_varints",
    "to_records",
]

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_SHIFTS = np.arange(10, dtype=np.uint64) * np.uint64(7)
_COLS = np.arange(10)


class WireError(ValueError):
    """A reply could not be decoded."""


@dataclass(frozen=True, slots=True)
class Records:
    """A batch of vectors ready for the wire: ``data`` is ``(rows, dim)`` float32 or ``(rows, dim/8)`` uint8."""

    data: npt.NDArray[Any]
    binary: bool

    @property
    def rows(self) -> int:
        return int(self.data.shape[0])


# --- encoding --------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """The protobuf varint of a non-negative int (negative ints as their 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _key(field, _LEN) + varint(len(payload)) + payload


def string(field: int, text: str) -> bytes:
    """A string field (left out when empty, as proto3 does)."""
    return ld(field, text.encode("utf-8")) if text else b""


def encode_varints(values: npt.ArrayLike) -> bytes:
    """Concatenated varints of int64 values (the payload of a packed ``repeated int64``)."""
    u = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64).reshape(-1)
    if u.size == 0:
        return b""
    shifted = u[:, None] >> _SHIFTS
    nbytes = np.maximum((shifted != 0).sum(axis=1), 1)
    groups = (shifted & np.uint64(0x7F)).astype(np.uint8)
    groups |= (((nbytes - 1)[:, None] > _COLS) * 0x80).astype(np.uint8)
    return groups[nbytes[:, None] > _COLS].tobytes()


def packed_int64(field: int, values: npt.ArrayLike | None) -> bytes:
    """A packed ``repeated int64`` field (left out when empty)."""
    if values is None:
        return b""
    payload = encode_varints(values)
    return ld(field, payload) if payload else b""


def varint_field(field: int, value: int) -> bytes:
    """A varint field (left out when 0, as proto3 does)."""
    return _key(field, _VARINT) + varint(value) if value else b""


def _params(field: int, params_json: str | None) -> bytes:
    if params_json is None:
        return b""
    return ld(field, string(1, "params") + string(2, params_json))


def to_records(records: Any) -> Records:
    """Vectors as given to insert/search (2-D array, list of lists, list of bytes) → ``Records``.

    float arrays become C-contiguous little-endian float32; a uint8 array or a list of ``bytes`` is
    binary (packed bits, 8 dimensions a byte). Raises ``ParamError`` for anything else.
    """
    if isinstance(records, np.ndarray):
        arr = records
    else:
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)) or len(records) == 0:
            raise ParamError(_RECORDS_MESSAGE)
        first = records[0]
        if isinstance(first, (bytes, bytearray, memoryview)):
            if not all(isinstance(r, (bytes, bytearray, memoryview)) for r in records):
                raise ParamError("Invalid vector: Vector must be list-like object")
            lengths = {len(r) for r in records}
            if len(lengths) != 1:
                raise ParamError("Whole vectors must have the same dimension")
            if 0 in lengths:
                raise ParamError("Invalid vector: Check if empty-list exists")
            joined = b"".join(bytes(r) for r in records)
            return Records(np.frombuffer(joined, dtype=np.uint8).reshape(len(records), -1), True)
        if isinstance(first, (str, int, float)) or not hasattr(first, "__len__"):
            raise ParamError("Invalid vector: Vector must be list-like object")
        lengths = {len(r) for r in records}
        if len(lengths) != 1:
            raise ParamError("Whole vectors must have the same dimension")
        if 0 in lengths:
            raise ParamError("Invalid vector: Check if empty-list exists")
        try:
            arr = np.asarray(records, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ParamError(_RECORDS_MESSAGE) from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParamError(_RECORDS_MESSAGE)
    if arr.dtype == np.uint8:
        return Records(np.ascontiguousarray(arr), True)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ParamError(_RECORDS_MESSAGE)
    return Records(np.ascontiguousarray(arr, dtype="<f4"), False)


_RECORDS_MESSAGE = ("A vector must be a non-empty, 2-dimensional array and must contain only elements "
                    "with the float data type or the bytes data type.")


def rows(field: int, records: Records) -> bytes:
    """Every row as a length-delimited ``RowRecord`` in field ``field``, in one array operation."""
    payload = records.data.view(np.uint8).reshape(records.rows, -1)
    width = int(payload.shape[1])
    inner = _key(2 if records.binary else 1, _LEN) + varint(width)
    header = _key(field, _LEN) + varint(len(inner) + width) + inner
    out = np.empty((records.rows, len(header) + width), dtype=np.uint8)
    out[:, : len(header)] = np.frombuffer(header, dtype=np.uint8)
    out[:, len(header):] = payload
    return out.tobytes()


def encode_insert(collection_name: str, records: Records, ids: npt.ArrayLike | None, partition_tag: str | None,
                  params_json: str | None) -> bytes:
    """``InsertParam`` wire bytes."""
    return b"".join((
        string(1, collection_name),
        rows(2, records),
        packed_int64(3, ids),
        string(4, partition_tag or ""),
        _params(5, params_json),
    ))


def encode_search(collection_name: str, records: Records, topk: int, partition_tags: Sequence[str] | None,
                  params_json: str | None) -> bytes:
    """``SearchParam`` wire bytes."""
    tags = b"".join(ld(2, t.encode("utf-8")) for t in (partition_tags or ()))
    topk_bytes = _key(4, _VARINT) + varint(topk) if topk else b""
    return b"".join((string(1, collection_name), tags, rows(3, records), topk_bytes, _params(5, params_json)))


def encode_search_in_files(file_ids: Sequence[str], search_param: bytes) -> bytes:
    """``SearchInFilesParam`` wire bytes around an encoded ``SearchParam``."""
    return b"".join(ld(1, f.encode("utf-8")) for f in file_ids) + ld(2, search_param)


# --- decoding --------------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int, int]]:
    """Top-level fields of a message: ``(field, wire_type, value_or_start, end)``.

    For varints ``value_or_start`` is the value (and ``end`` -1); for the other wire types it is the start
    of the payload in ``buf`` and ``end`` its end.
    """
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield field, wire_type, value, -1
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > n:
                raise WireError("truncated field")
            yield field, wire_type, pos, pos + length
            pos += length
        elif wire_type == _FIXED32:
            if pos + 4 > n:
                raise WireError("truncated field")
            yield field, wire_type, pos, pos + 4
            pos += 4
        elif wire_type == _FIXED64:
            if pos + 8 > n:
                raise WireError("truncated field")
            yield field, wire_type, pos, pos + 8
            pos += 8
        else:
            raise WireError(f"unsupported wire type {wire_type}")


def decode_varints(buf: bytes | memoryview) -> npt.NDArray[np.int64]:
    """The int64 values of concatenated varints (a packed ``repeated int64`` payload)."""
    b = np.frombuffer(buf, dtype=np.uint8)
    if b.size == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.flatnonzero(b < 0x80)
    if ends.size == 0 or ends[-1] != b.size - 1:
        raise WireError("truncated varint")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > 10:
        raise WireError("varint longer than 10 bytes")
    position = np.arange(b.size) - np.repeat(starts, lengths)
    contrib = (b & 0x7F).astype(np.uint64) << (position.astype(np.uint64) * np.uint64(7))
    return np.add.reduceat(contrib, starts).view(np.int64)


def _status(buf: bytes, start: int, end: int) -> tuple[int, str]:
    code, reason = 0, ""
    for field, wire_type, a, b in fields(buf[start:end]):
        if field == 1 and wire_type == _VARINT:
            code = a if a < (1 << 31) else a - (1 << 64)
        elif field == 2 and wire_type == _LEN:
            reason = buf[start + a:start + b].decode("utf-8", "replace")
    return code, reason


def decode_status_only(buf: bytes) -> tuple[int, str]:
    """A bare ``Status`` reply."""
    return _status(buf, 0, len(buf))


@dataclass(frozen=True, slots=True)
class TopK:
    code: int
    reason: str
    ids: npt.NDArray[np.int64]
    distances: npt.NDArray[np.float32]


def decode_topk(buf: bytes) -> TopK:
    """``TopKQueryResult`` → status and ``(row_num, k)`` ids and distances."""
    code, reason, row_num = 0, "", 0
    id_parts: list[npt.NDArray[np.int64]] = []
    dis_parts: list[npt.NDArray[np.float32]] = []
    for field, wire_type, a, b in fields(buf):
        if field == 1 and wire_type == _LEN:
            code, reason = _status(buf, a, b)
        elif field == 2 and wire_type == _VARINT:
            row_num = a
        elif field == 3:
            if wire_type == _LEN:
                id_parts.append(decode_varints(memoryview(buf)[a:b]))
            elif wire_type == _VARINT:
                id_parts.append(np.array([a], dtype=np.uint64).view(np.int64))
        elif field == 4 and wire_type in (_LEN, _FIXED32):
            dis_parts.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
    ids = np.concatenate(id_parts) if id_parts else np.empty(0, dtype=np.int64)
    distances = (np.concatenate(dis_parts) if dis_parts else np.empty(0, dtype="<f4")).astype(np.float32, copy=False)
    if ids.size != distances.size:
        raise WireError("number of id not match distance")
    if row_num == 0 or ids.size == 0:
        return TopK(code, reason, np.empty((row_num, 0), dtype=np.int64), np.empty((row_num, 0), dtype=np.float32))
    if ids.size % row_num:
        raise WireError(f"Search result is not aligned. (row_num={row_num}, len of ids={ids.size})")
    return TopK(code, reason, ids.reshape(row_num, -1), distances.reshape(row_num, -1))


def decode_vector_ids(buf: bytes) -> tuple[int, str, npt.NDArray[np.int64]]:
    """``VectorIds`` → status and the ids."""
    code, reason = 0, ""
    parts: list[npt.NDArray[np.int64]] = []
    for field, wire_type, a, b in fields(buf):
        if field == 1 and wire_type == _LEN:
            code, reason = _status(buf, a, b)
        elif field == 2 and wire_type == _LEN:
            parts.append(decode_varints(memoryview(buf)[a:b]))
        elif field == 2 and wire_type == _VARINT:
            parts.append(np.array([a], dtype=np.uint64).view(np.int64))
    ids = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return code, reason, ids


def decode_vectors(buf: bytes) -> tuple[int, str, list[npt.NDArray[np.float32] | bytes]]:
    """``VectorsData`` → status and one entry per requested id: float32 array, ``bytes`` (binary) or an
    empty array (id not found)."""
    code, reason = 0, ""
    rows: list[npt.NDArray[np.float32] | bytes] = []
    for field, wire_type, a, b in fields(buf):
        if field == 1 and wire_type == _LEN:
            code, reason = _status(buf, a, b)
        elif field == 2 and wire_type == _LEN:
            floats: list[npt.NDArray[np.float32]] = []
            binary = b""
            for f2, w2, a2, b2 in fields(buf[a:b]):
                if f2 == 1 and w2 == _LEN:
                    floats.append(np.frombuffer(buf, dtype="<f4", count=(b2 - a2) // 4, offset=a + a2))
                elif f2 == 1 and w2 == _FIXED32:
                    floats.append(np.frombuffer(buf, dtype="<f4", count=1, offset=a + a2))
                elif f2 == 2 and w2 == _LEN:
                    binary = buf[a + a2:a + b2]
            if binary:
                rows.append(binary)
            else:
                vec = np.concatenate(floats) if floats else np.empty(0, dtype="<f4")
                rows.append(vec.astype(np.float32, copy=False))
    return code, reason, rows
