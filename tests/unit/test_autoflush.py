"""The timed flush deadline: due ``auto_flush_interval`` after the oldest buffered acknowledged record, early by
the recent flush cost; and the buffers' record of when that oldest record arrived."""

from __future__ import annotations

import numpy as np
import pytest

from node.autoflush import READ_ALLOWANCE, Upkeep, flush_due, flush_lead
from node.wal import DeleteRecord, InsertRecord
from node.write_buffers import WriteBuffers


def test_nothing_buffered_or_timed_flushes_off_means_no_deadline() -> None:
    assert flush_due(None, 1.0, 0.1) is None
    assert flush_due(100.0, 0.0, 0.1) is None


def test_the_deadline_counts_from_the_oldest_record_less_the_lead() -> None:
    assert flush_due(100.0, 1.0, 0.0) == pytest.approx(101.0)
    assert flush_due(100.0, 1.0, 0.25) == pytest.approx(100.75)
    assert flush_due(100.0, 5.0, 0.25) == pytest.approx(104.75)


def test_the_lead_is_the_slowest_recent_flush_with_a_margin_plus_the_read_allowance() -> None:
    assert flush_lead([], 1.0) == pytest.approx(READ_ALLOWANCE)
    assert flush_lead([0.02, 0.1, 0.04], 1.0) == pytest.approx(0.1 * 1.25 + READ_ALLOWANCE)


def test_the_lead_is_at_most_half_the_interval() -> None:
    assert flush_lead([3.0], 1.0) == pytest.approx(0.5)
    assert flush_lead([], 0.05) == pytest.approx(0.025)
    assert flush_due(100.0, 1.0, flush_lead([3.0], 1.0)) == pytest.approx(100.5)


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def _insert(cid: int, *ids: int) -> InsertRecord:
    return InsertRecord(cid, 1, np.array(ids, dtype=np.int64), np.ones((len(ids), 2), dtype=np.float32))


def test_the_oldest_record_time_starts_with_an_empty_buffer_and_ends_with_its_flush() -> None:
    clock = Clock()
    bufs = WriteBuffers(clock)
    assert bufs.oldest_at() is None
    assert bufs.apply(1, _insert(7, 1)) is True  # a new deadline starts
    clock.now = 10.4
    assert bufs.apply(2, _insert(7, 2)) is False  # a later record keeps the older deadline
    assert bufs.apply(3, DeleteRecord(8, 0, np.array([5], dtype=np.int64))) is True
    assert bufs.oldest_at() == pytest.approx(10.0)
    taken = bufs.take(7)
    assert taken is not None and taken.first_at == pytest.approx(10.0)
    assert bufs.oldest_at() == pytest.approx(10.4)  # collection 8's delete
    assert bufs.oldest_lsn(next_lsn=9) == 1  # collection 7's rows are being flushed
    clock.now = 11.0
    bufs.apply(4, _insert(7, 3))
    bufs.restore(7, taken)  # the flush failed: the rows keep their deadline
    assert bufs.oldest_at() == pytest.approx(10.0)
    assert sorted(bufs.collections()) == [7, 8]
    bufs.done_flushing(7)
    bufs.take(7)
    bufs.take(8)
    bufs.done_flushing(7)
    bufs.done_flushing(8)
    assert bufs.oldest_at() is None and bufs.oldest_lsn(next_lsn=9) == 9


class Engine:
    """What the flush schedule reads of an engine: its buffers and the interval."""

    def __init__(self, buffers: WriteBuffers, interval: float) -> None:
        self.write_buffers = buffers
        self.auto_flush_interval = interval


def test_the_next_flush_is_due_an_interval_after_the_oldest_record_less_what_flushes_cost() -> None:
    clock = Clock()
    engine = Engine(WriteBuffers(clock), 1.0)
    upkeep = Upkeep(engine, clock)  # type: ignore[arg-type]  # threads not started
    assert upkeep.next_flush() is None
    engine.write_buffers.apply(1, _insert(7, 1))
    clock.now = 10.7
    engine.write_buffers.apply(2, _insert(9, 1))
    assert upkeep.next_flush() == pytest.approx(11.0 - READ_ALLOWANCE)
    upkeep.costs.extend([0.08, 0.2, 0.05])
    assert upkeep.next_flush() == pytest.approx(11.0 - 0.2 * 1.25 - READ_ALLOWANCE)
    engine.auto_flush_interval = 0.0
    assert upkeep.next_flush() is None
