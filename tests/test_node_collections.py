"""MilvusService RPCs of collections, partitions, the cache, Cmd and methods outside the 1.1 proto, against a
real node process, checked against the Milvus 1.1 contract (search results against an exact oracle)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.node_rpcs import (
    UNEXPECTED_ERROR,
    cname,
    floats,
    not_found,
    partition,
    vectors_of,
)
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    IP,
    L2,
    SUCCESS,
    TimedStub,
    assert_search_exact,
    assert_status,
    cmd,
    count,
    create,
    delete,
    flush,
    get_vectors,
    info,
    insert_ok,
    ok,
    search,
    segments,
    unique_name,
)

COLLECTION_NOT_EXISTS = 4


@pytest.fixture
def api(stub: Any) -> TimedStub:
    return TimedStub(stub)




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
