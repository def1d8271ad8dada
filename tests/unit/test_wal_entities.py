"""WAL records of inserts into hybrid collections (kind 3: the insert and its scalar columns): round trips of every
column type at its limits, plain inserts unchanged, records of earlier versions still read, damage detected."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import wal, wal_format
from node.wal import InsertRecord, Record, WriteAheadLog

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.bool_, np.float32, np.float64]


def _extremes(dtype: Any) -> np.ndarray:
    if dtype is np.bool_:
        return np.array([False, True], dtype=dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.array([info.min, -1, 0, 1, info.max], dtype=dtype)
    finfo = np.finfo(dtype)
    return np.array([-finfo.max, -finfo.tiny, -0.0, 0.0, finfo.smallest_subnormal, 0.1, finfo.max], dtype=dtype)


def _split(data: bytes) -> tuple[int, int, bytes]:
    _magic, _length, _crc, lsn, _epoch, kind = wal_format._HEADER.unpack_from(data)
    return lsn, kind, data[wal_format._HEADER.size:]


class Applied:
    def __init__(self) -> None:
        self.records: list[tuple[int, Record]] = []

    def __call__(self, lsn: int, record: Record) -> None:
        self.records.append((lsn, record))


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=7), st.integers(1, 30), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_entity_records_round_trip_every_column_type(dtypes: list[Any], rows: int, binary: bool,
                                                     seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = []
    for dtype in dtypes:
        pool = _extremes(dtype)
        columns.append(pool[rng.integers(0, pool.size, rows)])
    vectors = (rng.integers(0, 256, (rows, 2), dtype=np.uint8) if binary
               else rng.standard_normal((rows, 3)).astype(np.float32))
    record = InsertRecord(4, 5, np.arange(rows, dtype=np.int64) * 7, vectors, bytes(range(16)), tuple(columns))
    lsn, kind, payload = _split(wal.encode(11, record, epoch=2))
    assert (lsn, kind) == (11, wal_format.KIND_ENTITY)
    got = wal.decode(kind, payload)
    assert isinstance(got, InsertRecord)
    assert (got.collection_id, got.partition_id, got.key) == (4, 5, record.key)
    assert np.array_equal(got.ids, record.ids) and got.vectors.tobytes() == vectors.tobytes()
    assert got.vectors.shape == vectors.shape and got.vectors.dtype == vectors.dtype
    assert len(got.scalars) == len(columns)
    for before, after in zip(columns, got.scalars, strict=True):
        assert after.dtype == before.dtype and after.tobytes() == before.tobytes()  # bit-exact, -0.0 included
        assert after.flags.writeable  # a copy, not a view of the record's bytes


def test_plain_inserts_keep_the_earlier_encoding() -> None:
    ids = np.array([3, 4], np.int64)
    vectors = np.ones((2, 4), np.float32)
    data = wal.encode(5, InsertRecord(1, 2, ids, vectors), epoch=3)
    # The record exactly as versions without entity records wrote it.
    payload = wal_format._INSERT.pack(1, 2, 2, 16, bytes(16)) + ids.tobytes() + vectors.tobytes()
    crc = zlib.crc32(struct.pack("<QQB", 5, 3, wal_format.KIND_INSERT) + payload)
    assert data == wal_format._HEADER.pack(wal_format.MAGIC, len(payload), crc, 5, 3, wal_format.KIND_INSERT) + payload
    got = wal.decode(wal_format.KIND_INSERT, payload)
    assert isinstance(got, InsertRecord) and got.scalars == ()


def test_a_log_mixing_old_and_entity_records_replays_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    folder.mkdir()
    ids = np.array([1, 2], np.int64)
    vectors = np.zeros((2, 4), np.float32)
    # An older version's file ("<lsn>.wal", first header format), then a file holding entity records.
    payload = wal_format._INSERT_V1.pack(1, 2, 2, 16) + ids.tobytes() + vectors.tobytes()
    crc = zlib.crc32(struct.pack("<QB", 1, wal_format.KIND_INSERT) + payload)
    (folder / f"{1:020d}.wal").write_bytes(
        wal_format._HEADER_V1.pack(wal_format.MAGIC_V1, len(payload), crc, 1, wal_format.KIND_INSERT) + payload)
    column = np.array([-128, 127], np.int8)
    entity = InsertRecord(1, 2, ids + 10, vectors, b"", (column, np.array([1.5, -0.0])))
    second = wal.encode(2, entity, epoch=1) + wal.encode(3, InsertRecord(1, 2, ids + 20, vectors), epoch=1)
    torn = wal.encode(4, entity, epoch=1)[:-3]  # a crash while writing an entity record
    (folder / wal_format.file_name(2, 1)).write_bytes(second + torn)
    replayed = WriteAheadLog(folder, Applied()).replay()
    assert [(r.lsn, r.epoch) for r in replayed] == [(1, 0), (2, 1), (3, 1)]
    records = [r.record for r in replayed]
    assert all(isinstance(r, InsertRecord) for r in records)
    assert [len(r.scalars) for r in records if isinstance(r, InsertRecord)] == [0, 2, 0]
    middle = records[1]
    assert isinstance(middle, InsertRecord)
    assert middle.scalars[0].tobytes() == column.tobytes()
    assert np.signbit(middle.scalars[1][1])


def _entity_payload(columns: bytes) -> bytes:
    ids = np.array([1, 2], np.int64)
    return wal_format._INSERT.pack(1, 2, 2, 8, bytes(16)) + ids.tobytes() + np.zeros((2, 2), np.float32).tobytes() \
        + columns


@pytest.mark.parametrize("section", [
    b"",  # no column count
    struct.pack("<IB", 1, 9) + bytes(16),  # unknown column type
    struct.pack("<IB", 1, 4) + bytes(15),  # a column cut short
    struct.pack("<IB", 1, 4) + bytes(17),  # bytes after the columns
    struct.pack("<I", 2) + struct.pack("<B", 1) + bytes(2),  # fewer columns than announced
])
def test_damaged_scalar_sections_are_refused(section: bytes) -> None:
    with pytest.raises((ValueError, struct.error)):
        wal.decode(wal_format.KIND_ENTITY, _entity_payload(section))


def test_columns_that_cannot_be_logged_are_refused_before_writing() -> None:
    ids = np.array([1, 2], np.int64)
    vectors = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="dtype"):
        wal.encode(1, InsertRecord(1, 2, ids, vectors, b"", (np.array(["a", "b"]),)))
    with pytest.raises(ValueError, match="shape"):
        wal.encode(1, InsertRecord(1, 2, ids, vectors, b"", (np.zeros(3, np.int32),)))
