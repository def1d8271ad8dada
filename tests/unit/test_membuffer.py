"""Insert / delete interplay of the in-memory buffers."""

from __future__ import annotations

import numpy as np

from node.membuffer import ALL_PARTITIONS, MemBuffer


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def vecs(*values: int) -> np.ndarray:
    """One 2-d float row per value, filled with that value (so rows can be traced)."""
    return np.array([[v, v] for v in values], dtype=np.float32).reshape(len(values), 2)


def live(buf: MemBuffer) -> dict[int, list[int]]:
    return {pid: rows[0].tolist() for pid, rows in buf.rows_by_partition().items()}


def test_empty_buffer() -> None:
    buf = MemBuffer()
    assert buf.empty
    assert buf.rows_by_partition() == {}
    assert buf.delete_ids_for(1).dtype == np.int64
    assert buf.delete_ids_for(1).size == 0


def test_insert_groups_by_partition_in_order() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, ids(1, 2), vecs(1, 2))
    buf.insert(2, 11, ids(3), vecs(3))
    buf.insert(3, 10, ids(4, 5), vecs(4, 5))
    assert not buf.empty
    rows = buf.rows_by_partition()
    assert list(rows) == [10, 11]
    assert rows[10][0].tolist() == [1, 2, 4, 5]
    assert rows[10][1][:, 0].tolist() == [1, 2, 4, 5]  # vectors travel with their ids
    assert rows[11][0].tolist() == [3]
    assert (buf.first_lsn, buf.last_lsn) == (1, 3)
    assert buf.nbytes == 5 * 8 + 5 * 2 * 4


def test_delete_then_reinsert_same_id_survives() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, ids(7, 8), vecs(1, 2))
    buf.delete(2, ALL_PARTITIONS, ids(7))
    buf.insert(3, 10, ids(7), vecs(3))
    rows = buf.rows_by_partition()
    assert rows[10][0].tolist() == [8, 7]
    assert rows[10][1][:, 0].tolist() == [2, 3], "the re-inserted vector, not the deleted one"
    # the delete still applies to already flushed segments
    assert buf.delete_ids_for(10).tolist() == [7]


def test_delete_is_partition_scoped() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, ids(1, 2), vecs(1, 2))
    buf.insert(2, 11, ids(1, 2), vecs(1, 2))
    buf.delete(3, 11, ids(1))
    assert live(buf) == {10: [1, 2], 11: [2]}
    buf.delete(4, ALL_PARTITIONS, ids(2, 99))
    assert live(buf) == {10: [1]}  # partition 11 has no live rows left and is omitted
    assert buf.delete_ids_for(10).tolist() == [2, 99]
    assert buf.delete_ids_for(11).tolist() == [1, 2, 99]
    assert buf.delete_ids_for(12).tolist() == [2, 99]


def test_delete_only_buffer_is_not_empty() -> None:
    buf = MemBuffer()
    buf.delete(5, 3, ids(1))
    assert not buf.empty
    assert (buf.first_lsn, buf.last_lsn) == (5, 5)
    assert buf.rows_by_partition() == {}


def test_delete_ids_for_is_sorted_and_unique() -> None:
    buf = MemBuffer()
    buf.delete(1, 3, ids(9, 1, 9))
    buf.delete(2, ALL_PARTITIONS, ids(4, 1))
    buf.delete(3, 5, ids(100))
    assert buf.delete_ids_for(3).tolist() == [1, 4, 9]
    assert buf.delete_ids_for(5).tolist() == [1, 4, 100]


def test_drop_partition() -> None:
    buf = MemBuffer()
    buf.insert(1, 10, ids(1), vecs(1))
    buf.insert(2, 11, ids(2), vecs(2))
    buf.drop_partition(10)
    assert live(buf) == {11: [2]}


def test_restore_before() -> None:
    older = MemBuffer()
    older.insert(1, 10, ids(1, 2, 3), vecs(1, 2, 3))
    older.insert(2, 11, ids(4), vecs(4))
    older.delete(3, ALL_PARTITIONS, ids(50))
    newer = MemBuffer()
    newer.insert(4, 10, ids(5), vecs(5))
    newer.delete(5, 10, ids(2, 4))  # 4 lives in partition 11: untouched
    newer.insert(6, 10, ids(2), vecs(20))  # re-insert after the delete
    newer.delete(7, ALL_PARTITIONS, ids(3))
    older_bytes, newer_bytes = older.nbytes, newer.nbytes

    newer.restore_before(older)

    rows = newer.rows_by_partition()
    assert rows[10][0].tolist() == [1, 5, 2]  # older rows first; 2 and 3 killed by later deletes
    assert rows[10][1][:, 0].tolist() == [1, 5, 20]
    assert rows[11][0].tolist() == [4]
    assert [d.ids.tolist() for d in newer.deletes] == [[50], [2, 4], [3]]
    assert (newer.first_lsn, newer.last_lsn) == (1, 7)
    assert newer.nbytes == older_bytes + newer_bytes


def test_restore_before_into_an_empty_buffer() -> None:
    older = MemBuffer()
    older.insert(3, 10, ids(1), vecs(1))
    newer = MemBuffer()
    newer.restore_before(older)
    assert (newer.first_lsn, newer.last_lsn) == (3, 3)
    assert live(newer) == {10: [1]}


def test_restore_before_from_an_empty_older_keeps_first_lsn() -> None:
    newer = MemBuffer()
    newer.insert(8, 10, ids(1), vecs(1))
    newer.restore_before(MemBuffer())
    assert (newer.first_lsn, newer.last_lsn) == (8, 8)
