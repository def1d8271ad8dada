"""MilvusService RPCs that write and read rows by id (insert, GetVectorsByID, GetVectorIDs, delete, compact)
against a real node process, checked against the Milvus 1.1 contract (search results against an exact oracle)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.node_rpcs import (
    SEG_ROWS,
    SEGMENTS,
    UNEXPECTED_ERROR,
    cname,
    floats,
    multi_segment_collection,
    partition,
    vectors_of,
)
from tests.support.requests import (
    JACCARD,
    L2,
    NO_ID,
    SUCCESS,
    TimedStub,
    assert_search_exact,
    assert_status,
    assert_topk_matches,
    count,
    create,
    delete,
    flush,
    get_vectors,
    insert,
    insert_ok,
    ok,
    oracle,
    search,
    search_by_id,
    segments,
    unique_name,
)

ILLEGAL_VECTOR_ID = 12


@pytest.fixture
def api(stub: Any) -> TimedStub:
    return TimedStub(stub)


def segment_ids(api: Any, name: str) -> dict[str, np.ndarray]:
    """Live ids of every segment (by segment name), through GetVectorIDs."""
    out: dict[str, np.ndarray] = {}
    for seg in segments(api, name):
        reply = ok(api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=name, segment_name=seg["name"])))
        out[seg["name"]] = np.array(reply.vector_id_array, dtype=np.int64)
    return out


# -- insert ----------------------------------------------------------------------------------------


def test_auto_ids_are_increasing_and_unique(api: Any) -> None:
    name = unique_name("autoid")
    ok(create(api, name, 4, L2))
    rng = np.random.default_rng(5)
    first = insert_ok(api, name, floats(rng, 300, 4))
    second = insert_ok(api, name, floats(rng, 50, 4))
    assert first.shape == (300,) and second.shape == (50,)
    both = np.concatenate([first, second])
    assert (np.diff(both) > 0).all(), "auto ids must increase in insertion order"
    # User ids are now refused: the first insert fixed the id mode.
    reply = insert(api, name, floats(rng, 2, 4), ids=[1, 2])
    assert_status(reply, ILLEGAL_VECTOR_ID,
                  "Entities IDs are auto-generated. All vectors of this collection must use auto-generated IDs.")
    assert len(reply.vector_id_array) == 0
    ok(flush(api, name))
    assert count(api, name) == 350
    assert all(v is not None for v in vectors_of(get_vectors(api, name, both), binary=False))


def test_user_ids_are_echoed_and_fix_the_id_mode(api: Any) -> None:
    name = unique_name("userid")
    ok(create(api, name, 4, L2))
    rng = np.random.default_rng(6)
    vecs = floats(rng, 5, 4)
    user_ids = [50, 7, 2**62, 0, 13]
    assert insert_ok(api, name, vecs, user_ids).tolist() == user_ids
    assert_status(
        insert(api, name, floats(rng, 2, 4)), ILLEGAL_VECTOR_ID,
        "Entities IDs are user-defined. Please provide IDs for all entities of the collection.",
    )
    ok(flush(api, name))
    assert count(api, name) == 5
    got = vectors_of(get_vectors(api, name, [2**62, 7]), binary=False)
    np.testing.assert_array_equal(np.stack(got), vecs[[2, 1]])  # type: ignore[arg-type]


def test_reinserted_id_replaces_deleted_row(api: Any) -> None:
    name = unique_name("reinsert")
    ok(create(api, name, 8, L2))
    rng = np.random.default_rng(23)
    base = floats(rng, 10, 8)
    insert_ok(api, name, base, range(10))
    ok(flush(api, name))
    fresh = floats(rng, 1, 8)
    ok(delete(api, name, [5]))
    insert_ok(api, name, fresh, [5])  # in the same insert buffer as the delete
    ok(flush(api, name))
    assert count(api, name) == 10
    np.testing.assert_array_equal(vectors_of(get_vectors(api, name, [5]), binary=False)[0], fresh[0])
    base[5] = fresh[0]
    st, got, dist = search(api, name, np.concatenate([fresh, base[:2]]), 10)
    ok(st)
    assert_search_exact(got, dist, base, np.arange(10), np.concatenate([fresh, base[:2]]), 10, L2)


def test_binary_insert_and_get(api: Any) -> None:
    name = unique_name("bin")
    ok(create(api, name, 64, JACCARD))
    rng = np.random.default_rng(7)
    vecs = rng.integers(0, 256, (20, 8), dtype=np.uint8)
    ids = insert_ok(api, name, vecs)
    ok(flush(api, name))
    got = vectors_of(get_vectors(api, name, [ids[3], ids[19], 12345]), binary=True)
    assert got[2] is None
    np.testing.assert_array_equal(got[0], vecs[3])
    np.testing.assert_array_equal(got[1], vecs[19])


# -- get by id / ids of a segment ------------------------------------------------------------------


def test_get_vectors_by_id_found_missing_and_by_partition(api: Any) -> None:
    name = unique_name("getvec")
    ok(create(api, name, 8, L2))
    ok(api.CreatePartition(partition(name, "p")))
    rng = np.random.default_rng(11)
    root, part = floats(rng, 10, 8), floats(rng, 10, 8)
    root_ids = insert_ok(api, name, root, range(10))
    part_ids = insert_ok(api, name, part, range(10, 20), tag="p")
    ok(flush(api, name))
    wanted = [15, 999, 3, -5, 15]
    got = vectors_of(get_vectors(api, name, wanted), binary=False)
    assert [v is not None for v in got] == [True, False, True, False, True]
    np.testing.assert_array_equal(got[0], part[5])
    np.testing.assert_array_equal(got[2], root[3])
    np.testing.assert_array_equal(got[4], part[5])
    in_part = vectors_of(get_vectors(api, name, [int(root_ids[1]), int(part_ids[1])], tag="p"), binary=False)
    assert in_part[0] is None
    np.testing.assert_array_equal(in_part[1], part[1])
    assert_status(get_vectors(api, name, [1], tag="nope"), UNEXPECTED_ERROR,
                  "The specified partition does not exist")
    # The tag names one partition exactly: unlike search tags it is not a pattern.
    assert_status(get_vectors(api, name, [15], tag="p|_default"), UNEXPECTED_ERROR,
                  "The specified partition does not exist")
    # Exactly 1000 ids is allowed.
    assert len(ok(get_vectors(api, name, range(1000))).vectors_data) == 1000


def test_get_vector_ids_by_segment_excludes_deleted(api: Any) -> None:
    filled = multi_segment_collection(api, L2, np.random.default_rng(12))
    name, ids = filled.name, filled.ids
    by_segment = segment_ids(api, name)
    assert len(by_segment) == SEGMENTS
    assert [len(v) for v in by_segment.values()] == [SEG_ROWS] * SEGMENTS
    assert np.array_equal(np.sort(np.concatenate(list(by_segment.values()))), np.sort(ids))
    first_segment, first_ids = next(iter(by_segment.items()))
    gone = first_ids[::40]
    ok(delete(api, name, gone))
    ok(flush(api, name))
    after = segment_ids(api, name)[first_segment]
    assert np.array_equal(np.sort(after), np.sort(np.setdiff1d(first_ids, gone)))
    assert count(api, name) == SEG_ROWS * SEGMENTS - len(gone)


# -- delete / compact ------------------------------------------------------------------------------


def test_delete_leaves_no_holes_and_hides_ids(api: Any) -> None:
    name = unique_name("delete")
    ok(create(api, name, 16, L2))
    rng = np.random.default_rng(13)
    base = floats(rng, 500, 16)
    ids = np.arange(1000, 1500)
    insert_ok(api, name, base, ids)
    ok(flush(api, name))
    queries = base[[3, 250, 499]]
    near, _ = oracle(base, ids, queries, 20, L2)
    gone = np.unique(near)  # every near neighbour of every query, the query rows included
    # More rows, some deleted while still in the insert buffer.
    extra = floats(rng, 100, 16)
    extra_ids = np.arange(5000, 5100)
    insert_ok(api, name, extra, extra_ids)
    gone = np.concatenate([gone, extra_ids[:10]])
    ok(delete(api, name, gone))
    ok(flush(api, name))

    all_base, all_ids = np.concatenate([base, extra]), np.concatenate([ids, extra_ids])
    keep = ~np.isin(all_ids, gone)
    assert count(api, name) == int(keep.sum())
    st, got, dist = search(api, name, queries, 30)
    ok(st)
    assert got.shape == (3, 30) and (got != NO_ID).all(), "deleted rows must not leave holes"
    assert not np.isin(got, gone).any()
    assert_search_exact(got, dist, all_base[keep], all_ids[keep], queries, 30, L2)
    assert vectors_of(get_vectors(api, name, gone[:5]), binary=False) == [None] * 5

    # SearchByID: one row per requested id; a deleted id gives a row of holes.
    live_id = int(all_ids[keep][0])
    st, got, dist = search_by_id(api, name, [live_id, int(gone[0])], 7)
    ok(st)
    assert got.shape == (2, 7)
    ref = oracle(all_base[keep], all_ids[keep], all_base[all_ids == live_id], 7, L2)
    assert_topk_matches(got[:1], dist[:1], *ref)
    assert (got[1] == NO_ID).all()
    # When no requested id exists, the reply still has one (empty) row per id.
    st, got, dist = search_by_id(api, name, [int(gone[0]), int(gone[1])], 7)
    ok(st)
    assert got.shape == (2, 7) and (got == NO_ID).all()
    # Deleting ids that do not exist is not an error.
    ok(delete(api, name, [123456789, 5]))


def test_delete_by_partition_tag_of_unknown_partition(api: Any) -> None:
    name = unique_name("delpart")
    ok(create(api, name, 4, L2))
    reply = delete(api, name, [1], tag="nope")
    assert_status(reply, UNEXPECTED_ERROR, f"Partition nope of collection {name} not found")


def test_compact_rewrites_segments_with_many_deletes(api: Any) -> None:
    name = unique_name("compact")
    ok(create(api, name, 32, L2))
    rng = np.random.default_rng(14)
    base = floats(rng, 1000, 32)
    ids = np.arange(1000)
    insert_ok(api, name, base, ids)
    ok(flush(api, name))
    [before] = segments(api, name)
    assert before["row_count"] == 1000
    gone = rng.choice(ids, 200, replace=False)  # 20 % > 10 % threshold
    ok(delete(api, name, gone))
    ok(flush(api, name))
    [deleted] = segments(api, name)
    assert (deleted["name"], deleted["row_count"], deleted["data_size"]) == (before["name"], 800, before["data_size"])
    queries = floats(rng, 4, 32)
    st, ids_before, dist_before = search(api, name, queries, 15)
    ok(st)

    assert_status(api.Compact(cname(name)), SUCCESS, "OK")
    [after] = segments(api, name)
    assert after["name"] != before["name"]
    assert after["row_count"] == 800
    assert after["data_size"] < before["data_size"]
    assert count(api, name) == 800
    st, ids_after, dist_after = search(api, name, queries, 15)
    ok(st)
    np.testing.assert_array_equal(ids_after, ids_before)
    np.testing.assert_array_equal(dist_after, dist_before)
    keep = ~np.isin(ids, gone)
    assert_search_exact(ids_after, dist_after, base[keep], ids[keep], queries, 15, L2)
    live = segment_ids(api, name)[after["name"]]
    assert np.array_equal(np.sort(live), ids[keep])


def test_compact_below_threshold_keeps_segment(api: Any) -> None:
    name = unique_name("compactlow")
    ok(create(api, name, 32, L2))
    rng = np.random.default_rng(15)
    insert_ok(api, name, floats(rng, 1000, 32), np.arange(1000))
    ok(flush(api, name))
    ok(delete(api, name, np.arange(0, 1000, 20)))  # 5 %
    ok(flush(api, name))
    [before] = segments(api, name)
    ok(api.Compact(cname(name)))
    [after] = segments(api, name)
    assert after == before
    assert after["row_count"] == 950
