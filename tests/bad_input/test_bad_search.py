"""Bad searches: top-k, vectors, parameters against the collection's index, SearchByID and SearchInFiles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.bad_requests import (
    COLLECTION_NOT_EXISTS,
    DIM,
    EMPTY_TAG,
    EMPTY_VECTORS,
    ILLEGAL_ARGUMENT,
    ILLEGAL_COLLECTION_NAME,
    ILLEGAL_DIMENSION,
    ILLEGAL_ROWRECORD,
    ILLEGAL_TOPK,
    UNEXPECTED_ERROR,
    WRONG_DIMENSION,
    index_request,
    new_collection,
    one_query,
)
from tests.support.node_rpcs import not_found
from tests.support.requests import (
    assert_status,
    count,
    flush,
    insert_ok,
    ok,
    search,
    search_by_id,
    search_in_files,
    status_of,
    unique_name,
)


def topk_reason(k: int) -> str:
    return f"Invalid topk: {k}. The topk must be within the range of 1 ~ 1048576."


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
