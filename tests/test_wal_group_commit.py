"""Concurrent appends share fsyncs, and every record is applied exactly once, in LSN order."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from node.wal import DeleteRecord, InsertRecord, Record, WriteAheadLog


def test_concurrent_appends_are_group_committed_in_order(tmp_path: Path) -> None:
    applied: list[int] = []
    wal = WriteAheadLog(tmp_path / "wal", lambda lsn, _rec: applied.append(lsn))
    list(wal.replay())
    wal.start()
    threads = 16
    per_thread = 25
    barrier = threading.Barrier(threads)
    acked: list[int] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            rec: Record = InsertRecord(1, 1, np.array([t * 1000 + i], dtype=np.int64),
                                       np.zeros((1, 4), dtype=np.float32))
            lsn = wal.append(rec).result(timeout=30)
            with lock:
                acked.append(lsn)

    pool = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wal.close()
    total = threads * per_thread
    assert sorted(acked) == list(range(1, total + 1))
    assert applied == list(range(1, total + 1))
    # With 16 writers waiting on each other's fsyncs, batches must have formed.
    assert wal.fsyncs < total

    replayed = []
    again = WriteAheadLog(tmp_path / "wal", lambda lsn, _rec: None)
    for item in again.replay():
        replayed.append(item.lsn)
        assert isinstance(item.record, InsertRecord | DeleteRecord)
    assert replayed == list(range(1, total + 1))
