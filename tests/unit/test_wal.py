"""WAL record codec, durable appends, replay and torn-tail recovery (in a temporary folder)."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.errors import NotWriter, StorageError, WriteOutcomeUnknown
from coordinator.fencing import WriterFence
from node import wal, wal_format
from node.wal import DeleteRecord, InsertRecord, Record, WriteAheadLog


def same(a: Record, b: Record) -> bool:
    if type(a) is not type(b) or (a.collection_id, a.partition_id) != (b.collection_id, b.partition_id):
        return False
    if not np.array_equal(a.ids, b.ids) or b.ids.dtype != np.int64:
        return False
    if isinstance(a, InsertRecord):
        assert isinstance(b, InsertRecord)
        return a.vectors.dtype == b.vectors.dtype and np.array_equal(a.vectors, b.vectors, equal_nan=True)
    return True


def roundtrip(lsn: int, record: Record) -> tuple[int, Record]:
    data = wal.encode(lsn, record, epoch=7)
    magic, length, _crc, got_lsn, epoch, kind = wal_format._HEADER.unpack_from(data)
    assert magic == wal.MAGIC
    assert epoch == 7
    assert length == len(data) - wal_format._HEADER.size
    return got_lsn, wal.decode(kind, data[wal_format._HEADER.size :])


ids_st = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20)
u32 = st.integers(0, 2**32 - 1)


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(1, 2**64 - 1), u32, u32, ids_st, st.integers(1, 40), st.booleans(), st.integers(0, 2**32 - 1))
def test_insert_roundtrip(lsn: int, cid: int, pid: int, ids: list[int], width: int, binary: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(ids)
    if binary:
        vectors = rng.integers(0, 256, size=(n, width), dtype=np.uint8)
    else:
        vectors = rng.standard_normal((n, width)).astype(np.float32)
        if n:
            vectors[0, 0] = np.nan
    record = InsertRecord(cid, pid, np.array(ids, dtype=np.int64), vectors)
    got_lsn, got = roundtrip(lsn, record)
    assert got_lsn == lsn
    if n:
        assert same(record, got)
    else:
        assert isinstance(got, InsertRecord) and got.ids.size == 0 and got.vectors.shape[0] == 0


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(1, 2**64 - 1), u32, u32, ids_st)
def test_delete_roundtrip(lsn: int, cid: int, pid: int, ids: list[int]) -> None:
    record = DeleteRecord(cid, pid, np.array(ids, dtype=np.int64))
    got_lsn, got = roundtrip(lsn, record)
    assert got_lsn == lsn
    assert same(record, got)


def test_decode_unknown_kind() -> None:
    with pytest.raises(ValueError):
        wal.decode(9, b"")


# -- the log on disk ---------------------------------------------------------------------------------


def records(seed: int, count: int) -> list[Record]:
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    for i in range(count):
        n = int(rng.integers(1, 6))
        ids = rng.integers(0, 1000, size=n).astype(np.int64)
        if i % 3 == 2:
            out.append(DeleteRecord(1, i % 2, ids))
        elif i % 3 == 1:
            out.append(InsertRecord(2, 5, ids, rng.integers(0, 256, size=(n, 4), dtype=np.uint8)))
        else:
            out.append(InsertRecord(1, 3, ids, rng.standard_normal((n, 8)).astype(np.float32)))
    return out


class Applied:
    def __init__(self) -> None:
        self.seen: list[tuple[int, Record]] = []

    def __call__(self, lsn: int, record: Record) -> None:
        self.seen.append((lsn, record))


def write_log(folder: Path, recs: list[Record], file_bytes: int = 64 * 1024 * 1024) -> list[int]:
    applied = Applied()
    log = WriteAheadLog(folder, applied, file_bytes)
    assert list(log.replay()) == []
    log.start()
    try:
        lsns = [log.append(r).result(timeout=10) for r in recs]
    finally:
        log.close()
    assert [lsn for lsn, _ in applied.seen] == lsns
    assert all(same(a, b) for (_, a), b in zip(applied.seen, recs, strict=True))
    return lsns


def replay(folder: Path, file_bytes: int = 64 * 1024 * 1024) -> list[tuple[int, Record]]:
    return [(r.lsn, r.record) for r in WriteAheadLog(folder, Applied(), file_bytes).replay()]


def wal_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wal"))


def first_lsn(path: Path) -> int:
    parsed = wal.parse_file_name(path.name)
    assert parsed is not None
    return parsed[0]


def test_append_then_replay(tmp_path: Path) -> None:
    recs = records(1, 10)
    lsns = write_log(tmp_path / "wal", recs)
    assert lsns == list(range(1, 11))
    got = replay(tmp_path / "wal")
    assert [lsn for lsn, _ in got] == lsns
    assert all(same(a, b) for (_, a), b in zip(got, recs, strict=True))


def test_replay_continues_lsns_and_spans_files(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    first = records(2, 4)
    write_log(folder, first, file_bytes=1)  # a new file after every batch
    assert len(wal_files(folder)) >= 2
    log = WriteAheadLog(folder, Applied(), 1)
    got = log.replay()
    assert [r.lsn for r in got] == [1, 2, 3, 4]
    log.start()
    try:
        assert log.append(records(3, 1)[0]).result(timeout=10) == 5
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(folder, 1)] == [1, 2, 3, 4, 5]


def test_start_honours_min_next_lsn(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path, Applied())
    list(log.replay())
    log.start(min_next_lsn=100)
    try:
        assert log.append(records(4, 1)[0]).result(timeout=10) == 100
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(tmp_path)] == [100]


def test_append_after_close_fails(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path, Applied())
    list(log.replay())
    with pytest.raises(StorageError):
        log.append(records(5, 1)[0])  # never started
    log.start()
    log.close()
    with pytest.raises(StorageError):
        log.append(records(5, 1)[0])


def test_apply_failure_fails_only_that_record(tmp_path: Path) -> None:
    recs = records(6, 3)

    def apply(lsn: int, record: Record) -> None:
        if lsn == 2:
            raise RuntimeError("boom")

    log = WriteAheadLog(tmp_path, apply)
    list(log.replay())
    log.start()
    try:
        assert log.append(recs[0]).result(timeout=10) == 1
        with pytest.raises(RuntimeError):
            log.append(recs[1]).result(timeout=10)
        assert log.append(recs[2]).result(timeout=10) == 3
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(tmp_path)] == [1, 2, 3]


def _last_record_start(path: Path) -> int:
    data = path.read_bytes()
    pos = last = 0
    while pos < len(data):
        last = pos
        _magic, length, *_ = wal_format._HEADER.unpack_from(data, pos)
        pos += wal_format._HEADER.size + length
    return last


@pytest.mark.parametrize("cut", ["mid_header", "mid_payload", "flip_payload", "flip_header", "garbage"])
def test_torn_tail_is_ignored(tmp_path: Path, cut: str) -> None:
    folder = tmp_path / "wal"
    recs = records(7, 5)
    write_log(folder, recs)
    (path,) = wal_files(folder)
    data = bytearray(path.read_bytes())
    start = _last_record_start(path)
    if cut == "mid_header":
        data = data[: start + 7]
    elif cut == "mid_payload":
        data = data[: len(data) - 3]
    elif cut == "flip_payload":
        data[-2] ^= 0x40
    elif cut == "flip_header":
        data[start + 20] ^= 0x01  # inside the epoch field, covered by the crc
    else:
        data += b"\x00\x01garbage"
        start = len(data) - 9
    path.write_bytes(bytes(data))

    log = WriteAheadLog(folder, Applied())
    got = log.replay()
    survivors = 5 if cut == "garbage" else 4
    assert [r.lsn for r in got] == list(range(1, survivors + 1))
    assert all(same(a.record, b) for a, b in zip(got, recs, strict=False))
    assert path.read_bytes() == bytes(data), "replay never changes a log file (a deposed writer may own it)"
    # the next writer (a new epoch) writes a file of its own: the next record gets the next lsn
    log.start(epoch=1)
    try:
        assert log.append(recs[-1]).result(timeout=10) == survivors + 1
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(folder)] == list(range(1, survivors + 2))


def test_corruption_before_the_last_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    write_log(folder, records(8, 3), file_bytes=1)
    first = wal_files(folder)[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(StorageError):
        replay(folder, 1)


def test_truncate_removes_closed_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    log = WriteAheadLog(folder, Applied(), file_bytes=1)
    list(log.replay())
    log.start()
    try:
        recs = records(9, 4)
        lsns = [log.append(r).result(timeout=10) for r in recs]
        assert lsns == [1, 2, 3, 4]
        # The writer rotates right after completing a batch: wait for the fifth (current, empty) file.
        deadline = time.monotonic() + 10
        while len(wal_files(folder)) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(wal_files(folder)) == 5  # four full files and the open, empty current one
        log.truncate(2)
        assert [first_lsn(p) for p in wal_files(folder)] == [3, 4, 5]
        log.truncate(10**9)
        assert [first_lsn(p) for p in wal_files(folder)] == [5], "the current file is never removed"
        assert log.append(recs[0]).result(timeout=10) == 5
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(folder, 1)] == [5]


def test_truncate_keeps_the_current_file_with_unflushed_records(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    log = WriteAheadLog(folder, Applied())
    list(log.replay())
    log.start()
    try:
        for r in records(10, 3):
            log.append(r).result(timeout=10)
        log.truncate(3)
    finally:
        log.close()
    assert [lsn for lsn, _ in replay(folder)] == [1, 2, 3]


# -- fencing, epochs and seals ---------------------------------------------------------------------


class SwitchFence(WriterFence):
    """A fence that answers from a list of booleans, then False (the lease ran out at a chosen step)."""

    def __init__(self, answers: list[bool]) -> None:
        super().__init__(deadline=lambda: 0.0)
        self.answers = answers

    def valid(self) -> bool:
        if self.revoked is not None:
            return False
        ok = self.answers.pop(0) if self.answers else False
        if not ok:
            self.revoke("test: the lease ran out")
        return ok


def test_an_expired_fence_refuses_before_writing(tmp_path: Path) -> None:
    applied = Applied()
    # append's check passes, the writer thread's check before writing fails
    log = WriteAheadLog(tmp_path, applied, fence=SwitchFence([True]))
    log.replay()
    log.start(epoch=3)
    try:
        with pytest.raises(NotWriter):
            log.append(records(11, 1)[0]).result(timeout=10)
        with pytest.raises(NotWriter):
            log.append(records(11, 1)[0])  # refused at once from now on
    finally:
        log.close()
    assert applied.seen == []
    assert replay(tmp_path) == [], "nothing was written"


def test_a_fence_lost_during_the_fsync_leaves_the_outcome_unknown(tmp_path: Path) -> None:
    applied = Applied()
    # append passes, the check before writing passes, the check after the fsync fails
    log = WriteAheadLog(tmp_path, applied, fence=SwitchFence([True, True]))
    log.replay()
    log.start(epoch=3)
    rec = records(12, 1)[0]
    try:
        with pytest.raises(WriteOutcomeUnknown) as info:
            log.append(rec).result(timeout=10)
        assert info.value.reason.startswith(WriteOutcomeUnknown.PREFIX)
        with pytest.raises(NotWriter):
            log.append(rec)
    finally:
        log.close()
    assert applied.seen == [], "neither applied nor acknowledged"
    assert [lsn for lsn, _ in replay(tmp_path)] == [1], "durable: a successor that replays later sees it"


def test_last_valid_lsn() -> None:
    seals = [wal.Seal(2, 10), wal.Seal(3, 25), wal.Seal(5, 40)]
    assert wal.last_valid_lsn(1, seals) == 10
    assert wal.last_valid_lsn(2, seals) == 25
    assert wal.last_valid_lsn(3, seals) == 40
    assert wal.last_valid_lsn(4, seals) == 40
    assert wal.last_valid_lsn(5, seals) is None
    assert wal.last_valid_lsn(1, []) is None


def test_a_deposed_writers_late_records_are_void_after_the_seal(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    recs = records(13, 8)
    old = WriteAheadLog(folder, Applied())
    old.replay()
    old.start(epoch=1)
    new: WriteAheadLog | None = None
    try:
        assert [old.append(r).result(timeout=10) for r in recs[:3]] == [1, 2, 3]
        # The successor (epoch 2) replays what is there and seals the log at LSN 3.
        new = WriteAheadLog(folder, Applied())
        assert [r.lsn for r in new.replay([])] == [1, 2, 3]
        seals = [wal.Seal(2, new.last_replayed_lsn)]
        new.start(min_next_lsn=4, epoch=2)
        # The paused writer resumes and appends (its fence would refuse; here it has none): LSNs 4 and 5.
        assert [old.append(r).result(timeout=10) for r in recs[3:5]] == [4, 5]
        assert [new.append(r).result(timeout=10) for r in recs[5:8]] == [4, 5, 6]
    finally:
        old.close()
        if new is not None:
            new.close()
    third = WriteAheadLog(folder, Applied())
    got = third.replay(seals)
    assert [(r.lsn, r.epoch) for r in got] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert all(same(a.record, b) for a, b in zip(got, [*recs[:3], *recs[5:8]], strict=True))
    assert third.voided == 2
    # A later seal does not bring the void records back: epoch 1 stays limited by epoch 2's seal.
    fourth = WriteAheadLog(folder, Applied())
    assert [r.lsn for r in fourth.replay([*seals, wal.Seal(3, 6)])] == [1, 2, 3, 4, 5, 6]


def test_insert_keys_roundtrip_and_old_records_read_as_epoch_zero(tmp_path: Path) -> None:
    key = bytes(range(16))
    rec = InsertRecord(1, 2, np.array([5, 6], np.int64), np.ones((2, 4), np.float32), key)
    data = wal.encode(9, rec, epoch=4)
    _magic, _length, _crc, _lsn, epoch, kind = wal_format._HEADER.unpack_from(data)
    got = wal.decode(kind, data[wal_format._HEADER.size:])
    assert isinstance(got, InsertRecord) and got.key == key and epoch == 4
    with pytest.raises(ValueError):
        wal.encode(1, InsertRecord(1, 2, rec.ids, rec.vectors, b"short"))
    # A file of the first format (no epoch, no key): "<lsn>.wal", header without the epoch.
    payload = wal_format._INSERT_V1.pack(1, 2, 2, 16) + rec.ids.tobytes() + rec.vectors.tobytes()
    crc = zlib.crc32(struct.pack("<QB", 7, wal_format.KIND_INSERT) + payload)
    folder = tmp_path / "wal"
    folder.mkdir()
    header = wal_format._HEADER_V1.pack(wal_format.MAGIC_V1, len(payload), crc, 7, wal_format.KIND_INSERT)
    (folder / f"{7:020d}.wal").write_bytes(header + payload)
    old = WriteAheadLog(folder, Applied()).replay()
    assert [(r.lsn, r.epoch) for r in old] == [(7, 0)]
    assert isinstance(old[0].record, InsertRecord) and old[0].record.key == b""
    assert np.array_equal(old[0].record.vectors, rec.vectors)
