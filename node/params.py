"""Parsing of ``extra_params`` and validation of index build / search parameters (pure)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from coordinator.errors import IllegalArgument, IllegalDimension, IllegalIndexType
from coordinator.model import IndexType, MetricType
from coordinator.search_params import KeyValue, parse_extra_params, requested_metric

__all__ = [
    "SearchParams",
    "build_params",
    "index_type",
    "params_text",
    "parse_extra_params",
    "search_params",
    "search_settings",
    "to_json",
    "with_metric",
]


@dataclass(frozen=True, slots=True)
class IntRange:
    name: str
    low: int
    high: int


def _int_param(params: Mapping[str, Any], rule: IntRange, *, required: bool = True) -> int | None:
    if rule.name not in params:
        if required:
            raise IllegalArgument(f"Parameter list must contain: {rule.name}")
        return None
    raw = params[rule.name]
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise IllegalArgument(f"Invalid {rule.name}: value {raw!r} is not an integer")
    if raw < rule.low or raw > rule.high:
        raise IllegalArgument(f"Invalid {rule.name} value: {raw}. Valid range is [{rule.low}, {rule.high}]")
    return raw


NLIST = IntRange("nlist", 1, 65536)
NPROBE = IntRange("nprobe", 1, 65536)
M_HNSW = IntRange("M", 4, 64)
EF_CONSTRUCTION = IntRange("efConstruction", 8, 512)
N_TREES = IntRange("n_trees", 1, 1024)
SEARCH_LENGTH = IntRange("search_length", 10, 300)
OUT_DEGREE = IntRange("out_degree", 5, 300)
CANDIDATE_POOL = IntRange("candidate_pool_size", 50, 1000)
KNNG = IntRange("knng", 5, 300)
PQ_M = IntRange("m", 0, 2**31 - 1)
PQ_NBITS = IntRange("nbits", 1, 16)
EF_MAX = 32768

BINARY_INDEXES = frozenset({IndexType.FLAT, IndexType.IVF_FLAT})


def index_type(value: int, metric: MetricType) -> IndexType:
    """Validate an ``index_type`` from a request against the collection's metric."""
    try:
        kind = IndexType(value)
    except ValueError:
        if 1 <= value <= 12:
            # 7..10 are SPTAG / internal binary engines: Milvus 1.1 CPU serves none of them.
            raise IllegalIndexType(f"Unsupported index type: {value}") from None
        raise IllegalIndexType(
            f"Invalid index type: {value}. Make sure the index type is in IndexType list."
        ) from None
    if kind is IndexType.IVF_SQ8H:
        raise IllegalIndexType(f"Unsupported index type: {int(kind)}")
    if metric.is_binary and kind not in BINARY_INDEXES:
        raise IllegalIndexType("Invalid index type for collection metric type")
    if metric in (MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE) and kind is not IndexType.FLAT:
        # Milvus 1.1 accepts the request and fails at build time; refuse it up front instead.
        raise IllegalIndexType("Invalid index type for collection metric type")
    return kind


def build_params(kind: IndexType, params: Mapping[str, Any], dimension: int) -> dict[str, Any]:
    """Validate the build parameters of an index type; returns what the collection stores: the parameters
    exactly as given (every key, FLAT's too), which DescribeIndex answers as Milvus 1.1 does."""
    if kind in (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_SQ8H):
        _int_param(params, NLIST)
    elif kind is IndexType.IVF_PQ:
        _int_param(params, NLIST)
        m = _int_param(params, PQ_M)
        _int_param(params, PQ_NBITS, required=False)
        if not m or dimension % m != 0:
            raise IllegalDimension("Invalid collection dimension, dimension can not be divided by m")
    elif kind is IndexType.HNSW:
        _int_param(params, M_HNSW)
        _int_param(params, EF_CONSTRUCTION)
    elif kind is IndexType.ANNOY:
        _int_param(params, N_TREES)
    elif kind is IndexType.RNSG:
        for rule in (SEARCH_LENGTH, OUT_DEGREE, CANDIDATE_POOL, KNNG):
            _int_param(params, rule)
    elif kind is not IndexType.FLAT:
        raise IllegalIndexType(f"Unsupported index type: {int(kind)}")
    return dict(params)


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Validated search parameters; only the one matching the collection's index type is set, and ``metric``
    when the search asks for another metric than the collection's (honoured by exactly searched segments)."""

    nprobe: int | None = None
    ef: int | None = None
    search_k: int | None = None
    search_length: int | None = None
    metric: MetricType | None = None


def with_metric(sp: SearchParams, raw: Mapping[str, Any], collection_metric: MetricType) -> SearchParams:
    """``sp`` with the metric the search params ``raw`` ask for (``metric_type``), validated against the
    collection's kind (float or binary); unchanged when they name none or the collection's own."""
    metric = requested_metric(raw, collection_metric)
    if metric is None or metric is collection_metric:
        return sp
    return replace(sp, metric=metric)


def search_params(kind: IndexType, params: Mapping[str, Any], topk: int) -> SearchParams:
    """Validate search parameters against the collection's current index type."""
    if kind is IndexType.FLAT:
        return SearchParams()
    if kind in (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_SQ8H, IndexType.IVF_PQ):
        return SearchParams(nprobe=_int_param(params, NPROBE))
    if kind is IndexType.HNSW:
        return SearchParams(ef=_int_param(params, IntRange("ef", topk, EF_MAX)))
    if kind is IndexType.ANNOY:
        if "search_k" not in params:
            raise IllegalArgument("Parameter list must contain: search_k")
        raw = params["search_k"]
        if isinstance(raw, bool) or not isinstance(raw, int) or not -(2**63) <= raw < 2**63:
            raise IllegalArgument(f"Invalid search_k: value {raw!r} is not an integer")
        return SearchParams(search_k=raw)
    if kind is IndexType.RNSG:
        return SearchParams(search_length=_int_param(params, SEARCH_LENGTH))
    return SearchParams()


# Search params texts up to this long are parsed and validated once per (index type, text, topk) and remembered.
CACHED_PARAMS_CHARS = 256


class _Pair:
    """The ``params`` entry of a request's extra_params (what :func:`parse_extra_params` reads)."""

    __slots__ = ("key", "value")

    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self.value = value


def search_settings(kind: IndexType, pairs: Iterable[KeyValue], topk: int) -> tuple[Mapping[str, Any], SearchParams]:
    """A search's ``extra_params`` parsed (read-only) and validated against the index type, as
    :func:`parse_extra_params` then :func:`search_params` do; short texts are remembered, so repeated searches with
    the same params skip the JSON parse and the checks (errors are raised each time, never remembered)."""
    text = params_text(pairs)
    if text is not None and len(text) > CACHED_PARAMS_CHARS:
        return _search_settings.__wrapped__(kind, text, topk)
    return _search_settings(kind, text, topk)


def params_text(pairs: Iterable[KeyValue]) -> str | None:
    """The text under the key ``params`` (the first one), None when there is none."""
    for pair in pairs:
        if pair.key == "params":
            return pair.value
    return None


@functools.lru_cache(maxsize=1024)
def _search_settings(kind: IndexType, text: str | None, topk: int) -> tuple[Mapping[str, Any], SearchParams]:
    raw = parse_extra_params(() if text is None else (_Pair("params", text),), "search params")
    return MappingProxyType(raw), search_params(kind, raw, topk)


def to_json(params: Mapping[str, Any]) -> str:
    """Compact JSON as DescribeIndex returns it."""
    return json.dumps(dict(params), separators=(",", ":"))
