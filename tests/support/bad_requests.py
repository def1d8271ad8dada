"""Helpers of the bad-input tests (tests/bad_input/): Milvus 1.1 status codes and reasons, and valid requests
to spoil."""

from __future__ import annotations

from typing import Any

from milvus_wire import milvus_pb2
from tests.support.requests import (
    L2,
    create,
    extra_params,
    ok,
    unique_name,
)

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


def one_query(dim: int = DIM) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=[0.5] * dim)]


def new_collection(api: Any, dim: int = DIM, metric: int = L2) -> str:
    name = unique_name("bad")
    ok(create(api, name, dim, metric))
    return name


def index_request(name: str, index_type: int, params: dict[str, Any] | str | None) -> Any:
    return milvus_pb2.IndexParam(collection_name=name, index_type=index_type, extra_params=extra_params(params))
