"""Every MilvusService RPC against a real node process, checked against the Milvus 1.1 contract.

Search results are compared with an exact numpy oracle (tests/support/requests.py). Collections that
need several segments use ``index_file_size`` 1 MB and batches of a bit more than half a megabyte,
so each flush makes one segment and no two segments are small enough to be merged in background.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    BINARY_METRICS,
    IP,
    JACCARD,
    L2,
    METRIC_NAMES,
    NO_ID,
    SUBSTRUCTURE,
    SUCCESS,
    SUPERSTRUCTURE,
    TimedStub,
    assert_search_exact,
    assert_status,
    assert_topk_matches,
    cmd,
    count,
    create,
    delete,
    flush,
    get_vectors,
    info,
    insert,
    insert_ok,
    merge_topk,
    ok,
    oracle,
    search,
    search_by_id,
    search_in_files,
    segments,
    unique_name,
)
from tests.support.waiting import poll_for

UNEXPECTED_ERROR = 1
COLLECTION_NOT_EXISTS = 4
ILLEGAL_ARGUMENT = 5
ILLEGAL_VECTOR_ID = 12

# Sizing of the multi-segment collections: 1 KiB rows, 1 MiB segments, 600 rows per flush.
FLOAT_DIM = 256
BINARY_DIM = 8192
SEG_ROWS = 600
SEGMENTS = 3
TOPK = 10


def not_found(name: str) -> str:
    return (
        f"Collection {name} does not exist. Use milvus.has_collection to verify whether the collection "
        "exists. You also can check whether the collection name exists."
    )


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


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def partition(name: str, tag: str) -> Any:
    return milvus_pb2.PartitionParam(collection_name=name, tag=tag)


def floats(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.random((n, dim), dtype=np.float32)


@dataclass(frozen=True)
class Filled:
    """A filled collection: its name, rows and ids in insertion order, and (binary) row families."""

    name: str
    base: np.ndarray
    ids: np.ndarray
    patterns: np.ndarray  # (families, bytes) packed bits; empty for float collections
    family: np.ndarray  # family of each row of ``base``


def binary_families(rng: np.random.Generator, rows: int, per_family: int,
                    dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed bit rows in families, shuffled: a row of family f is ``pattern[f] | noise`` (sparse bits).

    So exactly the rows of family f contain ``pattern[f]``, and exactly they are contained in the OR
    of family f's rows. Returns (rows, patterns, family of each row).
    """
    families = rows // per_family
    patterns = rng.random((families, dim)) < 0.02
    noise = rng.random((rows, dim)) < 0.02
    family = np.repeat(np.arange(families), per_family)[rng.permutation(rows)]
    bits = patterns[family] | noise
    return np.packbits(bits, axis=1), np.packbits(patterns, axis=1), family


def vectors_of(reply: Any, binary: bool) -> list[np.ndarray | None]:
    """The vectors of a GetVectorsByID reply; None for an empty RowRecord (id not found)."""
    out: list[np.ndarray | None] = []
    for rec in ok(reply).vectors_data:
        if binary:
            out.append(np.frombuffer(rec.binary_data, dtype=np.uint8) if rec.binary_data else None)
        else:
            out.append(np.array(rec.float_data, dtype=np.float32) if len(rec.float_data) else None)
    return out


def segment_ids(api: Any, name: str) -> dict[str, np.ndarray]:
    """Live ids of every segment (by segment name), through GetVectorIDs."""
    out: dict[str, np.ndarray] = {}
    for seg in segments(api, name):
        reply = ok(api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=name, segment_name=seg["name"])))
        out[seg["name"]] = np.array(reply.vector_id_array, dtype=np.int64)
    return out


def discover_file_ids(api: Any, name: str, query: np.ndarray, expected: int, limit: int = 5000) -> list[int]:
    """Numeric file ids of a collection's segments: SearchInFiles accepts exactly those."""
    found: list[int] = []
    for candidate in range(1, limit + 1):
        st, _, _ = search_in_files(api, name, [candidate], query, 1)
        if st.error_code == SUCCESS:
            found.append(candidate)
            if len(found) == expected:
                return found
        else:
            assert (st.error_code, st.reason) == (UNEXPECTED_ERROR, "Invalid file id")
    raise AssertionError(f"found file ids {found}, expected {expected} of them")


def multi_segment_collection(api: Any, metric: int, rng: np.random.Generator) -> Filled:
    """A collection of SEGMENTS flushed segments."""
    name = unique_name(METRIC_NAMES[metric].lower())
    binary = metric in BINARY_METRICS
    ok(create(api, name, BINARY_DIM if binary else FLOAT_DIM, metric, ifs=1))
    total = SEG_ROWS * SEGMENTS
    if binary:
        base, patterns, family = binary_families(rng, total, 6, BINARY_DIM)
    else:
        base, patterns, family = floats(rng, total, FLOAT_DIM), np.zeros((0, 0), np.uint8), np.zeros(total, int)
    ids = []
    for start in range(0, total, SEG_ROWS):
        ids.append(insert_ok(api, name, base[start : start + SEG_ROWS]))
        ok(flush(api, name))
    return Filled(name, base, np.concatenate(ids), patterns, family)


# -- collections -----------------------------------------------------------------------------------


def test_collection_lifecycle_and_immediate_recreate(api: Any) -> None:
    name = unique_name("life")
    assert_status(create(api, name, 8, L2, ifs=16), SUCCESS, "OK")
    assert ok(api.HasCollection(cname(name))).bool_reply is True
    desc = ok(api.DescribeCollection(cname(name)))
    assert (desc.collection_name, desc.dimension, desc.index_file_size, desc.metric_type) == (name, 8, 16, L2)
    assert count(api, name) == 0
    assert name in ok(api.ShowCollections(milvus_pb2.Command(cmd="show_collections"))).collection_names
    reply = ok(api.ShowCollectionInfo(cname(name)))
    assert reply.json_info == '{"partitions":[{"row_count":0,"segments":null,"tag":"_default"}],"row_count":0}'

    insert_ok(api, name, floats(np.random.default_rng(1), 20, 8))
    ok(flush(api, name))
    assert count(api, name) == 20
    insert_ok(api, name, floats(np.random.default_rng(1), 7, 8))  # maybe still buffered when dropped
    ok(api.DropCollection(cname(name)))
    assert ok(api.HasCollection(cname(name))).bool_reply is False
    assert name not in ok(api.ShowCollections(milvus_pb2.Command())).collection_names

    # Milvus 1.1 refuses this for a while ("in delete state"); the node allows it at once.
    ok(create(api, name, 16, IP))
    desc = ok(api.DescribeCollection(cname(name)))
    assert (desc.dimension, desc.metric_type, desc.index_file_size) == (16, IP, 1024)
    assert count(api, name) == 0
    fresh = floats(np.random.default_rng(2), 5, 16)
    ids = insert_ok(api, name, fresh)
    ok(flush(api, name))
    assert count(api, name) == 5
    st, got, _ = search(api, name, fresh[:1], 10)
    ok(st)
    assert sorted(got[0].tolist()) == sorted(ids.tolist())


def test_collection_info_json_shape(api: Any) -> None:
    name = unique_name("info")
    ok(create(api, name, 8, L2))
    ok(api.CreatePartition(partition(name, "p1")))
    ok(api.CreatePartition(partition(name, "p2")))
    rng = np.random.default_rng(3)
    insert_ok(api, name, floats(rng, 30, 8))
    insert_ok(api, name, floats(rng, 12, 8), tag="p2")
    ok(flush(api, name))
    text = ok(api.ShowCollectionInfo(cname(name))).json_info
    parsed = json.loads(text)
    assert text == json.dumps(parsed, separators=(",", ":"), sort_keys=True), "keys not sorted or not compact"
    assert list(parsed) == ["partitions", "row_count"]
    assert parsed["row_count"] == 42
    default, p1, p2 = parsed["partitions"]
    assert p1 == {"row_count": 0, "segments": None, "tag": "p1"}
    assert (default["tag"], default["row_count"], p2["tag"], p2["row_count"]) == ("_default", 30, "p2", 12)
    for part in (default, p2):
        assert list(part) == ["row_count", "segments", "tag"]
        assert len(part["segments"]) == 1
        seg = part["segments"][0]
        assert list(seg) == ["data_size", "index_name", "name", "row_count"]
        assert seg["index_name"] == "IDMAP"
        assert seg["row_count"] == part["row_count"]
        assert isinstance(seg["data_size"], int) and seg["data_size"] >= seg["row_count"] * 8 * 4
        assert seg["name"].isdigit()


# -- partitions ------------------------------------------------------------------------------------


def test_partition_lifecycle(api: Any) -> None:
    name = unique_name("parts")
    ok(create(api, name, 4, L2))
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default"]
    for tag in ("zeta", "alpha"):
        assert_status(api.CreatePartition(partition(name, tag)), SUCCESS, "OK")
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default", "zeta", "alpha"]
    for tag, expected in (("_default", True), ("zeta", True), ("alpha", True), ("beta", False)):
        assert ok(api.HasPartition(partition(name, tag))).bool_reply is expected, tag
    ok(api.DropPartition(partition(name, "zeta")))
    assert ok(api.HasPartition(partition(name, "zeta"))).bool_reply is False
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default", "alpha"]
    # A dropped tag can be created again, empty.
    ok(api.CreatePartition(partition(name, "zeta")))
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default", "alpha", "zeta"]

    # Dropping a partition drops its rows, flushed or not.
    rng = np.random.default_rng(22)
    insert_ok(api, name, floats(rng, 5, 4), tag="alpha")
    insert_ok(api, name, floats(rng, 3, 4))
    ok(flush(api, name))
    insert_ok(api, name, floats(rng, 4, 4), tag="alpha")
    insert_ok(api, name, floats(rng, 2, 4), tag="zeta")
    ok(api.DropPartition(partition(name, "alpha")))
    ok(flush(api, name))
    assert count(api, name) == 5
    assert [(p["tag"], p["row_count"]) for p in info(api, name)["partitions"]] == [("_default", 3), ("zeta", 2)]
    ok(api.CreatePartition(partition(name, "alpha")))
    ok(flush(api, name))
    assert [(p["tag"], p["row_count"]) for p in info(api, name)["partitions"]] == [
        ("_default", 3), ("zeta", 2), ("alpha", 0)
    ]


def test_partitions_insert_search_get_delete(api: Any) -> None:
    name = unique_name("ptags")
    ok(create(api, name, 8, L2))
    rng = np.random.default_rng(4)
    groups = {"_default": 0, "pa": 100, "pb": 200, "xa": 300}
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tag, first in groups.items():
        if tag != "_default":
            ok(api.CreatePartition(partition(name, tag)))
        vecs, ids = floats(rng, 10, 8), np.arange(first, first + 10)
        assert insert_ok(api, name, vecs, ids, tag="" if tag == "_default" else tag).tolist() == ids.tolist()
        data[tag] = (vecs, ids)
    ok(flush(api, name))
    assert count(api, name) == 40
    assert [p["row_count"] for p in info(api, name)["partitions"]] == [10, 10, 10, 10]

    queries = floats(rng, 3, 8)

    def check(tags: list[str], selected: list[str]) -> None:
        base = np.concatenate([data[t][0] for t in selected])
        ids = np.concatenate([data[t][1] for t in selected])
        st, got, dist = search(api, name, queries, 5, tags=tags)
        ok(st)
        assert_search_exact(got, dist, base, ids, queries, 5, L2)

    check([], list(groups))
    check(["pa"], ["pa"])
    check(["p."], ["pa", "pb"])  # tags are regexes...
    check([".a"], ["pa", "xa"])
    check(["_default"], ["_default"])
    check(["pa", "_default"], ["_default", "pa"])
    # ...that must match the whole tag.
    for tags in (["a"], ["p"], ["nope"]):
        st, _, _ = search(api, name, queries, 5, tags=tags)
        assert_status(st, UNEXPECTED_ERROR, "The specified partition does not exist")

    got = get_vectors(api, name, [5, 105, 205], tag="pa")
    found = [v is not None for v in vectors_of(got, binary=False)]
    assert found == [False, True, False]
    np.testing.assert_array_equal(vectors_of(got, binary=False)[1], data["pa"][0][5])

    # The same user id in two partitions: a delete restricted to one tag leaves the other.
    twin = floats(rng, 1, 8)
    insert_ok(api, name, twin, [555])
    insert_ok(api, name, twin, [555], tag="pa")
    ok(flush(api, name))
    ok(delete(api, name, [555], tag="pa"))
    ok(flush(api, name))
    assert count(api, name) == 41
    assert vectors_of(get_vectors(api, name, [555], tag="pa"), binary=False) == [None]
    kept = vectors_of(get_vectors(api, name, [555]), binary=False)[0]
    assert kept is not None
    np.testing.assert_array_equal(kept, twin[0])
    st, got_ids, _ = search(api, name, twin, 40, tags=["pa"])
    ok(st)
    assert 555 not in got_ids
    st, got_ids, _ = search(api, name, twin, 1, tags=["_default"])
    ok(st)
    assert got_ids.tolist() == [[555]]


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


# -- search ----------------------------------------------------------------------------------------


def metric_queries(metric: int, filled: Filled, rng: np.random.Generator) -> np.ndarray:
    """Six queries with real matches for the metric; for the structure metrics the fifth has none."""
    base = filled.base
    if metric not in BINARY_METRICS:
        return np.concatenate([floats(rng, 4, FLOAT_DIM), base[[7, 1234]]])
    nbytes = BINARY_DIM // 8
    picked = rng.choice(filled.patterns.shape[0], 4, replace=False)
    patterns = filled.patterns[picked]
    ors = np.stack([np.bitwise_or.reduce(base[filled.family == f], axis=0) for f in picked])
    if metric == SUBSTRUCTURE:  # rows containing the query: a family's rows contain its pattern
        return np.concatenate([patterns, np.full((1, nbytes), 255, np.uint8), base[[11]]])
    if metric == SUPERSTRUCTURE:  # rows contained in the query: a family's rows are in their OR
        return np.concatenate([ors, np.zeros((1, nbytes), np.uint8), base[[11]]])
    return np.concatenate([ors[:2], patterns[:2], base[[11, 1500]]])


@pytest.mark.parametrize("metric", sorted(METRIC_NAMES), ids=lambda m: METRIC_NAMES[m])
def test_search_all_metrics_match_exact_oracle(api: Any, metric: int) -> None:
    rng = np.random.default_rng(100 + metric)
    filled = multi_segment_collection(api, metric, rng)
    name, base, ids = filled.name, filled.base, filled.ids
    assert len(segments(api, name)) == SEGMENTS
    assert count(api, name) == SEG_ROWS * SEGMENTS
    queries = metric_queries(metric, filled, rng)
    ref_ids, ref_dist = oracle(base, ids, queries, TOPK, metric)
    if metric in (SUBSTRUCTURE, SUPERSTRUCTURE):
        # Each family query matches its 6 rows (fewer than topk: padded with -1), the fifth none.
        matches = (ref_ids != NO_ID).sum(axis=1)
        assert (matches[:4] >= 6).all() and (matches[:4] < TOPK).all(), matches
        assert matches[4] == 0 and matches[5] >= 1, matches

    st, got, dist = search(api, name, queries, TOPK)
    ok(st)
    assert got.shape == (len(queries), TOPK)
    assert_topk_matches(got, dist, ref_ids, ref_dist)

    # SearchByID: the stored vectors of the ids are the queries.
    picked = ids[[0, 599, 600, 1799]]
    st, got, dist = search_by_id(api, name, picked, TOPK)
    ok(st)
    assert_search_exact(got, dist, base, ids, base[[0, 599, 600, 1799]], TOPK, metric)

    # SearchInFiles: the union over every segment, merged here, equals Search.
    file_ids = discover_file_ids(api, name, queries[:1], SEGMENTS)
    parts = []
    for file_id in file_ids:
        st, got, dist = search_in_files(api, name, [file_id], queries, TOPK)
        ok(st)
        assert got.shape == (len(queries), TOPK)
        parts.append((got, dist))
    assert_topk_matches(*merge_topk(parts, TOPK, metric), ref_ids, ref_dist)
    st, got, dist = search_in_files(api, name, file_ids, queries, TOPK)
    ok(st)
    assert_topk_matches(got, dist, ref_ids, ref_dist)


def test_result_width_is_limited_by_live_rows(api: Any) -> None:
    name = unique_name("narrow")
    ok(create(api, name, 8, IP))
    rng = np.random.default_rng(16)
    base = floats(rng, 5, 8)
    ids = insert_ok(api, name, base)
    ok(flush(api, name))
    queries = floats(rng, 3, 8)
    st, got, dist = search(api, name, queries, 10)
    ok(st)
    assert got.shape == (3, 5) and (got != NO_ID).all()
    assert_search_exact(got, dist, base, ids, queries, 10, IP)
    assert (np.diff(dist, axis=1) <= 0).all(), "IP results are ordered by descending similarity"

    ok(delete(api, name, ids[:2]))
    ok(flush(api, name))
    st, got, dist = search(api, name, queries, 10)
    ok(st)
    assert got.shape == (3, 3) and (got != NO_ID).all()
    assert_search_exact(got, dist, base[2:], ids[2:], queries, 10, IP)

    ok(delete(api, name, ids[2:]))
    ok(flush(api, name))
    assert count(api, name) == 0
    reply = api.Search(milvus_pb2.SearchParam(
        collection_name=name, query_record_array=[milvus_pb2.RowRecord(float_data=queries[0].tolist())], topk=10,
    ))
    assert_status(reply, SUCCESS, "OK")
    assert (reply.row_num, len(reply.ids), len(reply.distances)) == (0, 0, 0)


def test_search_of_empty_collection_has_no_rows(api: Any) -> None:
    name = unique_name("emptysearch")
    ok(create(api, name, 8, L2))
    st, got, _ = search(api, name, floats(np.random.default_rng(17), 2, 8), 3)
    assert_status(st, SUCCESS, "OK")
    assert got.shape == (0, 0)


# -- indexes ---------------------------------------------------------------------------------------


def test_describe_index_and_ivf_flat_requires_nprobe(api: Any) -> None:
    name = unique_name("index")
    ok(create(api, name, 16, L2))
    desc = ok(api.DescribeIndex(cname(name)))
    assert (desc.collection_name, desc.index_type) == (name, 1)
    assert [(kv.key, kv.value) for kv in desc.extra_params] == [("params", "{}")]

    rng = np.random.default_rng(18)
    base = floats(rng, 200, 16)
    ids = insert_ok(api, name, base)
    ok(flush(api, name))
    index = milvus_pb2.IndexParam(
        collection_name=name, index_type=2, extra_params=[milvus_pb2.KeyValuePair(key="params", value='{"nlist": 16}')]
    )
    assert_status(api.CreateIndex(index), SUCCESS, "OK")
    desc = ok(api.DescribeIndex(cname(name)))
    assert desc.index_type == 2
    assert desc.extra_params[0].key == "params"
    assert json.loads(desc.extra_params[0].value) == {"nlist": 16}

    queries = floats(rng, 3, 16)
    st, _, _ = search(api, name, queries, 5)
    assert_status(st, ILLEGAL_ARGUMENT, "Parameter list must contain: nprobe")
    st, _, _ = search(api, name, queries, 5, params={"nprobe": 0})
    assert_status(st, ILLEGAL_ARGUMENT, "Invalid nprobe value: 0. Valid range is [1, 65536]")
    st, got, dist = search(api, name, queries, 5, params={"nprobe": 4})
    ok(st)
    assert_search_exact(got, dist, base, ids, queries, 5, L2)

    # A segment flushed after the index was set carries the index's name.
    insert_ok(api, name, floats(rng, 10, 16))
    ok(flush(api, name))
    assert "IVFFLAT" in [seg["index_name"] for seg in segments(api, name)]

    ok(api.DropIndex(cname(name)))
    desc = ok(api.DescribeIndex(cname(name)))
    assert desc.index_type == 1
    assert [(kv.key, kv.value) for kv in desc.extra_params] == [("params", "{}")]
    ok(search(api, name, queries, 5)[0])


# -- cache operations ------------------------------------------------------------------------------


def test_preload_release_reload(api: Any) -> None:
    name = unique_name("cache")
    ok(create(api, name, 8, L2))
    ok(api.CreatePartition(partition(name, "p")))
    rng = np.random.default_rng(19)
    base = floats(rng, 50, 8)
    ids = insert_ok(api, name, base)
    ok(flush(api, name))
    for tags in ([], ["p"], ["_default", "p"]):
        param = milvus_pb2.PreloadCollectionParam(collection_name=name, partition_tag_array=tags)
        assert_status(api.PreloadCollection(param), SUCCESS, "OK")
        assert_status(api.ReleaseCollection(param), SUCCESS, "OK")
    bad_tag = milvus_pb2.PreloadCollectionParam(collection_name=name, partition_tag_array=["nope"])
    assert_status(api.PreloadCollection(bad_tag), UNEXPECTED_ERROR, "The specified partition does not exist")
    seg_names = [s["name"] for s in segments(api, name)]
    reload = milvus_pb2.ReLoadSegmentsParam(collection_name=name, segment_id_array=seg_names)
    assert_status(api.ReloadSegments(reload), SUCCESS, "OK")
    ok(api.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=name)))
    st, got, dist = search(api, name, base[:2], 3)
    ok(st)
    assert_search_exact(got, dist, base, ids, base[:2], 3, L2)

    missing = unique_name("missing")
    for reply in (
        api.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name=missing)),
        api.ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name=missing)),
        api.ReloadSegments(milvus_pb2.ReLoadSegmentsParam(collection_name=missing, segment_id_array=["1"])),
    ):
        assert_status(reply, COLLECTION_NOT_EXISTS, not_found(missing))


# -- Cmd -------------------------------------------------------------------------------------------


def test_cmd_strings(api: Any) -> None:
    assert assert_status(cmd(api, "version"), SUCCESS, "OK").string_reply == "1.1.1"
    assert ok(cmd(api, "status")).string_reply == "OK"
    assert ok(cmd(api, "mode")).string_reply == "CPU"
    assert ok(cmd(api, "get_config cache.cache_size")).string_reply == "4GB"
    assert_status(cmd(api, "get_config bad.node"), UNEXPECTED_ERROR, "Config node invalid: bad.node")
    assert_status(cmd(api, "set_config bad.node 1"), UNEXPECTED_ERROR, "Config node invalid: bad.node")
    reply = assert_status(cmd(api, "no such command"), SUCCESS, "OK")
    assert reply.string_reply == "Unknown command"
    assert ok(cmd(api, "Version")).string_reply == "Unknown command"  # matched exactly


def test_set_config_then_get_config(api: Any) -> None:
    assert ok(cmd(api, "get_config storage.auto_flush_interval")).string_reply == "1"
    try:
        assert assert_status(cmd(api, "set_config storage.auto_flush_interval 3"), SUCCESS, "OK").string_reply == ""
        assert ok(cmd(api, "get_config storage.auto_flush_interval")).string_reply == "3"
    finally:
        ok(cmd(api, "set_config storage.auto_flush_interval 1"))
    assert ok(cmd(api, "get_config storage.auto_flush_interval")).string_reply == "1"


# -- hybrid RPCs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["HybridSearchPB", "SearchPB", "NoSuchMethod"])
def test_methods_outside_the_1_1_proto_are_unimplemented(node: NodeProcess, api: Any, method: str) -> None:
    """pymilvus 0.2.13/0.2.14's HybridSearchPB and 0.11's methods are not in Milvus 1.1's service: gRPC
    UNIMPLEMENTED, as a 1.1 server answers them."""
    with grpc.insecure_channel(node.address) as channel:
        call = channel.unary_unary(f"/milvus.grpc.MilvusService/{method}", request_serializer=None,
                                   response_deserializer=None)
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=30)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert ok(cmd(api, "version")).string_reply == "1.1.1"


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
