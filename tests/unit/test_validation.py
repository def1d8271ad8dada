"""Request value checks: exact Milvus 1.1 status codes and reason texts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from coordinator import validation
from coordinator.errors import ErrorCode, MilvusError
from coordinator.model import MetricType

NAME_TOO_LONG = "The length of a collection name must be less than 255 characters."
BAD_FIRST = "The first character of a collection name must be an underscore or letter."
BAD_CHARS = "Collection name can only contain numbers, letters, and underscores."


def _error(fn: Callable[..., object], *args: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize("name", ["_ok", "a", "A1_b", "abc_123", "_", "x" * 255])
def test_collection_name_accepts(name: str) -> None:
    validation.collection_name(name)


def test_collection_name_empty() -> None:
    err = _error(validation.collection_name, "")
    assert err.code == ErrorCode.ILLEGAL_COLLECTION_NAME
    assert err.reason == "Collection name should not be empty."


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("x" * 256, NAME_TOO_LONG),
        ("y" * 300, NAME_TOO_LONG),
        ("../x", BAD_FIRST),
        ("1abc", BAD_FIRST),
        ("9", BAD_FIRST),
        ("-a", BAD_FIRST),
        (" a", BAD_FIRST),
        ("éa", BAD_FIRST),
        ("Ωmega", BAD_FIRST),
        ("\uff41bc", BAD_FIRST),  # fullwidth "a": alphabetic, but not ASCII
        ("a/b", BAD_CHARS),
        ("a.b", BAD_CHARS),
        ("a b", BAD_CHARS),
        ("a-b", BAD_CHARS),
        ("caféx", BAD_CHARS),
        ("a٣", BAD_CHARS),  # Arabic-Indic digit: isdigit() but not ASCII
        ("ab\n", BAD_CHARS),
    ],
)
def test_collection_name_rejects(name: str, suffix: str) -> None:
    err = _error(validation.collection_name, name)
    assert err.code == ErrorCode.ILLEGAL_COLLECTION_NAME
    assert err.reason == f"Invalid collection name: {name}. {suffix}"


@pytest.mark.parametrize("value", [0, 8, -1, 100])
def test_metric_type_rejects(value: int) -> None:
    err = _error(validation.metric_type, value)
    assert err.code == ErrorCode.ILLEGAL_METRIC_TYPE
    assert err.reason == f"Invalid index metric type: {value}. Make sure the metric type is in MetricType list."


@pytest.mark.parametrize("metric", list(MetricType))
def test_metric_type_accepts(metric: MetricType) -> None:
    assert validation.metric_type(int(metric)) is metric


@pytest.mark.parametrize(
    ("dim", "metric"),
    [
        (1, MetricType.L2),
        (3, MetricType.IP),
        (32768, MetricType.L2),
        (8, MetricType.HAMMING),
        (32768, MetricType.JACCARD),
    ],
)
def test_dimension_accepts(dim: int, metric: MetricType) -> None:
    validation.dimension(dim, int(metric))


@pytest.mark.parametrize("dim", [0, -1, -8, 32769, 40000])
@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.HAMMING])
def test_dimension_out_of_range(dim: int, metric: MetricType) -> None:
    err = _error(validation.dimension, dim, int(metric))
    assert err.code == ErrorCode.ILLEGAL_DIMENSION
    assert err.reason == (
        f"Invalid collection dimension: {dim}. The collection dimension must be within the range of 1 ~ 32768."
    )


@pytest.mark.parametrize("metric", [m for m in MetricType if m.is_binary])
@pytest.mark.parametrize("dim", [1, 4, 12, 100, 32767])
def test_binary_dimension_multiple_of_8(dim: int, metric: MetricType) -> None:
    err = _error(validation.dimension, dim, int(metric))
    assert err.code == ErrorCode.ILLEGAL_DIMENSION
    assert err.reason == f"Invalid collection dimension: {dim}. The collection dimension must be a multiple of 8"


def test_float_dimension_need_not_be_multiple_of_8() -> None:
    for dim in (1, 12, 100, 32767):
        validation.dimension(dim, int(MetricType.L2))
        validation.dimension(dim, int(MetricType.IP))


@pytest.mark.parametrize("size", [1, 1024, 4096])
def test_index_file_size_accepts(size: int) -> None:
    validation.index_file_size(size)


@pytest.mark.parametrize("size", [0, -1, 4097, 65536])
def test_index_file_size_rejects(size: int) -> None:
    err = _error(validation.index_file_size, size)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == f"Invalid index file size: {size}. The index file size must be within the range of 1 ~ 4096."


@pytest.mark.parametrize("k", [1, 10, 16384, 16385, 1_048_576])
def test_topk_accepts(k: int) -> None:
    validation.topk(k)


@pytest.mark.parametrize("k", [0, -1, 1_048_577, 2**40])
def test_topk_rejects(k: int) -> None:
    err = _error(validation.topk, k)
    assert err.code == ErrorCode.ILLEGAL_TOPK
    assert err.reason == f"Invalid topk: {k}. The topk must be within the range of 1 ~ 1048576."


@pytest.mark.parametrize(("nq", "k"), [(1, 1), (10_922, 16_384), (178_956_970, 1), (0, 10**9)])
def test_result_size_accepts_results_under_2_gib(nq: int, k: int) -> None:
    validation.result_size(nq, k)


@pytest.mark.parametrize(("nq", "k"), [(12_000, 16_384), (10_923, 16_384), (178_956_971, 1), (2048, 1 << 20)])
def test_result_size_refuses_2_gib_and_more(nq: int, k: int) -> None:
    """nq * topk * 12 bytes >= 2 GiB: ILLEGAL_TOPK with 1.1.1's wording, for any topk (not only up to today's max)."""
    err = _error(validation.result_size, nq, k)
    assert err.code == ErrorCode.ILLEGAL_TOPK
    assert err.reason == f"Invalid nq {nq} topk {k}. The search result size may exceed the RPC transmission limit."


@pytest.mark.parametrize(
    ("raw", "trimmed"),
    [
        ("p1", "p1"),
        ("  p1 ", "p1"),
        ("\t\r\np 1\n", "p 1"),
        ("分区", "分区"),
        ("a.*", "a.*"),
        (" " + "t" * 255 + "\n", "t" * 255),
        ("\u00a0x", "\u00a0x"),  # only space, \n, \r and \t are trimmed
    ],
)
def test_partition_tag_trims(raw: str, trimmed: str) -> None:
    assert validation.partition_tag(raw) == trimmed


@pytest.mark.parametrize("raw", ["", " ", "\t", " \n\r\t "])
def test_partition_tag_empty(raw: str) -> None:
    err = _error(validation.partition_tag, raw)
    assert err.code == ErrorCode.UNEXPECTED_ERROR
    assert err.reason == "Invalid partition tag: . Partition tag should not be empty."


def test_partition_tag_too_long() -> None:
    tag = "t" * 256
    err = _error(validation.partition_tag, f"  {tag}  ")
    assert err.code == ErrorCode.UNEXPECTED_ERROR
    assert err.reason == f"Invalid partition tag: {tag}. Partition tag exceed max length(255)."


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_rejects(bad: float, dtype: type[np.floating]) -> None:
    vectors = np.ones((3, 4), dtype=dtype)
    vectors[2, 1] = bad
    err = _error(validation.finite, vectors)
    assert err.code == ErrorCode.ILLEGAL_ROWRECORD
    assert "NaN or infinity" in err.reason


def test_finite_accepts() -> None:
    validation.finite(np.zeros((0, 4), dtype=np.float32))
    validation.finite(np.full((2, 3), np.finfo(np.float32).max, dtype=np.float32))
    validation.finite(np.array([[255, 0]], dtype=np.uint8))  # binary rows are never checked


def test_partition_tags_are_trimmed_and_at_most_4096() -> None:
    assert validation.partition_tags([" a ", "b"]) == ["a", "b"]
    validation.partition_tags(["t"] * 4096)
    err = _error(validation.partition_tags, ["t"] * 4097)
    assert err.code == ErrorCode.UNEXPECTED_ERROR
    assert err.reason == "Too many partition tags: 4097. A request may name at most 4096."
