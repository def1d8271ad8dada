"""Flush visibility and durability against a real node process: unflushed rows are invisible until a flush
(or the auto flush), and acknowledged writes survive a kill before any flush."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.node_rpcs import (
    UNEXPECTED_ERROR,
    floats,
    partition,
    vectors_of,
)
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    L2,
    SUCCESS,
    TimedStub,
    assert_search_exact,
    assert_status,
    count,
    create,
    delete,
    flush,
    get_vectors,
    info,
    insert_ok,
    ok,
    search,
    unique_name,
)
from tests.support.waiting import poll_for


@pytest.fixture
def api(stub: Any) -> TimedStub:
    return TimedStub(stub)


@pytest.fixture
def quiet_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A node of its own that never flushes by itself (auto flush off), for visibility and crash tests."""
    proc = NodeProcess(tmp_path / "quiet", ["--auto-flush-interval", "0"])
    try:
        yield proc.start()
    finally:
        proc.stop()


# -- flush visibility ------------------------------------------------------------------------------


def test_unflushed_rows_are_invisible_until_flush(quiet_node: NodeProcess) -> None:
    api = TimedStub(quiet_node.stub())
    name = unique_name("unflushed")
    ok(create(api, name, 8, L2))
    rng = np.random.default_rng(8)
    vecs = floats(rng, 25, 8)
    ids = insert_ok(api, name, vecs)
    assert count(api, name) == 0
    assert info(api, name) == {"partitions": [{"row_count": 0, "segments": None, "tag": "_default"}], "row_count": 0}
    st, got, _ = search(api, name, vecs[:2], 5)
    ok(st)
    assert got.shape == (0, 0)
    assert_status(get_vectors(api, name, ids[:1]), UNEXPECTED_ERROR, "Collection or partition is empty")

    ok(flush(api, name))
    assert count(api, name) == 25
    st, got, dist = search(api, name, vecs[:2], 5)
    ok(st)
    assert_search_exact(got, dist, vecs, ids, vecs[:2], 5, L2)
    np.testing.assert_array_equal(vectors_of(get_vectors(api, name, ids[:1]), binary=False)[0], vecs[0])


def test_auto_flush_makes_rows_visible_without_flush(api: Any) -> None:
    name = unique_name("autoflush")
    ok(create(api, name, 8, L2))
    vecs = floats(np.random.default_rng(9), 40, 8)
    ids = insert_ok(api, name, vecs)
    poll_for(lambda: count(api, name) == 40, timeout=15, what="auto flush (interval 1 s)")
    st, got, dist = search(api, name, vecs[:3], 4)
    ok(st)
    assert_search_exact(got, dist, vecs, ids, vecs[:3], 4, L2)


def test_flush_of_every_collection(api: Any) -> None:
    names = [unique_name("flushall") for _ in range(2)]
    for name in names:
        ok(create(api, name, 4, L2))
        insert_ok(api, name, floats(np.random.default_rng(10), 6, 4))
    assert_status(flush(api), SUCCESS, "OK")  # no names: every collection
    assert [count(api, n) for n in names] == [6, 6]


# -- durability ------------------------------------------------------------------------------------


def check_contents(api: Any, name: str, base: np.ndarray, ids: np.ndarray, gone: np.ndarray) -> None:
    """Count, GetVectorsByID and Search agree with rows ``base``/``ids`` minus the ids ``gone``."""
    keep = ~np.isin(ids, gone)
    assert count(api, name) == int(keep.sum())
    for start in range(0, ids.size, 1000):
        chunk = slice(start, start + 1000)
        got = vectors_of(get_vectors(api, name, ids[chunk]), binary=False)
        for vec, expected, alive in zip(got, base[chunk], keep[chunk], strict=True):
            if alive:
                assert vec is not None
                np.testing.assert_array_equal(vec, expected)
            else:
                assert vec is None
    queries = np.concatenate([base[:3], base[-3:]])
    st, got_ids, dist = search(api, name, queries, 8)
    ok(st)
    assert_search_exact(got_ids, dist, base[keep], ids[keep], queries, 8, L2)


def test_acknowledged_writes_survive_kill_before_any_flush(quiet_node: NodeProcess) -> None:
    api = TimedStub(quiet_node.stub())
    name = unique_name("durable")
    ok(create(api, name, 16, L2))
    ok(api.CreatePartition(partition(name, "p1")))
    rng = np.random.default_rng(20)
    batches = [(floats(rng, 200, 16), ""), (floats(rng, 150, 16), "p1"), (floats(rng, 100, 16), "")]
    ids = np.concatenate([insert_ok(api, name, vecs, tag=tag) for vecs, tag in batches])
    base = np.concatenate([vecs for vecs, _ in batches])
    gone = np.concatenate([ids[:20], ids[200:210], ids[-5:]])
    ok(delete(api, name, gone))
    assert count(api, name) == 0  # nothing flushed yet

    quiet_node.kill()
    quiet_node.start()
    api = TimedStub(quiet_node.stub())
    ok(flush(api, name))
    check_contents(api, name, base, ids, gone)
    in_p1 = vectors_of(get_vectors(api, name, ids[210:215], tag="p1"), binary=False)
    np.testing.assert_array_equal(np.stack(in_p1), base[210:215])  # type: ignore[arg-type]
    # Ids handed out after the restart never repeat acknowledged ones.
    later = insert_ok(api, name, floats(rng, 3, 16))
    assert later.min() > ids.max()


def test_unflushed_changes_to_flushed_rows_survive_kill(quiet_node: NodeProcess) -> None:
    api = TimedStub(quiet_node.stub())
    name = unique_name("durable")
    ok(create(api, name, 16, L2))
    rng = np.random.default_rng(21)
    first = floats(rng, 300, 16)
    first_ids = insert_ok(api, name, first)
    ok(flush(api, name))
    second = floats(rng, 120, 16)
    second_ids = insert_ok(api, name, second)
    gone = np.concatenate([first_ids[::10], second_ids[:7]])
    ok(delete(api, name, gone))

    quiet_node.kill()
    quiet_node.start()
    api = TimedStub(quiet_node.stub())
    ok(flush(api, name))
    check_contents(api, name, np.concatenate([first, second]), np.concatenate([first_ids, second_ids]), gone)
