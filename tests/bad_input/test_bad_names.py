"""Hostile and missing collection names in every RPC that takes one, and empty requests of every RPC."""

from __future__ import annotations

from typing import Any

import pytest

from milvus_wire import milvus_pb2
from tests.support.bad_requests import (
    COLLECTION_NOT_EXISTS,
    DIM,
    ILLEGAL_COLLECTION_NAME,
    one_query,
)
from tests.support.node_rpcs import cname, not_found, partition
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    L2,
    SUCCESS,
    assert_status,
    create,
    extra_params,
    flush,
    ok,
    status_of,
    unique_name,
)

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
