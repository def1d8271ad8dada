"""Bad and hostile requests against a real node: exact Milvus 1.1 status codes and reasons.

Every RPC must answer with gRPC status OK and an in-band error status (protocol notes §10), and the
node must keep answering afterwards: an autouse fixture asks for its version after every test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.nodeproc import CHANNEL_OPTIONS, NodeProcess
from tests.support.requests import (
    HAMMING,
    L2,
    SUCCESS,
    TIMEOUT,
    TimedStub,
    assert_status,
    cmd,
    count,
    create,
    delete,
    extra_params,
    flush,
    get_vectors,
    insert,
    insert_ok,
    ok,
    search,
    search_by_id,
    search_in_files,
    segments,
    status_of,
    unique_name,
)
from tests.support.waiting import poll_for

UNEXPECTED_ERROR = 1
COLLECTION_NOT_EXISTS = 4
ILLEGAL_ARGUMENT = 5
ILLEGAL_DIMENSION = 7
ILLEGAL_INDEX_TYPE = 8
ILLEGAL_COLLECTION_NAME = 9
ILLEGAL_TOPK = 10
ILLEGAL_ROWRECORD = 11
ILLEGAL_VECTOR_ID = 12
ILLEGAL_METRIC_TYPE = 23

DIM = 8
EMPTY_VECTORS = "The vector array is empty. Make sure you have entered vector records."
WRONG_DIMENSION = "The vector dimension must be equal to the collection dimension."
EMPTY_TAG = "Invalid partition tag: . Partition tag should not be empty."
NO_PARTITION = "The specified partition does not exist"
HOSTILE_NAMES = {
    "empty": ("", "Collection name should not be empty."),
    "dotdot": ("../x", "Invalid collection name: ../x. "
               "The first character of a collection name must be an underscore or letter."),
    "slash": ("a/b", "Invalid collection name: a/b. "
              "Collection name can only contain numbers, letters, and underscores."),
    "long": ("a" * 300, f"Invalid collection name: {'a' * 300}. "
             "The length of a collection name must be less than 255 characters."),
    "digit": ("1x", "Invalid collection name: 1x. "
              "The first character of a collection name must be an underscore or letter."),
    "unicode": ("naïve", "Invalid collection name: naïve. "
                "Collection name can only contain numbers, letters, and underscores."),
}


def not_found(name: str) -> str:
    return (
        f"Collection {name} does not exist. Use milvus.has_collection to verify whether the collection "
        "exists. You also can check whether the collection name exists."
    )


def topk_reason(k: int) -> str:
    return f"Invalid topk: {k}. The topk must be within the range of 1 ~ 1048576."


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def partition(name: str, tag: str) -> Any:
    return milvus_pb2.PartitionParam(collection_name=name, tag=tag)


def one_query(dim: int = DIM) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=[0.5] * dim)]


def named_requests(name: str) -> dict[str, Any]:
    """A request of every RPC that takes a collection name, valid apart from the name."""
    query = milvus_pb2.SearchParam(collection_name=name, query_record_array=one_query(), topk=1)
    return {
        "CreateCollection": milvus_pb2.CollectionSchema(
            collection_name=name, dimension=DIM, index_file_size=1024, metric_type=L2
        ),
        "HasCollection": cname(name),
        "DescribeCollection": cname(name),
        "CountCollection": cname(name),
        "ShowCollectionInfo": cname(name),
        "DropCollection": cname(name),
        "CreateIndex": milvus_pb2.IndexParam(collection_name=name, index_type=1, extra_params=extra_params({})),
        "DescribeIndex": cname(name),
        "DropIndex": cname(name),
        "CreatePartition": partition(name, "p"),
        "HasPartition": partition(name, "p"),
        "ShowPartitions": cname(name),
        "DropPartition": partition(name, "p"),
        "Insert": milvus_pb2.InsertParam(collection_name=name, row_record_array=one_query()),
        "GetVectorsByID": milvus_pb2.VectorsIdentity(collection_name=name, id_array=[1]),
        "GetVectorIDs": milvus_pb2.GetVectorIDsParam(collection_name=name, segment_name="1"),
        "Search": query,
        "SearchByID": milvus_pb2.SearchByIDParam(collection_name=name, id_array=[1], topk=1),
        "SearchInFiles": milvus_pb2.SearchInFilesParam(file_id_array=["1"], search_param=query),
        "DeleteByID": milvus_pb2.DeleteByIDParam(collection_name=name, id_array=[1]),
        "PreloadCollection": milvus_pb2.PreloadCollectionParam(collection_name=name),
        "ReleaseCollection": milvus_pb2.PreloadCollectionParam(collection_name=name),
        "ReloadSegments": milvus_pb2.ReLoadSegmentsParam(collection_name=name, segment_id_array=["1"]),
        "Flush": milvus_pb2.FlushParam(collection_name_array=[name]),
        "Compact": cname(name),
    }


NAMED_RPCS = sorted(named_requests("x"))
SERVED_RPCS = [m.name for m in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods]  # every one


@pytest.fixture(scope="module")
def mod_api(node: NodeProcess) -> TimedStub:
    return TimedStub(node.stub())


@pytest.fixture
def api(mod_api: TimedStub) -> TimedStub:
    return mod_api


@pytest.fixture(autouse=True)
def node_still_answers(node: NodeProcess) -> Iterator[None]:
    """After every test: the node is alive and answers promptly."""
    yield
    reply = node.stub().Cmd(milvus_pb2.Command(cmd="version"), timeout=10)
    assert (reply.status.error_code, reply.string_reply) == (SUCCESS, "1.1.1")
    assert node.proc is not None and node.proc.poll() is None, "node exited"


@pytest.fixture(scope="module")
def raw_channel(node: NodeProcess) -> Iterator[grpc.Channel]:
    """A channel for requests given as raw bytes (hand-made wire encodings)."""
    channel = grpc.insecure_channel(node.address, options=CHANNEL_OPTIONS)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture(scope="module")
def floats_coll(mod_api: TimedStub) -> str:
    """A float L2 collection of dimension 8 with 20 flushed rows (auto ids) and partition ``p1``."""
    name = unique_name("badf")
    ok(create(mod_api, name, DIM, L2))
    ok(mod_api.CreatePartition(partition(name, "p1")))
    insert_ok(mod_api, name, np.random.default_rng(1).random((20, DIM), dtype=np.float32))
    ok(flush(mod_api, name))
    return name


@pytest.fixture(scope="module")
def binary_coll(mod_api: TimedStub) -> str:
    """A binary HAMMING collection of dimension 16 (2 bytes per vector) with 10 flushed rows."""
    name = unique_name("badb")
    ok(create(mod_api, name, 16, HAMMING))
    insert_ok(mod_api, name, np.random.default_rng(2).integers(0, 256, (10, 2), dtype=np.uint8))
    ok(flush(mod_api, name))
    return name


def new_collection(api: Any, dim: int = DIM, metric: int = L2) -> str:
    name = unique_name("bad")
    ok(create(api, name, dim, metric))
    return name


def raw_call(channel: grpc.Channel, rpc: str, payload: bytes, reply_type: Any) -> Any:
    method = channel.unary_unary(
        f"/milvus.grpc.MilvusService/{rpc}", request_serializer=None, response_deserializer=reply_type.FromString
    )
    return method(payload, timeout=TIMEOUT)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc", NAMED_RPCS)
@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
def test_hostile_collection_names_are_refused(api: Any, rpc: str, case: str) -> None:
    name, reason = HOSTILE_NAMES[case]
    reply = getattr(api, rpc)(named_requests(name)[rpc])
    assert_status(reply, ILLEGAL_COLLECTION_NAME, reason)


def hostile_parts(root: Any) -> list[str]:
    """Paths under ``root`` with a component that a hostile name could have produced."""
    parts = {"x", "a", "b", "..", *(name for name, _ in HOSTILE_NAMES.values() if name)}
    return [str(p) for p in root.rglob("*") if parts & set(p.relative_to(root).parts)]


def test_hostile_names_leave_no_trace(api: Any, node: NodeProcess) -> None:
    outside = sorted(p.name for p in node.workdir.parent.iterdir())
    for name, _ in HOSTILE_NAMES.values():
        ok(flush(api))
        assert status_of(create(api, name, DIM, L2)).error_code == ILLEGAL_COLLECTION_NAME
        assert status_of(api.Insert(named_requests(name)["Insert"])).error_code == ILLEGAL_COLLECTION_NAME
    names = ok(api.ShowCollections(milvus_pb2.Command())).collection_names
    assert not [n for n, _ in HOSTILE_NAMES.values() if n in names]
    assert sorted(p.name for p in node.workdir.parent.iterdir()) == outside
    assert hostile_parts(node.workdir) == []


@pytest.mark.parametrize("rpc", [r for r in NAMED_RPCS if r not in ("CreateCollection", "HasCollection")])
def test_missing_collection(api: Any, rpc: str) -> None:
    name = unique_name("missing")
    assert_status(getattr(api, rpc)(named_requests(name)[rpc]), COLLECTION_NOT_EXISTS, not_found(name))
    assert ok(api.HasCollection(cname(name))).bool_reply is False


def test_collection_name_of_255_characters_is_allowed(api: Any) -> None:
    name = "n" * 255
    assert_status(create(api, name, DIM, L2), SUCCESS, "OK")
    assert ok(api.HasCollection(cname(name))).bool_reply is True
    ok(api.DropCollection(cname(name)))
    assert_status(create(api, "n" * 256, DIM, L2), ILLEGAL_COLLECTION_NAME, HOSTILE_NAMES["long"][1].replace(
        "a" * 300, "n" * 256))


@pytest.mark.parametrize("rpc", SERVED_RPCS)
def test_empty_request_of_every_rpc(api: Any, rpc: str) -> None:
    method = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods_by_name[rpc]
    reply = getattr(api, rpc)(getattr(milvus_pb2, method.input_type.name)())
    if rpc == "Cmd":
        assert assert_status(reply, SUCCESS, "OK").string_reply == "Unknown command"
    elif rpc in ("ShowCollections", "ShowHybridCollections", "Flush"):  # no name needed: list / flush everything
        assert_status(reply, SUCCESS, "OK")
    else:
        assert_status(reply, ILLEGAL_COLLECTION_NAME, "Collection name should not be empty.")


# -- collections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dim", "ifs", "metric", "code", "reason"),
    [
        (0, 1024, L2, ILLEGAL_DIMENSION,
         "Invalid collection dimension: 0. The collection dimension must be within the range of 1 ~ 32768."),
        (-1, 1024, L2, ILLEGAL_DIMENSION,
         "Invalid collection dimension: -1. The collection dimension must be within the range of 1 ~ 32768."),
        (32769, 1024, L2, ILLEGAL_DIMENSION,
         "Invalid collection dimension: 32769. The collection dimension must be within the range of 1 ~ 32768."),
        (2**40, 1024, L2, ILLEGAL_DIMENSION, f"Invalid collection dimension: {2**40}. "
         "The collection dimension must be within the range of 1 ~ 32768."),
        (12, 1024, HAMMING, ILLEGAL_DIMENSION,
         "Invalid collection dimension: 12. The collection dimension must be a multiple of 8"),
        (8, 0, L2, ILLEGAL_ARGUMENT,
         "Invalid index file size: 0. The index file size must be within the range of 1 ~ 4096."),
        (8, 4097, L2, ILLEGAL_ARGUMENT,
         "Invalid index file size: 4097. The index file size must be within the range of 1 ~ 4096."),
        (8, -3, L2, ILLEGAL_ARGUMENT,
         "Invalid index file size: -3. The index file size must be within the range of 1 ~ 4096."),
        (8, 1024, 0, ILLEGAL_METRIC_TYPE,
         "Invalid index metric type: 0. Make sure the metric type is in MetricType list."),
        (8, 1024, 8, ILLEGAL_METRIC_TYPE,
         "Invalid index metric type: 8. Make sure the metric type is in MetricType list."),
        (8, 1024, -1, ILLEGAL_METRIC_TYPE,
         "Invalid index metric type: -1. Make sure the metric type is in MetricType list."),
    ],
)
def test_create_collection_bad_schema(api: Any, dim: int, ifs: int, metric: int, code: int, reason: str) -> None:
    name = unique_name("schema")
    assert_status(create(api, name, dim, metric, ifs), code, reason)
    assert ok(api.HasCollection(cname(name))).bool_reply is False


def test_create_collection_limits_are_inclusive(api: Any) -> None:
    for dim, ifs, metric in ((1, 1, L2), (32768, 4096, L2), (32768, 4096, HAMMING), (8, 1, 7)):
        name = unique_name("limits")
        assert_status(create(api, name, dim, metric, ifs), SUCCESS, "OK")
        desc = ok(api.DescribeCollection(cname(name)))
        assert (desc.dimension, desc.index_file_size, desc.metric_type) == (dim, ifs, metric)
        ok(api.DropCollection(cname(name)))


def test_create_existing_collection(api: Any, floats_coll: str) -> None:
    assert_status(create(api, floats_coll, 16, HAMMING), ILLEGAL_COLLECTION_NAME, "Collection already exists")
    desc = ok(api.DescribeCollection(cname(floats_coll)))
    assert (desc.dimension, desc.metric_type) == (DIM, L2)


# -- indexes --------------------------------------------------------------------------------------


def index_request(name: str, index_type: int, params: dict[str, Any] | str | None) -> Any:
    return milvus_pb2.IndexParam(collection_name=name, index_type=index_type, extra_params=extra_params(params))


@pytest.mark.parametrize(
    ("index_type", "params", "code", "reason"),
    [
        (0, {}, ILLEGAL_INDEX_TYPE, "Invalid index type: 0. Make sure the index type is in IndexType list."),
        (13, {}, ILLEGAL_INDEX_TYPE, "Invalid index type: 13. Make sure the index type is in IndexType list."),
        (-1, {}, ILLEGAL_INDEX_TYPE, "Invalid index type: -1. Make sure the index type is in IndexType list."),
        (5, {"nlist": 16}, ILLEGAL_INDEX_TYPE, "Unsupported index type: 5"),
        (2, None, ILLEGAL_ARGUMENT, "Parameter list must contain: nlist"),
        (2, {}, ILLEGAL_ARGUMENT, "Parameter list must contain: nlist"),
        (3, {"nlist": 0}, ILLEGAL_ARGUMENT, "Invalid nlist value: 0. Valid range is [1, 65536]"),
        (2, {"nlist": 65537}, ILLEGAL_ARGUMENT, "Invalid nlist value: 65537. Valid range is [1, 65536]"),
        (6, {"nlist": 16, "m": 3}, ILLEGAL_DIMENSION,
         "Invalid collection dimension, dimension can not be divided by m"),
        (6, {"nlist": 16}, ILLEGAL_ARGUMENT, "Parameter list must contain: m"),
        (11, {"M": 2, "efConstruction": 100}, ILLEGAL_ARGUMENT, "Invalid M value: 2. Valid range is [4, 64]"),
        (11, {"M": 16}, ILLEGAL_ARGUMENT, "Parameter list must contain: efConstruction"),
        (12, {}, ILLEGAL_ARGUMENT, "Parameter list must contain: n_trees"),
        (12, {"n_trees": 1025}, ILLEGAL_ARGUMENT, "Invalid n_trees value: 1025. Valid range is [1, 1024]"),
        (4, {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300}, ILLEGAL_ARGUMENT,
         "Parameter list must contain: knng"),
    ],
)
def test_create_index_bad_type_or_params(api: Any, floats_coll: str, index_type: int,
                                          params: dict[str, Any] | None, code: int, reason: str) -> None:
    assert_status(api.CreateIndex(index_request(floats_coll, index_type, params)), code, reason)
    desc = ok(api.DescribeIndex(cname(floats_coll)))
    assert (desc.index_type, desc.extra_params[0].key, desc.extra_params[0].value) == (1, "params", "{}")


@pytest.mark.parametrize("params", ['{"nlist": ', "[1, 2]", '"nlist"', "{'nlist': 16}", "nan"])
def test_create_index_malformed_json(api: Any, floats_coll: str, params: str) -> None:
    reply = api.CreateIndex(index_request(floats_coll, 2, params))
    assert status_of(reply).error_code == ILLEGAL_ARGUMENT, status_of(reply)
    assert ok(api.DescribeIndex(cname(floats_coll))).index_type == 1


@pytest.mark.parametrize("value", ['"16"', "16.5", "true", "null", "1e3"])
def test_create_index_param_of_wrong_type(api: Any, floats_coll: str, value: str) -> None:
    reply = api.CreateIndex(index_request(floats_coll, 2, f'{{"nlist": {value}}}'))
    st = status_of(reply)
    assert st.error_code == ILLEGAL_ARGUMENT and st.reason.startswith("Invalid nlist"), st


@pytest.mark.parametrize("index_type", [3, 4, 6, 11, 12])
def test_binary_collections_accept_only_flat_and_ivf_flat(api: Any, binary_coll: str, index_type: int) -> None:
    reply = api.CreateIndex(index_request(binary_coll, index_type, {"nlist": 16}))
    assert_status(reply, ILLEGAL_INDEX_TYPE, "Invalid index type for collection metric type")


# -- partitions -----------------------------------------------------------------------------------


def test_partition_errors(api: Any, floats_coll: str) -> None:
    name = floats_coll
    for tag in ("", "   ", " \t\n\r"):
        for rpc in ("CreatePartition", "HasPartition", "DropPartition"):
            assert_status(getattr(api, rpc)(partition(name, tag)), UNEXPECTED_ERROR, EMPTY_TAG)
    long_tag = "t" * 256
    assert_status(api.CreatePartition(partition(name, long_tag)), UNEXPECTED_ERROR,
                  f"Invalid partition tag: {long_tag}. Partition tag exceed max length(255).")
    assert_status(api.CreatePartition(partition(name, "_default")), UNEXPECTED_ERROR,
                  "'_default' is built-in partition tag")
    assert_status(api.CreatePartition(partition(name, "p1")), UNEXPECTED_ERROR, "Duplicate partition is not allowed")
    assert_status(api.CreatePartition(partition(name, "  p1\t")), UNEXPECTED_ERROR,
                  "Duplicate partition is not allowed")
    assert_status(api.DropPartition(partition(name, "_default")), ILLEGAL_COLLECTION_NAME,
                  "Default partition cannot be dropped.")
    assert_status(api.DropPartition(partition(name, "nope")), UNEXPECTED_ERROR,
                  f"Partition nope of collection {name} not found")
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default", "p1"]

    vec = np.ones((1, DIM), dtype=np.float32)
    assert_status(insert(api, name, vec, tag="nope"), UNEXPECTED_ERROR,
                  f"Partition nope of collection {name} not found")
    assert_status(insert(api, name, vec, tag="  "), UNEXPECTED_ERROR, EMPTY_TAG)
    assert_status(search(api, name, vec, 1, tags=["nope"])[0], UNEXPECTED_ERROR, NO_PARTITION)
    assert_status(search(api, name, vec, 1, tags=[""])[0], UNEXPECTED_ERROR, EMPTY_TAG)
    assert_status(search_by_id(api, name, [1], 1, tags=["nope"])[0], UNEXPECTED_ERROR, NO_PARTITION)
    assert_status(get_vectors(api, name, [1], tag="nope"), UNEXPECTED_ERROR, NO_PARTITION)
    assert_status(delete(api, name, [1], tag="nope"), UNEXPECTED_ERROR,
                  f"Partition nope of collection {name} not found")
    # A tag of 255 characters is fine.
    ok(api.CreatePartition(partition(name, "t" * 255)))
    ok(api.DropPartition(partition(name, "t" * 255)))


def test_partition_tags_have_no_character_restriction(api: Any, node: NodeProcess) -> None:
    name = new_collection(api)
    before = sorted(p.name for p in node.workdir.iterdir())
    tags = ["../x", "a/b", "..", "*", "日本", "a b"]
    for tag in tags:
        assert_status(api.CreatePartition(partition(name, tag)), SUCCESS, "OK")
    assert list(ok(api.ShowPartitions(cname(name))).partition_tag_array) == ["_default", *tags]
    vecs = np.random.default_rng(3).random((len(tags), DIM), dtype=np.float32)
    for i, tag in enumerate(tags):
        insert_ok(api, name, vecs[i : i + 1], tag=tag)
    ok(flush(api, name))
    assert count(api, name) == len(tags)
    st, got, _ = search(api, name, vecs[:1], 10, tags=[r"\.\./x"])  # a regex matching the tag "../x"
    ok(st)
    assert got.shape == (1, 1)
    for tag in tags:
        ok(api.DropPartition(partition(name, tag)))
    assert sorted(p.name for p in node.workdir.iterdir()) == before
    assert not (node.storage / "x").exists() and not (node.workdir / "x").exists()


def test_invalid_regex_tag_matches_only_literally(api: Any, floats_coll: str) -> None:
    st, _, _ = search(api, floats_coll, np.ones((1, DIM), np.float32), 1, tags=["(unclosed"])
    assert_status(st, UNEXPECTED_ERROR, NO_PARTITION)


# -- insert ---------------------------------------------------------------------------------------


def test_insert_bad_vectors(api: Any, floats_coll: str, binary_coll: str) -> None:
    before = count(api, floats_coll)
    assert_status(api.Insert(milvus_pb2.InsertParam(collection_name=floats_coll)), ILLEGAL_ROWRECORD, EMPTY_VECTORS)
    short = milvus_pb2.InsertParam(collection_name=floats_coll, row_record_array=one_query(DIM - 1))
    assert_status(api.Insert(short), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    mixed = milvus_pb2.InsertParam(collection_name=floats_coll, row_record_array=one_query() + one_query(DIM + 1))
    assert_status(api.Insert(mixed), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    as_bits = milvus_pb2.InsertParam(
        collection_name=floats_coll, row_record_array=[milvus_pb2.RowRecord(binary_data=b"\x01" * 32)]
    )
    assert_status(api.Insert(as_bits), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    ok(flush(api, floats_coll))
    assert count(api, floats_coll) == before

    bits_before = count(api, binary_coll)
    for data in (b"", b"\x01", b"\x01\x02\x03", b"\x00" * 16):
        reply = api.Insert(milvus_pb2.InsertParam(
            collection_name=binary_coll, row_record_array=[milvus_pb2.RowRecord(binary_data=b"\x01\x02"),
                                                           milvus_pb2.RowRecord(binary_data=data)],
        ))
        assert_status(reply, ILLEGAL_DIMENSION, WRONG_DIMENSION)
    as_floats = milvus_pb2.InsertParam(collection_name=binary_coll, row_record_array=one_query(16))
    assert_status(api.Insert(as_floats), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    ok(flush(api, binary_coll))
    assert count(api, binary_coll) == bits_before


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_insert_non_finite_values_inserts_nothing(api: Any, bad: float) -> None:
    name = new_collection(api)
    rng = np.random.default_rng(4)
    insert_ok(api, name, rng.random((3, DIM), dtype=np.float32))
    vecs = rng.random((5, DIM), dtype=np.float32)
    vecs[4, 2] = bad
    reply = insert(api, name, vecs)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    assert len(reply.vector_id_array) == 0
    ok(flush(api, name))
    assert count(api, name) == 3
    st, got, dist = search(api, name, vecs[:1], 10)
    ok(st)
    assert got.shape == (1, 3) and np.isfinite(dist).all()


def test_insert_id_errors(api: Any) -> None:
    rng = np.random.default_rng(5)
    vecs = rng.random((3, DIM), dtype=np.float32)
    name = new_collection(api)
    assert_status(insert(api, name, vecs, ids=[1, 2]), ILLEGAL_VECTOR_ID,
                  "The size of vector ID array must be equal to the size of the vector.")
    assert_status(insert(api, name, vecs, ids=[1, 2, 3, 4]), ILLEGAL_VECTOR_ID,
                  "The size of vector ID array must be equal to the size of the vector.")
    # Negative ids are refused (pymilvus never sends them; a row id of -1 would read as a hole).
    reply = insert(api, name, vecs, ids=[1, -1, 3])
    assert status_of(reply).error_code == ILLEGAL_VECTOR_ID, status_of(reply)
    # None of that fixed the id mode: user ids still work, then auto ids are refused.
    assert insert_ok(api, name, vecs, ids=[7, 8, 9]).tolist() == [7, 8, 9]
    assert_status(insert(api, name, vecs), ILLEGAL_VECTOR_ID,
                  "Entities IDs are user-defined. Please provide IDs for all entities of the collection.")

    auto = new_collection(api)
    insert_ok(api, auto, vecs)
    assert_status(insert(api, auto, vecs, ids=[1, 2, 3]), ILLEGAL_VECTOR_ID,
                  "Entities IDs are auto-generated. All vectors of this collection must use auto-generated IDs.")
    ok(flush(api, name, auto))
    assert (count(api, name), count(api, auto)) == (3, 3)


def test_insert_over_256_mb_is_refused(api: Any, raw_channel: grpc.Channel) -> None:
    dim = 32768
    name = new_collection(api, dim=dim)
    # 2049 rows x 32768 float32 = 256 MB + 128 KB, sent as hand-made bytes (one encoded row, repeated).
    record = milvus_pb2.RowRecord(float_data=[0.25] * dim).SerializeToString()
    item = length_delimited(2, record)
    payload = b"".join([length_delimited(1, name.encode()), *([item] * 2049)])
    assert len(payload) > 256 * 1024 * 1024
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    del payload
    assert_status(reply, ILLEGAL_ROWRECORD, "The amount of data inserted each time cannot exceed 256 MB")
    assert len(reply.vector_id_array) == 0
    ok(flush(api, name))
    assert count(api, name) == 0


def test_malformed_row_record_bytes(api: Any, raw_channel: grpc.Channel) -> None:
    name = new_collection(api)
    payload = length_delimited(1, name.encode()) + length_delimited(2, b"\xff\xff\xff")
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    search_payload = length_delimited(1, name.encode()) + length_delimited(3, b"\x0a\xff") + b"\x20\x01"
    reply = raw_call(raw_channel, "Search", search_payload, milvus_pb2.TopKQueryResult)
    assert status_of(reply).error_code == ILLEGAL_ROWRECORD, status_of(reply)
    ok(flush(api, name))
    assert count(api, name) == 0


def test_non_canonical_row_encodings_are_accepted(api: Any, raw_channel: grpc.Channel) -> None:
    """Unpacked repeated floats are valid protobuf: they must decode to the same vectors."""
    name = new_collection(api)
    vec = np.arange(DIM, dtype=np.float32) / 7
    unpacked = b"".join(b"\x0d" + np.float32(v).tobytes() for v in vec)
    payload = length_delimited(1, name.encode()) + length_delimited(2, unpacked) + b"\x18\x2a"  # row id 42
    reply = raw_call(raw_channel, "Insert", payload, milvus_pb2.VectorIds)
    assert list(ok(reply).vector_id_array) == [42]
    ok(flush(api, name))
    got = ok(get_vectors(api, name, [42])).vectors_data[0]
    np.testing.assert_array_equal(np.array(got.float_data, dtype=np.float32), vec)


# -- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("topk", [0, -1, 1_048_577, 2**40, -(2**63)])
def test_bad_topk(api: Any, floats_coll: str, topk: int) -> None:
    vec = np.ones((1, DIM), np.float32)
    assert_status(search(api, floats_coll, vec, topk)[0], ILLEGAL_TOPK, topk_reason(topk))
    assert_status(search_by_id(api, floats_coll, [1], topk)[0], ILLEGAL_TOPK, topk_reason(topk))
    assert_status(search_in_files(api, floats_coll, ["1"], vec, topk)[0], ILLEGAL_TOPK, topk_reason(topk))


def test_largest_topk_is_allowed(api: Any, floats_coll: str) -> None:
    st, got, _ = search(api, floats_coll, np.ones((2, DIM), np.float32), 1_048_576)
    ok(st)
    assert got.shape == (2, count(api, floats_coll))


def test_search_bad_vectors(api: Any, floats_coll: str, binary_coll: str) -> None:
    empty = milvus_pb2.SearchParam(collection_name=floats_coll, topk=1)
    assert_status(api.Search(empty), ILLEGAL_ROWRECORD, EMPTY_VECTORS)
    short = milvus_pb2.SearchParam(collection_name=floats_coll, topk=1, query_record_array=one_query(DIM - 1))
    assert_status(api.Search(short), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    for bad in (math.nan, math.inf):
        vec = np.ones((2, DIM), np.float32)
        vec[1, 0] = bad
        st, _, _ = search(api, floats_coll, vec, 3)
        assert st.error_code == ILLEGAL_ROWRECORD, st
    bits = milvus_pb2.SearchParam(
        collection_name=binary_coll, topk=1, query_record_array=[milvus_pb2.RowRecord(binary_data=b"\x01")]
    )
    assert_status(api.Search(bits), ILLEGAL_DIMENSION, WRONG_DIMENSION)
    in_files = milvus_pb2.SearchInFilesParam(file_id_array=["1"], search_param=empty)
    st = status_of(api.SearchInFiles(in_files))
    assert (st.error_code, st.reason) in ((ILLEGAL_ROWRECORD, EMPTY_VECTORS), (UNEXPECTED_ERROR, "Invalid file id"))


@pytest.mark.parametrize("params", ['{"nprobe": ', "[]", '"x"', "{'a': 1}", "{} {}"])
def test_search_malformed_json_params(api: Any, floats_coll: str, params: str) -> None:
    st, _, _ = search(api, floats_coll, np.ones((1, DIM), np.float32), 1, params=params)
    assert st.error_code == ILLEGAL_ARGUMENT, st


def test_search_params_follow_the_collection_index(api: Any) -> None:
    name = new_collection(api)
    insert_ok(api, name, np.random.default_rng(6).random((30, DIM), dtype=np.float32))
    ok(flush(api, name))
    ok(api.CreateIndex(index_request(name, 2, {"nlist": 4})))
    vec = np.ones((1, DIM), np.float32)
    assert_status(search(api, name, vec, 1)[0], ILLEGAL_ARGUMENT, "Parameter list must contain: nprobe")
    assert_status(search(api, name, vec, 1, params={"nprobe": 65537})[0], ILLEGAL_ARGUMENT,
                  "Invalid nprobe value: 65537. Valid range is [1, 65536]")
    st = search(api, name, vec, 1, params={"nprobe": "8"})[0]
    assert st.error_code == ILLEGAL_ARGUMENT and st.reason.startswith("Invalid nprobe"), st
    # Params are checked before the vectors.
    no_vectors = milvus_pb2.SearchParam(collection_name=name, topk=1)
    assert_status(api.Search(no_vectors), ILLEGAL_ARGUMENT, "Parameter list must contain: nprobe")
    ok(search(api, name, vec, 1, params={"nprobe": 8})[0])
    ok(api.CreateIndex(index_request(name, 11, {"M": 16, "efConstruction": 64})))
    assert_status(search(api, name, vec, 10, params={"ef": 5})[0], ILLEGAL_ARGUMENT,
                  "Invalid ef value: 5. Valid range is [10, 32768]")
    ok(search(api, name, vec, 10, params={"ef": 10})[0])


def test_search_validation_order(api: Any) -> None:
    missing = unique_name("missing")
    vec = np.ones((1, DIM), np.float32)
    assert_status(search(api, "", vec, 0)[0], ILLEGAL_COLLECTION_NAME, "Collection name should not be empty.")
    assert_status(search(api, missing, vec, 0)[0], ILLEGAL_TOPK, topk_reason(0))
    assert_status(search(api, missing, vec, 1, tags=[" "])[0], UNEXPECTED_ERROR, EMPTY_TAG)
    assert_status(search(api, missing, vec, 1, tags=["p"])[0], COLLECTION_NOT_EXISTS, not_found(missing))
    no_vectors = milvus_pb2.SearchParam(collection_name=missing, topk=1)
    assert_status(api.Search(no_vectors), COLLECTION_NOT_EXISTS, not_found(missing))


def test_search_by_id_errors(api: Any, floats_coll: str) -> None:
    assert_status(search_by_id(api, floats_coll, [], 1)[0], ILLEGAL_ARGUMENT, "No vector id specified")
    st, got, _ = search_by_id(api, floats_coll, [987654321], 3)
    ok(st)
    assert got.size == 0 or (got == -1).all()


def test_search_in_files_bad_ids(api: Any, floats_coll: str) -> None:
    vec = np.ones((1, DIM), np.float32)
    for ids in ([], ["999999999"], ["abc"], ["-1"], [""], ["1.5"], ["99999999999999999999999"]):
        assert_status(search_in_files(api, floats_coll, ids, vec, 1)[0], UNEXPECTED_ERROR, "Invalid file id")


# -- get / delete ---------------------------------------------------------------------------------


def test_get_vectors_by_id_id_counts(api: Any, floats_coll: str) -> None:
    assert_status(get_vectors(api, floats_coll, []), ILLEGAL_ARGUMENT, "No vector id specified")
    assert_status(get_vectors(api, floats_coll, range(1001)), ILLEGAL_ARGUMENT,
                  "Input id array size cannot exceed: 1000")
    assert len(ok(get_vectors(api, floats_coll, range(1000))).vectors_data) == 1000
    assert_status(get_vectors(api, new_collection(api), [1]), UNEXPECTED_ERROR, "Collection or partition is empty")
    assert_status(get_vectors(api, floats_coll, [1], tag="p1"), UNEXPECTED_ERROR, "Collection or partition is empty")


def test_get_vector_ids_unknown_segment(api: Any, floats_coll: str, binary_coll: str) -> None:
    for segment in ("", "123", "../x", "nope"):
        reply = api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=floats_coll, segment_name=segment))
        assert_status(reply, UNEXPECTED_ERROR, "Segment does not exist")
    other = segments(api, binary_coll)[0]["name"]
    reply = api.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name=floats_coll, segment_name=other))
    assert_status(reply, UNEXPECTED_ERROR, "Segment does not belong to this collection")


def test_delete_by_id_errors(api: Any, floats_coll: str) -> None:
    assert_status(delete(api, floats_coll, []), ILLEGAL_ARGUMENT, "No vector id specified")
    before = count(api, floats_coll)
    ok(delete(api, floats_coll, [-1, 2**63 - 1, 0]))  # unknown ids are skipped silently
    ok(flush(api, floats_coll))
    assert count(api, floats_coll) == before


# -- Cmd / Flush / misc ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("get_config bad.node", UNEXPECTED_ERROR, "Config node invalid: bad.node"),
        ("set_config bad.node 1", UNEXPECTED_ERROR, "Config node invalid: bad.node"),
        ("get_config cache", UNEXPECTED_ERROR, "Invalid command: get_config cache"),
        ("nonsense", SUCCESS, "OK"),
        ("", SUCCESS, "OK"),
        ("version ", SUCCESS, "OK"),
    ],
)
def test_cmd_errors(api: Any, text: str, code: int, reason: str) -> None:
    reply = assert_status(cmd(api, text), code, reason)
    if code == SUCCESS:
        assert reply.string_reply == "Unknown command"


@pytest.mark.parametrize(
    "text",
    ["get_config", "get_config a b", "set_config storage.auto_flush_interval", "set_config a b c d",
     "set_config storage.auto_flush_interval -5", "set_config storage.auto_flush_interval abc",
     "set_config storage.auto_flush_interval nan", "set_config storage.auto_flush_interval inf",
     "set_config storage.auto_flush_interval 1e300", "set_config cache.cache_size lots",
     "set_config storage.file_cleanup_timeout 5"],
)
def test_bad_config_commands_change_nothing(api: Any, text: str) -> None:
    # Malformed commands and keys that cannot be set are UNEXPECTED_ERROR, bad values ILLEGAL_ARGUMENT (as 1.1).
    assert status_of(cmd(api, text)).error_code in (UNEXPECTED_ERROR, ILLEGAL_ARGUMENT)
    assert ok(cmd(api, "get_config storage.auto_flush_interval")).string_reply == "1"
    assert ok(cmd(api, "get_config cache.cache_size")).string_reply == "4GB"
    if "auto_flush_interval" not in text:
        return
    # Background maintenance still runs: rows become visible without an explicit Flush.
    name = new_collection(api)
    insert_ok(api, name, np.ones((2, DIM), np.float32))
    poll_for(lambda: count(api, name) == 2, timeout=15, what="auto flush after a refused set_config")


def test_flush_errors(api: Any, floats_coll: str) -> None:
    missing = unique_name("missing")
    assert_status(flush(api, missing), COLLECTION_NOT_EXISTS, not_found(missing))
    assert_status(flush(api, floats_coll, missing), COLLECTION_NOT_EXISTS, not_found(missing))
    assert_status(flush(api, floats_coll, ""), ILLEGAL_COLLECTION_NAME, "Collection name should not be empty.")


def test_has_collection_unknown(api: Any) -> None:
    reply = api.HasCollection(cname(unique_name("missing")))
    assert_status(reply, SUCCESS, "OK")
    assert reply.bool_reply is False


def test_preload_unknown_partition(api: Any, floats_coll: str) -> None:
    param = milvus_pb2.PreloadCollectionParam(collection_name=floats_coll, partition_tag_array=["nope"])
    assert_status(api.PreloadCollection(param), UNEXPECTED_ERROR, NO_PARTITION)
    param = milvus_pb2.PreloadCollectionParam(collection_name=floats_coll, partition_tag_array=[""])
    assert_status(api.PreloadCollection(param), UNEXPECTED_ERROR, EMPTY_TAG)


def call_everything(api: Any, name: str) -> list[Callable[[], Any]]:
    """Calls used by the concurrency test below."""
    vec = np.ones((1, DIM), np.float32)
    return [
        lambda: search(api, name, vec, 0),
        lambda: insert(api, name, np.full((1, DIM), np.nan, np.float32)),
        lambda: get_vectors(api, name, range(1001)),
        lambda: search_in_files(api, name, ["x"], vec, 1),
        lambda: cmd(api, "get_config bad.node"),
    ]


def test_many_bad_requests_at_once(api: Any, floats_coll: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    calls = call_everything(api, floats_coll) * 20
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda call: call(), calls))
    for reply in replies:
        st = reply[0] if isinstance(reply, tuple) else status_of(reply)
        assert st.error_code != SUCCESS
