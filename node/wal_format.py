"""The write-ahead log's records and files (pure: bytes in, records out).

File format: ``<first lsn>-<epoch>.wal`` files of records ``header | payload`` where the header is ``magic u32,
payload length u32, crc32 u32, lsn u64, epoch u64, kind u8`` (little-endian) and the crc covers lsn, epoch, kind
and payload. Insert payloads carry the request's 16-byte idempotency key (zeros: none). Files of the first
format (``<first lsn>.wal``, no epoch, no key) are read as epoch 0. A torn tail (crash mid-write) is detected by
length / crc and ignored; a damaged record anywhere else is an error.

Kinds: 1 insert (``collection u64, partition u64, rows u32, row bytes u32 (bit 31: binary), key 16s | ids | vectors``),
2 delete, 3 *entity* (an insert into a hybrid collection): the insert payload followed by its scalar columns,
``columns u32`` then per column ``dtype code u8 | rows values`` little-endian (:data:`SCALAR_CODES`), in schema
order. Plain inserts keep kind 1, so logs written before kind 3 existed replay unchanged (and a log without
hybrid collections stays readable by older versions).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coordinator.errors import StorageError

MAGIC_V1 = 0x4D57414C  # "MWAL": no epoch, no idempotency key
MAGIC = 0x4D574C32  # "MWL2"
_HEADER_V1 = struct.Struct("<IIIQB")
_HEADER = struct.Struct("<IIIQQB")
_INSERT_V1 = struct.Struct("<QQII")
_INSERT = struct.Struct("<QQII16s")
_DELETE = struct.Struct("<QQI")
_COLUMNS = struct.Struct("<I")
_CODE = struct.Struct("<B")
KIND_INSERT = 1
KIND_DELETE = 2
KIND_ENTITY = 3
KEY_BYTES = 16
NO_KEY = bytes(KEY_BYTES)
# The dtype of a scalar column in an entity record (storage dtypes of coordinator.hybrid.types), little-endian.
SCALAR_CODES: dict[int, np.dtype] = {
    1: np.dtype("<i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"), 4: np.dtype("<i8"),
    5: np.dtype(np.bool_), 6: np.dtype("<f4"), 7: np.dtype("<f8"),
}


def _code(dtype: np.dtype) -> int | None:
    for code, logged in SCALAR_CODES.items():
        if (logged.kind, logged.itemsize) == (dtype.kind, dtype.itemsize):
            return code
    return None


@dataclass(frozen=True, slots=True)
class InsertRecord:
    collection_id: int
    partition_id: int
    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim) or uint8 (n, dim/8)
    key: bytes = b""  # the request's idempotency key (16 bytes), b"" = none
    scalars: tuple[np.ndarray, ...] = ()  # a hybrid collection's scalar columns (schema order), one value a row


@dataclass(frozen=True, slots=True)
class DeleteRecord:
    collection_id: int
    partition_id: int  # 0 = every partition
    ids: np.ndarray  # int64 (n,)


Record = InsertRecord | DeleteRecord


@dataclass(frozen=True, slots=True)
class Seal:
    """Written by the writer of ``epoch`` after its replay: records of older epochs past ``lsn`` are void."""

    epoch: int
    lsn: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """One valid record found in the log."""

    lsn: int
    epoch: int
    record: Record


def last_valid_lsn(epoch: int, seals: Sequence[Seal]) -> int | None:
    """The last LSN at which a record of ``epoch`` still counts (None: no later epoch sealed it)."""
    limits = [s.lsn for s in seals if s.epoch > epoch]
    return min(limits) if limits else None


def _scalar_section(columns: Sequence[np.ndarray], rows: int) -> bytes:
    parts = [_COLUMNS.pack(len(columns))]
    for column in columns:
        code = _code(column.dtype)
        if code is None:
            raise ValueError(f"a scalar column of dtype {column.dtype} cannot be logged")
        if column.shape != (rows,):
            raise ValueError(f"a scalar column of shape {column.shape} for {rows} rows")
        parts.append(_CODE.pack(code))
        parts.append(np.ascontiguousarray(column, dtype=SCALAR_CODES[code]).tobytes())
    return b"".join(parts)


def _read_scalars(payload: bytes, off: int, rows: int) -> tuple[np.ndarray, ...]:
    (count,) = _COLUMNS.unpack_from(payload, off)
    off += _COLUMNS.size
    columns = []
    for _ in range(count):
        (code,) = _CODE.unpack_from(payload, off)
        off += _CODE.size
        dtype = SCALAR_CODES.get(code)
        if dtype is None:
            raise ValueError(f"unknown scalar column code {code}")
        if off + rows * dtype.itemsize > len(payload):
            raise ValueError("a scalar column runs past the record")
        column = np.frombuffer(payload, dtype=dtype, count=rows, offset=off)
        columns.append(column.astype(dtype.newbyteorder("="), copy=True))
        off += rows * dtype.itemsize
    if off != len(payload):
        raise ValueError(f"{len(payload) - off} bytes after the scalar columns")
    return tuple(columns)


def encode(lsn: int, record: Record, epoch: int = 0) -> bytes:
    if isinstance(record, InsertRecord):
        vec = np.ascontiguousarray(record.vectors)
        n = int(record.ids.shape[0])
        row_bytes = int(vec.shape[1]) * vec.itemsize if n else 0
        kind_flag = 1 if vec.dtype == np.uint8 else 0
        key = record.key or NO_KEY
        if len(key) != KEY_BYTES:
            raise ValueError(f"an idempotency key has {KEY_BYTES} bytes, not {len(key)}")
        payload = b"".join(
            (
                _INSERT.pack(record.collection_id, record.partition_id, n, row_bytes | (kind_flag << 31), key),
                np.ascontiguousarray(record.ids, dtype=np.int64).tobytes(),
                vec.tobytes(),
                _scalar_section(record.scalars, n) if record.scalars else b"",
            )
        )
        kind = KIND_ENTITY if record.scalars else KIND_INSERT
    else:
        n = int(record.ids.shape[0])
        payload = _DELETE.pack(record.collection_id, record.partition_id, n) + np.ascontiguousarray(
            record.ids, dtype=np.int64
        ).tobytes()
        kind = KIND_DELETE
    crc = zlib.crc32(struct.pack("<QQB", lsn, epoch, kind) + payload)
    return _HEADER.pack(MAGIC, len(payload), crc, lsn, epoch, kind) + payload


def decode(kind: int, payload: bytes, version: int = 2) -> Record:
    if kind == KIND_INSERT or (kind == KIND_ENTITY and version >= 2):
        key = b""
        if version == 1:
            cid, pid, n, packed = _INSERT_V1.unpack_from(payload)
            off = _INSERT_V1.size
        else:
            cid, pid, n, packed, raw_key = _INSERT.unpack_from(payload)
            off = _INSERT.size
            key = b"" if raw_key == NO_KEY else bytes(raw_key)
        binary = bool(packed >> 31)
        row_bytes = packed & 0x7FFFFFFF
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=off).copy()
        off += 8 * n
        vectors: np.ndarray
        if binary:
            vectors = np.frombuffer(payload, dtype=np.uint8, count=n * row_bytes, offset=off).reshape(n, row_bytes)
        else:
            dim = row_bytes // 4
            vectors = np.frombuffer(payload, dtype=np.float32, count=n * dim, offset=off).reshape(n, dim)
        off += n * row_bytes
        scalars = _read_scalars(payload, off, n) if kind == KIND_ENTITY else ()
        return InsertRecord(cid, pid, ids, vectors.copy(), key, scalars)
    if kind == KIND_DELETE:
        cid, pid, n = _DELETE.unpack_from(payload)
        ids = np.frombuffer(payload, dtype=np.int64, count=n, offset=_DELETE.size).copy()
        return DeleteRecord(cid, pid, ids)
    raise ValueError(f"unknown WAL record kind {kind}")


def _next_record(data: bytes, pos: int, file_epoch: int) -> tuple[Replayed, int] | None:
    """The record at ``pos`` and the offset after it, or None if it is torn or damaged."""
    if pos + 4 > len(data):
        return None
    (magic,) = struct.unpack_from("<I", data, pos)
    if magic == MAGIC:
        if pos + _HEADER.size > len(data):
            return None
        _, length, crc, lsn, epoch, kind = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        covered = struct.pack("<QQB", lsn, epoch, kind)
        version = 2
    elif magic == MAGIC_V1:
        if pos + _HEADER_V1.size > len(data):
            return None
        _, length, crc, lsn, kind = _HEADER_V1.unpack_from(data, pos)
        epoch = file_epoch
        start = pos + _HEADER_V1.size
        covered = struct.pack("<QB", lsn, kind)
        version = 1
    else:
        return None
    end = start + length
    if end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(covered + payload) != crc:
        return None
    try:
        record = decode(kind, payload, version)
    except (ValueError, struct.error):
        return None
    return Replayed(lsn, epoch, record), end


def _intact_record_after(data: bytes, pos: int, file_epoch: int) -> bool:
    """Whether an intact record starts anywhere after ``pos`` (then the damage is not a torn tail)."""
    for magic in (MAGIC, MAGIC_V1):
        needle = struct.pack("<I", magic)
        at = data.find(needle, pos + 1)
        while at >= 0:
            if _next_record(data, at, file_epoch) is not None:
                return True
            at = data.find(needle, at + 1)
    return False


def read_file(path: Path, file_epoch: int) -> tuple[list[Replayed], bool]:
    """Every intact record of one file, and whether it ends in a torn record (a crash mid-write).

    Raises StorageError when a damaged record is followed by intact ones: that is not a torn tail.
    """
    data = path.read_bytes()
    out: list[Replayed] = []
    pos = 0
    while pos < len(data):
        found = _next_record(data, pos, file_epoch)
        if found is None:
            if _intact_record_after(data, pos, file_epoch):
                raise StorageError(f"WAL file {path.name} is damaged at byte {pos}, before intact records")
            return out, True
        record, pos = found
        out.append(record)
    return out, False


def parse_file_name(name: str) -> tuple[int, int] | None:
    """``(first lsn, epoch)`` of a log file name, or None for anything else."""
    if not name.endswith(".wal"):
        return None
    first, _, epoch = name[: -len(".wal")].partition("-")
    if not first.isdigit() or (epoch and not epoch.isdigit()):
        return None
    return int(first), int(epoch or 0)


def file_name(first_lsn: int, epoch: int) -> str:
    return f"{first_lsn:020d}-{epoch:010d}.wal"
