"""Bad collection schemas, index types and parameters, and partition tags."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support.bad_requests import (
    DIM,
    EMPTY_TAG,
    ILLEGAL_ARGUMENT,
    ILLEGAL_COLLECTION_NAME,
    ILLEGAL_DIMENSION,
    ILLEGAL_INDEX_TYPE,
    ILLEGAL_METRIC_TYPE,
    NO_PARTITION,
    UNEXPECTED_ERROR,
    index_request,
    new_collection,
)
from tests.support.node_rpcs import cname, partition
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    HAMMING,
    L2,
    SUCCESS,
    assert_status,
    count,
    create,
    delete,
    flush,
    get_vectors,
    insert,
    insert_ok,
    ok,
    search,
    search_by_id,
    status_of,
    unique_name,
)

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
