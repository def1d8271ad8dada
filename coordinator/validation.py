"""Pure validation of request values, with the Milvus 1.1 status codes and reasons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from coordinator.errors import (
    IllegalArgument,
    IllegalCollectionName,
    IllegalDimension,
    IllegalMetricType,
    IllegalRowRecord,
    IllegalTopk,
    UnexpectedError,
)
from coordinator.model import (
    MAX_DIMENSION,
    MAX_INDEX_FILE_SIZE_MB,
    MAX_INSERT_BYTES,
    MAX_NAME_LENGTH,
    MAX_PARTITIONS,
    MAX_SEARCH_RESULT_BYTES,
    MAX_TOPK,
    RESULT_SLOT_BYTES,
    MetricType,
)

_WHITESPACE = " \n\r\t"


def collection_name(name: str) -> None:
    if not name:
        raise IllegalCollectionName("Collection name should not be empty.")
    prefix = f"Invalid collection name: {name}. "
    if len(name) > MAX_NAME_LENGTH:
        raise IllegalCollectionName(
            prefix + f"The length of a collection name must be less than {MAX_NAME_LENGTH} characters."
        )
    first = name[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise IllegalCollectionName(
            prefix + "The first character of a collection name must be an underscore or letter."
        )
    for ch in name[1:]:
        if not (ch == "_" or (ch.isascii() and ch.isalnum())):
            raise IllegalCollectionName(
                prefix + "Collection name can only contain numbers, letters, and underscores."
            )


def metric_type(value: int) -> MetricType:
    try:
        return MetricType(value)
    except ValueError:
        raise IllegalMetricType(
            f"Invalid index metric type: {value}. Make sure the metric type is in MetricType list."
        ) from None


def dimension(value: int, metric: int) -> None:
    if value <= 0 or value > MAX_DIMENSION:
        raise IllegalDimension(
            f"Invalid collection dimension: {value}. "
            f"The collection dimension must be within the range of 1 ~ {MAX_DIMENSION}."
        )
    if metric in MetricType.__members__.values() and MetricType(metric).is_binary and value % 8 != 0:
        raise IllegalDimension(
            f"Invalid collection dimension: {value}. The collection dimension must be a multiple of 8"
        )


def index_file_size(value: int) -> None:
    if value <= 0 or value > MAX_INDEX_FILE_SIZE_MB:
        raise IllegalArgument(
            f"Invalid index file size: {value}. "
            f"The index file size must be within the range of 1 ~ {MAX_INDEX_FILE_SIZE_MB}."
        )


def topk(value: int) -> None:
    if value <= 0 or value > MAX_TOPK:
        raise IllegalTopk(f"Invalid topk: {value}. The topk must be within the range of 1 ~ {MAX_TOPK}.")


def result_size(nq: int, topk_value: int) -> None:
    """Milvus 1.1.1's result-size rule, checked right after topk: an id and a distance per result slot
    (``nq * topk * 12`` bytes) must stay under :data:`MAX_SEARCH_RESULT_BYTES` (2 GiB)."""
    if nq * topk_value * RESULT_SLOT_BYTES >= MAX_SEARCH_RESULT_BYTES:
        raise IllegalTopk(
            f"Invalid nq {nq} topk {topk_value}. The search result size may exceed the RPC transmission limit."
        )


def partition_tags(tags: Sequence[str]) -> list[str]:
    """Every tag of a request validated and trimmed. At most MAX_PARTITIONS of them (no collection has more
    partitions; Milvus 1.1 sets no limit): a request cannot make the node hold and compile millions."""
    if len(tags) > MAX_PARTITIONS:
        raise UnexpectedError(f"Too many partition tags: {len(tags)}. A request may name at most {MAX_PARTITIONS}.")
    return [partition_tag(t) for t in tags]


def partition_tag(tag: str) -> str:
    """Validate a partition tag and return it trimmed of surrounding whitespace."""
    trimmed = tag.strip(_WHITESPACE)
    if not trimmed:
        raise UnexpectedError(f"Invalid partition tag: {trimmed}. Partition tag should not be empty.")
    if len(trimmed) > MAX_NAME_LENGTH:
        raise UnexpectedError(
            f"Invalid partition tag: {trimmed}. Partition tag exceed max length({MAX_NAME_LENGTH})."
        )
    return trimmed


EMPTY_VECTORS = "The vector array is empty. Make sure you have entered vector records."
WRONG_DIMENSION = "The vector dimension must be equal to the collection dimension."


def vector_bytes(rows: int, row_bytes: int) -> None:
    """1.1's 256 MB rule on the vectors of one request, from their count and size (before decoding them)."""
    if rows * row_bytes > MAX_INSERT_BYTES:
        raise IllegalRowRecord("The amount of data inserted each time cannot exceed 256 MB")


def finite(vectors: np.ndarray) -> None:
    """Float vectors must not hold NaN or infinity: they would poison every distance. (One ufunc reduction:
    ``ndarray.all`` goes through a Python wrapper, a cost every nq=1 search pays.)"""
    if vectors.dtype.kind == "f" and vectors.size and not np.logical_and.reduce(np.isfinite(vectors), axis=None):
        raise IllegalRowRecord("The vector data must not contain NaN or infinity values.")
