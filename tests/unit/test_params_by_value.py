"""ParamsByValue: one search-parameter object per value, shared; a bounded number remembered."""

from __future__ import annotations

from node.index_base import ParamsByValue
from node.index_graph import hnsw_params
from node.index_ivf import ivf_params


def test_one_object_per_value_made_once() -> None:
    made: list[int] = []

    def make(value: int) -> object:
        made.append(value)
        return object()

    cache = ParamsByValue(make, kept=2)
    first = cache.get(8)
    assert cache.get(8) is first and made == [8]
    assert cache.get(16) is not first
    assert cache.get(32) is not cache.get(32)  # past ``kept``: made again each time, never remembered
    assert made == [8, 16, 32, 32]


def test_the_faiss_parameters_carry_the_value() -> None:
    assert ParamsByValue(ivf_params).get(64).nprobe == 64
    assert ParamsByValue(hnsw_params).get(48).efSearch == 48
    assert ParamsByValue(ivf_params).get(4).sel is None
