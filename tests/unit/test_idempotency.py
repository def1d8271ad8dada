"""Recognising retried inserts: content keys, request keys, the window, and deletes in between."""

from __future__ import annotations

import numpy as np

from node.idempotency import KEY_BYTES, RecentWrites, content_key, parse_request_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_content_keys_tell_batches_apart() -> None:
    ids = np.arange(5, dtype=np.int64)
    vectors = np.ones((5, 4), np.float32)
    key = content_key(1, 100, 2, ids, vectors)
    assert len(key) == KEY_BYTES
    assert key == content_key(1, 100, 2, ids.copy(), vectors.copy())
    other = vectors.copy()
    other[4, 3] = 2.0
    recreated = content_key(1, 101, 2, ids, vectors)  # the same id, a collection created again
    assert len({key, content_key(1, 100, 3, ids, vectors), content_key(2, 100, 2, ids, vectors),
                content_key(1, 100, 2, ids + 1, vectors), content_key(1, 100, 2, ids, other), recreated}) == 6


def test_request_keys_parse_only_32_hex_digits() -> None:
    assert parse_request_key("00" * 16) == bytes(16)
    assert parse_request_key("ab" * 16) == b"\xab" * 16
    assert parse_request_key("") == b""
    assert parse_request_key("zz" * 16) == b""
    assert parse_request_key("ab" * 15) == b""


def test_a_retry_is_recognised_within_the_window_only() -> None:
    clock = Clock()
    recent = RecentWrites(60.0, clock)
    recent.inserted(b"k" * 16, 1, np.arange(3), lsn=10)
    hit = recent.lookup(b"k" * 16)
    assert hit is not None and hit.lsn == 10 and hit.ids.tolist() == [0, 1, 2]
    assert recent.lookup(b"x" * 16) is None and recent.lookup(b"") is None
    clock.now = 59.0
    assert recent.lookup(b"k" * 16) is not None
    clock.now = 60.5
    assert recent.lookup(b"k" * 16) is None
    assert len(recent) == 0


def test_a_delete_of_any_row_since_makes_it_a_new_insert() -> None:
    recent = RecentWrites(60.0, Clock())
    recent.inserted(b"a" * 16, 1, np.array([5, 9, 13]), lsn=10)
    recent.inserted(b"b" * 16, 1, np.arange(100, 200), lsn=11)
    recent.deleted(1, np.array([9]), lsn=9)  # before the insert: irrelevant
    recent.deleted(2, np.array([13, 150]), lsn=12)  # another collection: irrelevant
    assert recent.lookup(b"a" * 16) is not None and recent.lookup(b"b" * 16) is not None
    recent.deleted(1, np.array([7, 150]), lsn=13)
    assert recent.lookup(b"b" * 16) is None, "a deleted row would be re-inserted by the retry"
    assert recent.lookup(b"a" * 16) is not None
    recent.deleted(1, np.array([13]), lsn=14)
    assert recent.lookup(b"a" * 16) is None


def test_a_zero_window_turns_it_off_and_entries_are_bounded() -> None:
    off = RecentWrites(0.0, Clock())
    off.inserted(b"k" * 16, 1, np.arange(3), lsn=1)
    assert not off.enabled and off.lookup(b"k" * 16) is None
    small = RecentWrites(60.0, Clock(), max_entries=3)
    for i in range(5):
        small.inserted(bytes([i]) * 16, 1, np.array([i]), lsn=i)
    assert len(small) == 3
    assert small.lookup(bytes([0]) * 16) is None and small.lookup(bytes([4]) * 16) is not None
