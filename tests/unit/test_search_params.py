"""The search-time metric (Milvus 1.1's ``metric_type`` search param for IDMAP / BIN_IDMAP files): what a
search may ask for, what the node searches with, and the direction the proxy merges in."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.errors import ErrorCode, MilvusError
from coordinator.model import MetricType
from coordinator.search_params import requested_metric, search_metric
from milvus_wire import milvus_pb2
from mishards.fanout import merge_direction
from node.params import SearchParams, with_metric

FLOAT = [MetricType.L2, MetricType.IP]
BINARY = [m for m in MetricType if m.is_binary]
FLOAT_REASON = "A search of a float collection may ask for metric_type 1 (L2) or 2 (IP)."
BINARY_REASON = ("A search of a binary collection may ask for metric_type 3 (HAMMING), 4 (JACCARD), 5 (TANIMOTO), "
                 "6 (SUBSTRUCTURE) or 7 (SUPERSTRUCTURE).")


@pytest.mark.parametrize("collection", list(MetricType), ids=lambda m: m.name)
def test_no_metric_asked_for(collection: MetricType) -> None:
    assert requested_metric({}, collection) is None
    assert requested_metric({"nprobe": 3}, collection) is None
    assert search_metric({"nprobe": 3}, collection) is collection


@pytest.mark.parametrize(("kind", "collection"), [(FLOAT, c) for c in FLOAT] + [(BINARY, c) for c in BINARY],
                         ids=lambda v: v.name if isinstance(v, MetricType) else "")
def test_any_metric_of_the_collections_kind_may_be_asked_for(kind: list[MetricType], collection: MetricType) -> None:
    for wanted in kind:
        assert requested_metric({"metric_type": int(wanted)}, collection) is wanted
        assert search_metric({"metric_type": int(wanted), "ef": 9}, collection) is wanted


@pytest.mark.parametrize(
    ("collection", "value", "shown", "reason"),
    [
        (MetricType.L2, 3, "3", FLOAT_REASON),
        (MetricType.IP, 7, "7", FLOAT_REASON),
        (MetricType.L2, 0, "0", FLOAT_REASON),
        (MetricType.L2, "IP", '"IP"', FLOAT_REASON),
        (MetricType.L2, 2.0, "2.0", FLOAT_REASON),
        (MetricType.IP, True, "true", FLOAT_REASON),
        (MetricType.L2, None, "null", FLOAT_REASON),
        (MetricType.JACCARD, 1, "1", BINARY_REASON),
        (MetricType.HAMMING, 2, "2", BINARY_REASON),
        (MetricType.TANIMOTO, 8, "8", BINARY_REASON),
        (MetricType.SUBSTRUCTURE, -3, "-3", BINARY_REASON),
        (MetricType.HAMMING, [3], "[3]", BINARY_REASON),
    ],
)
def test_any_other_metric_is_an_illegal_argument(collection: MetricType, value: Any, shown: str, reason: str) -> None:
    with pytest.raises(MilvusError) as info:
        requested_metric({"metric_type": value}, collection)
    assert info.value.code == ErrorCode.ILLEGAL_ARGUMENT
    assert info.value.reason == f"Illegal metric type: {shown}. {reason}"


def test_a_long_refused_value_is_cut_in_the_reason() -> None:
    with pytest.raises(MilvusError) as info:
        requested_metric({"metric_type": "x" * 10_000}, MetricType.L2)
    assert info.value.reason == f'Illegal metric type: "{"x" * 63}.... {FLOAT_REASON}'


def test_the_node_searches_with_the_metric_asked_for_only_when_it_differs() -> None:
    sp = SearchParams(nprobe=4)
    assert with_metric(sp, {"metric_type": 2}, MetricType.L2) == SearchParams(nprobe=4, metric=MetricType.IP)
    assert with_metric(sp, {"metric_type": 1}, MetricType.L2) is sp
    assert with_metric(sp, {}, MetricType.HAMMING) is sp
    assert with_metric(sp, {"metric_type": 6}, MetricType.HAMMING).metric is MetricType.SUBSTRUCTURE
    with pytest.raises(MilvusError):
        with_metric(sp, {"metric_type": 3}, MetricType.IP)


def _params(text: str) -> list[Any]:
    return [milvus_pb2.KeyValuePair(key="params", value=text)]


@pytest.mark.parametrize(
    ("collection", "extra", "descending"),
    [
        (MetricType.L2, [], False),
        (MetricType.IP, [], True),
        (MetricType.L2, _params('{"metric_type": 2}'), True),
        (MetricType.IP, _params('{"metric_type": 1, "nprobe": 8}'), False),
        (MetricType.JACCARD, _params('{"metric_type": 3}'), False),
        # Refused by every node (nothing to merge): the collection's direction.
        (MetricType.IP, _params('{"metric_type": 5}'), True),
        (MetricType.L2, _params('{"metric_type": '), False),
        (MetricType.IP, [milvus_pb2.KeyValuePair(key="other", value='{"metric_type": 1}')], True),
    ],
)
def test_the_proxy_merges_in_the_direction_of_the_metric_asked_for(collection: MetricType, extra: list[Any],
                                                                   descending: bool) -> None:
    assert merge_direction(collection, extra) is descending
