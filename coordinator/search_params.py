"""What node and proxy both read from a request's ``extra_params`` (pure): the JSON object under the key
``params``, and the search-time metric a search of exactly searched (FLAT) segments may ask for.

Milvus 1.1 lets the search params of a segment searched as IDMAP / BIN_IDMAP (a FLAT collection's, or a segment
not indexed yet) name another metric of the same kind, ``{"metric_type": 2}``: an L2 collection then answers
inner products (descending), a binary one any of HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE and SUPERSTRUCTURE.
Indexed segments keep the collection's metric (their index was built for it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from coordinator.errors import IllegalArgument
from coordinator.model import MetricType

METRIC_KEY = "metric_type"
FLOAT_METRICS = frozenset({MetricType.L2, MetricType.IP})
BINARY_METRICS = frozenset(m for m in MetricType if m.is_binary)
SHOWN_CHARS = 64  # of a refused value, in the reason


class KeyValue(Protocol):
    key: str
    value: str


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser accepts them; Milvus 1.1's does not)."""
    raise ValueError(f"{name} is not a JSON value")


def parse_extra_params(pairs: Iterable[KeyValue], what: str = "params") -> dict[str, Any]:
    """Return the JSON object under key ``params`` ({} when absent); other keys are ignored."""
    for pair in pairs:
        if pair.key != "params":
            continue
        text = pair.value.strip()
        if not text:
            return {}
        try:
            value = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise IllegalArgument(f"Invalid {what}: not valid JSON ({exc})") from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise IllegalArgument(f"Invalid {what}: expected a JSON object, got {type(value).__name__}")
        return value
    return {}


def requested_metric(params: Mapping[str, Any], collection_metric: MetricType) -> MetricType | None:
    """The metric a search asks for in its params (``metric_type``), or None when it names none.

    A float collection accepts 1 (L2) and 2 (IP), a binary one 3 to 7; anything else, a value that is not a
    JSON integer included, is ILLEGAL_ARGUMENT "Illegal metric type: ..." (Milvus 1.1's code; its reason is
    the literal "Illegal metric type" garbled by the value, see DESIGN 8.4).
    """
    if METRIC_KEY not in params:
        return None
    raw = params[METRIC_KEY]
    allowed = BINARY_METRICS if collection_metric.is_binary else FLOAT_METRICS
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in {int(m) for m in allowed}:
        return MetricType(raw)
    if collection_metric.is_binary:
        accepted = "3 (HAMMING), 4 (JACCARD), 5 (TANIMOTO), 6 (SUBSTRUCTURE) or 7 (SUPERSTRUCTURE)"
        kind = "binary"
    else:
        accepted = "1 (L2) or 2 (IP)"
        kind = "float"
    shown = json.dumps(raw, ensure_ascii=False) if not isinstance(raw, int) or isinstance(raw, bool) else str(raw)
    if len(shown) > SHOWN_CHARS:
        shown = shown[:SHOWN_CHARS] + "..."
    raise IllegalArgument(f"Illegal metric type: {shown}. A search of a {kind} collection may ask for "
                          f"metric_type {accepted}.")


def search_metric(params: Mapping[str, Any], collection_metric: MetricType) -> MetricType:
    """The metric whose direction orders the merged results of a search: the requested one, else the
    collection's."""
    return requested_metric(params, collection_metric) or collection_metric
