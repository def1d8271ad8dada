"""extra_params parsing and per-index-type build / search parameter rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from coordinator.errors import ErrorCode, IllegalIndexType, MilvusError
from coordinator.model import IndexType, MetricType
from node import params
from node.params import SearchParams


@dataclass
class KV:
    key: str
    value: str


def _error(fn: Callable[..., object], *args: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        fn(*args)
    return info.value


# -- parse_extra_params ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        ([KV("other", '{"nprobe": 3}')], {}),
        ([KV("params", '{"nprobe": 16}')], {"nprobe": 16}),
        ([KV("junk", "{not json"), KV("params", '{"ef": 64}')], {"ef": 64}),
        ([KV("params", "null")], {}),
        ([KV("params", "")], {}),
        ([KV("params", "   ")], {}),
        ([KV("params", "{}")], {}),
        ([KV("params", ' {"a": {"b": [1, 2]}} ')], {"a": {"b": [1, 2]}}),
        ([KV("params", '{"x": 1}'), KV("params", '{"y": 2}')], {"x": 1}),
    ],
)
def test_parse_extra_params(pairs: list[KV], expected: dict[str, Any]) -> None:
    assert params.parse_extra_params(pairs) == expected


@pytest.mark.parametrize("text", ["{not json", "{'a': 1}", '{"a": }', "[" * 100000, '{"nprobe": NaN}',
                                  '{"nlist": Infinity}', '{"m": -Infinity}'])
def test_parse_extra_params_malformed(text: str) -> None:
    err = _error(params.parse_extra_params, [KV("params", text)])
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason.startswith("Invalid params: not valid JSON")


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "list"), ("3", "int"), ('"s"', "str"), ("true", "bool")])
def test_parse_extra_params_not_an_object(text: str, kind: str) -> None:
    err = _error(params.parse_extra_params, [KV("params", text)], "search params")
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == f"Invalid search params: expected a JSON object, got {kind}"


# -- index_type -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [1, 2, 3, 4, 6, 11, 12])
def test_index_type_float_accepts(kind: int) -> None:
    assert params.index_type(kind, MetricType.L2) is IndexType(kind)
    assert params.index_type(kind, MetricType.IP) is IndexType(kind)


@pytest.mark.parametrize("value", [0, -1, 13, 100])
def test_index_type_out_of_range(value: int) -> None:
    err = _error(params.index_type, value, MetricType.L2)
    assert err.code == ErrorCode.ILLEGAL_INDEX_TYPE
    assert err.reason == f"Invalid index type: {value}. Make sure the index type is in IndexType list."


@pytest.mark.parametrize("value", [5, 7, 8, 9, 10])
@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.HAMMING])
def test_index_type_unsupported(value: int, metric: MetricType) -> None:
    err = _error(params.index_type, value, metric)
    assert err.code == ErrorCode.ILLEGAL_INDEX_TYPE
    assert err.reason == f"Unsupported index type: {value}"


@pytest.mark.parametrize("metric", [m for m in MetricType if m.is_binary])
def test_index_type_binary(metric: MetricType) -> None:
    assert params.index_type(1, metric) is IndexType.FLAT
    if metric in (MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE):
        rejected: tuple[int, ...] = (2, 3, 4, 6, 11, 12)  # structure metrics: FLAT only
    else:
        assert params.index_type(2, metric) is IndexType.IVF_FLAT
        rejected = (3, 4, 6, 11, 12)
    for value in rejected:
        err = _error(params.index_type, value, metric)
        assert err.code == ErrorCode.ILLEGAL_INDEX_TYPE
        assert err.reason == "Invalid index type for collection metric type"


# -- build_params -------------------------------------------------------------------------------------

IVF_KINDS = [IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_SQ8H]
NSG_OK = {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        (IndexType.FLAT, {"nlist": "whatever"}),
        (IndexType.FLAT, {"nlist": 1024}),
        (IndexType.FLAT, {}),
        (IndexType.IVF_FLAT, {"nlist": 1, "extra": 3}),
        (IndexType.IVF_SQ8, {"nlist": 65536}),
        (IndexType.IVF_SQ8H, {"nlist": 16384}),
        (IndexType.IVF_PQ, {"nlist": 2048, "m": 16}),
        (IndexType.IVF_PQ, {"nlist": 2048, "m": 8, "nbits": 16}),
        (IndexType.IVF_PQ, {"nlist": 1, "m": 128, "nbits": 1}),
        (IndexType.HNSW, {"M": 4, "efConstruction": 512}),
        (IndexType.HNSW, {"M": 64, "efConstruction": 8, "ef": 3}),
        (IndexType.ANNOY, {"n_trees": 1}),
        (IndexType.ANNOY, {"n_trees": 1024, "search_k": -1}),
        (IndexType.RNSG, NSG_OK),
    ],
)
def test_build_params_accepts_and_keeps_the_params_as_given(kind: IndexType, given: dict[str, Any]) -> None:
    """What is stored (and what DescribeIndex answers) is every key the client sent, as Milvus 1.1 does."""
    stored = params.build_params(kind, given, 128)
    assert stored == given
    assert stored is not given


@pytest.mark.parametrize(
    ("kind", "given", "missing"),
    [
        *[(k, {}, "nlist") for k in IVF_KINDS],
        *[(k, {"nprobe": 3}, "nlist") for k in IVF_KINDS],
        (IndexType.IVF_PQ, {"m": 16}, "nlist"),
        (IndexType.IVF_PQ, {"nlist": 16}, "m"),
        (IndexType.HNSW, {"efConstruction": 100}, "M"),
        (IndexType.HNSW, {"M": 16}, "efConstruction"),
        (IndexType.HNSW, {"m": 16, "efConstruction": 100}, "M"),
        (IndexType.ANNOY, {}, "n_trees"),
        *[(IndexType.RNSG, {k: v for k, v in NSG_OK.items() if k != drop}, drop) for drop in NSG_OK],
    ],
)
def test_build_params_missing(kind: IndexType, given: dict[str, Any], missing: str) -> None:
    err = _error(params.build_params, kind, given, 128)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == f"Parameter list must contain: {missing}"


@pytest.mark.parametrize(
    ("kind", "given", "name", "value", "low", "high"),
    [
        *[(k, {"nlist": 0}, "nlist", 0, 1, 65536) for k in IVF_KINDS],
        *[(k, {"nlist": 65537}, "nlist", 65537, 1, 65536) for k in IVF_KINDS],
        (IndexType.IVF_PQ, {"nlist": -5, "m": 8}, "nlist", -5, 1, 65536),
        (IndexType.IVF_PQ, {"nlist": 16, "m": 8, "nbits": 0}, "nbits", 0, 1, 16),
        (IndexType.IVF_PQ, {"nlist": 16, "m": 8, "nbits": 17}, "nbits", 17, 1, 16),
        (IndexType.HNSW, {"M": 3, "efConstruction": 100}, "M", 3, 4, 64),
        (IndexType.HNSW, {"M": 65, "efConstruction": 100}, "M", 65, 4, 64),
        (IndexType.HNSW, {"M": 16, "efConstruction": 7}, "efConstruction", 7, 8, 512),
        (IndexType.HNSW, {"M": 16, "efConstruction": 513}, "efConstruction", 513, 8, 512),
        (IndexType.ANNOY, {"n_trees": 0}, "n_trees", 0, 1, 1024),
        (IndexType.ANNOY, {"n_trees": 1025}, "n_trees", 1025, 1, 1024),
        (IndexType.RNSG, {**NSG_OK, "search_length": 9}, "search_length", 9, 10, 300),
        (IndexType.RNSG, {**NSG_OK, "out_degree": 301}, "out_degree", 301, 5, 300),
        (IndexType.RNSG, {**NSG_OK, "candidate_pool_size": 49}, "candidate_pool_size", 49, 50, 1000),
        (IndexType.RNSG, {**NSG_OK, "knng": 4}, "knng", 4, 5, 300),
    ],
)
def test_build_params_range(
    kind: IndexType, given: dict[str, Any], name: str, value: int, low: int, high: int
) -> None:
    err = _error(params.build_params, kind, given, 128)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason == f"Invalid {name} value: {value}. Valid range is [{low}, {high}]"


@pytest.mark.parametrize("bad", [True, False, 16.0, 16.5, "16", None, [16], {"v": 16}])
@pytest.mark.parametrize(
    ("kind", "base", "name"),
    [
        (IndexType.IVF_FLAT, {}, "nlist"),
        (IndexType.IVF_PQ, {"nlist": 16}, "m"),
        (IndexType.IVF_PQ, {"nlist": 16, "m": 8}, "nbits"),
        (IndexType.HNSW, {"efConstruction": 100}, "M"),
        (IndexType.ANNOY, {}, "n_trees"),
        (IndexType.RNSG, NSG_OK, "knng"),
    ],
)
def test_build_params_not_integer(kind: IndexType, base: dict[str, Any], name: str, bad: object) -> None:
    err = _error(params.build_params, kind, {**base, name: bad}, 128)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason.startswith(f"Invalid {name}: ")


@pytest.mark.parametrize(("dim", "m"), [(128, 0), (128, 3), (100, 8), (8, 16), (10, 7)])
def test_build_params_pq_m_must_divide_dimension(dim: int, m: int) -> None:
    err = _error(params.build_params, IndexType.IVF_PQ, {"nlist": 16, "m": m}, dim)
    assert err.code == ErrorCode.ILLEGAL_DIMENSION
    assert err.reason == "Invalid collection dimension, dimension can not be divided by m"


def test_build_params_pq_negative_m_is_a_range_error() -> None:
    err = _error(params.build_params, IndexType.IVF_PQ, {"nlist": 16, "m": -4}, 128)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason.startswith("Invalid m value: -4.")


# -- search_params ------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [{}, {"nprobe": 0}, {"ef": "x"}, {"nprobe": True}])
def test_search_params_flat_ignores(given: dict[str, Any]) -> None:
    assert params.search_params(IndexType.FLAT, given, 10) == SearchParams()


@pytest.mark.parametrize("kind", [*IVF_KINDS, IndexType.IVF_PQ])
def test_search_params_ivf(kind: IndexType) -> None:
    assert params.search_params(kind, {"nprobe": 1}, 10) == SearchParams(nprobe=1)
    assert params.search_params(kind, {"nprobe": 65536, "ef": 1}, 10) == SearchParams(nprobe=65536)
    err = _error(params.search_params, kind, {}, 10)
    assert (err.code, err.reason) == (ErrorCode.ILLEGAL_ARGUMENT, "Parameter list must contain: nprobe")
    for bad in (0, 65537):
        err = _error(params.search_params, kind, {"nprobe": bad}, 10)
        assert err.code == ErrorCode.ILLEGAL_ARGUMENT
        assert err.reason == f"Invalid nprobe value: {bad}. Valid range is [1, 65536]"
    for wrong in (True, 2.0, "8"):
        err = _error(params.search_params, kind, {"nprobe": wrong}, 10)
        assert err.code == ErrorCode.ILLEGAL_ARGUMENT
        assert err.reason.startswith("Invalid nprobe: ")


def test_search_params_hnsw_ef_at_least_topk() -> None:
    assert params.search_params(IndexType.HNSW, {"ef": 10}, 10) == SearchParams(ef=10)
    assert params.search_params(IndexType.HNSW, {"ef": 32768}, 16384) == SearchParams(ef=32768)
    err = _error(params.search_params, IndexType.HNSW, {}, 10)
    assert err.reason == "Parameter list must contain: ef"
    for ef, k in ((9, 10), (1, 100), (32769, 1)):
        err = _error(params.search_params, IndexType.HNSW, {"ef": ef}, k)
        assert err.code == ErrorCode.ILLEGAL_ARGUMENT
        assert err.reason == f"Invalid ef value: {ef}. Valid range is [{k}, 32768]"


@pytest.mark.parametrize("search_k", [-1, 0, 1, 2**63 - 1, -(2**63)])
def test_search_params_annoy_accepts(search_k: int) -> None:
    assert params.search_params(IndexType.ANNOY, {"search_k": search_k}, 10) == SearchParams(search_k=search_k)


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, True, 1.0, "-1", None])
def test_search_params_annoy_rejects(bad: object) -> None:
    err = _error(params.search_params, IndexType.ANNOY, {"search_k": bad}, 10)
    assert err.code == ErrorCode.ILLEGAL_ARGUMENT
    assert err.reason.startswith("Invalid search_k: ")


def test_search_params_annoy_requires_key() -> None:
    err = _error(params.search_params, IndexType.ANNOY, {}, 10)
    assert (err.code, err.reason) == (ErrorCode.ILLEGAL_ARGUMENT, "Parameter list must contain: search_k")


def test_search_params_nsg() -> None:
    assert params.search_params(IndexType.RNSG, {"search_length": 100}, 10) == SearchParams(search_length=100)
    err = _error(params.search_params, IndexType.RNSG, {"search_length": 301}, 10)
    assert err.reason == "Invalid search_length value: 301. Valid range is [10, 300]"
    err = _error(params.search_params, IndexType.RNSG, {}, 10)
    assert err.reason == "Parameter list must contain: search_length"


def test_to_json_is_compact() -> None:
    assert params.to_json({"nlist": 1024}) == '{"nlist":1024}'
    assert params.to_json({}) == "{}"


@pytest.mark.parametrize("metric", [MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE])
def test_structure_metrics_accept_only_flat(metric: MetricType) -> None:
    assert params.index_type(int(IndexType.FLAT), metric) is IndexType.FLAT
    with pytest.raises(IllegalIndexType, match="Invalid index type for collection metric type"):
        params.index_type(int(IndexType.IVF_FLAT), metric)
