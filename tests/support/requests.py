"""Typed request builders, reply decoders and an exact numpy search oracle for node tests.

Every call made through these helpers carries a gRPC deadline (:data:`TIMEOUT`), so a hung node
fails the test instead of hanging it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2, status_pb2

TIMEOUT = 60.0  # seconds, the deadline of every call made through this module

# MetricType values of the wire protocol.
L2, IP, HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE, SUPERSTRUCTURE = range(1, 8)
METRIC_NAMES = {
    L2: "L2", IP: "IP", HAMMING: "HAMMING", JACCARD: "JACCARD", TANIMOTO: "TANIMOTO",
    SUBSTRUCTURE: "SUBSTRUCTURE", SUPERSTRUCTURE: "SUPERSTRUCTURE",
}
BINARY_METRICS = frozenset({HAMMING, JACCARD, TANIMOTO, SUBSTRUCTURE, SUPERSTRUCTURE})

NO_ID = -1
SUCCESS = 0

_names = itertools.count(1)


def unique_name(prefix: str = "c") -> str:
    """A collection name not used before in this test process."""
    return f"{prefix}_{next(_names)}"


class TimedStub:
    """A MilvusServiceStub whose every call gets a deadline unless one is given."""

    def __init__(self, stub: Any, timeout: float = TIMEOUT) -> None:
        self._stub = stub
        self._timeout = timeout

    def __getattr__(self, rpc: str) -> Callable[..., Any]:
        method = getattr(self._stub, rpc)

        def call(request: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", self._timeout)
            return method(request, **kwargs)

        return call


def _call(stub: Any, rpc: str, request: Any) -> Any:
    return getattr(stub, rpc)(request, timeout=TIMEOUT)


# -- statuses ------------------------------------------------------------------------------------


def status_of(reply: Any) -> Any:
    """The ``Status`` of a reply (the reply itself for RPCs that return a bare Status)."""
    if isinstance(reply, status_pb2.Status):
        return reply
    return reply.status


def assert_status(reply: Any, code: int, reason: str | None = None) -> Any:
    """Assert the in-band status of ``reply`` (and its exact reason when given); returns ``reply``."""
    st = status_of(reply)
    assert (st.error_code, st.reason if reason is not None else None) == (code, reason), (
        f"expected status ({code}, {reason!r}), got ({st.error_code}, {st.reason!r})"
    )
    return reply


def ok(reply: Any) -> Any:
    """Assert that ``reply`` carries SUCCESS; returns it."""
    st = status_of(reply)
    assert st.error_code == SUCCESS, f"expected SUCCESS, got ({st.error_code}, {st.reason!r})"
    return reply


# -- request builders ----------------------------------------------------------------------------


def rows(array: np.ndarray) -> list[Any]:
    """RowRecords of a 2-D array: uint8 rows become ``binary_data``, anything else ``float_data``."""
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return [milvus_pb2.RowRecord(binary_data=row.tobytes()) for row in arr]
    floats = np.asarray(arr, dtype=np.float32)
    return [milvus_pb2.RowRecord(float_data=row.tolist()) for row in floats]


def extra_params(params: Mapping[str, Any] | str | None) -> list[Any]:
    """``[KeyValuePair("params", json)]``; a string is sent verbatim (to send malformed JSON)."""
    if params is None:
        return []
    text = params if isinstance(params, str) else json.dumps(dict(params))
    return [milvus_pb2.KeyValuePair(key="params", value=text)]


def search_param(
    name: str, queries: np.ndarray, topk: int, tags: Sequence[str] = (),
    params: Mapping[str, Any] | str | None = None,
) -> Any:
    return milvus_pb2.SearchParam(
        collection_name=name, partition_tag_array=list(tags), query_record_array=rows(queries), topk=topk,
        extra_params=extra_params(params),
    )


# -- calls ---------------------------------------------------------------------------------------


def create(stub: Any, name: str, dim: int, metric: int, ifs: int = 1024) -> Any:
    """CreateCollection; returns the Status."""
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=dim, index_file_size=ifs, metric_type=metric)
    return _call(stub, "CreateCollection", schema)


def insert(stub: Any, name: str, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None,
           tag: str = "") -> Any:
    """Insert; returns the VectorIds reply."""
    request = milvus_pb2.InsertParam(collection_name=name, row_record_array=rows(vectors), partition_tag=tag)
    if ids is not None:
        request.row_id_array.extend(int(i) for i in ids)
    return _call(stub, "Insert", request)


def insert_ok(stub: Any, name: str, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None,
              tag: str = "") -> np.ndarray:
    """Insert that must succeed; returns the row ids as an int64 array."""
    reply = ok(insert(stub, name, vectors, ids, tag))
    return np.array(reply.vector_id_array, dtype=np.int64)


def flush(stub: Any, *names: str) -> Any:
    """Flush the named collections (every collection when none is named); returns the Status."""
    return _call(stub, "Flush", milvus_pb2.FlushParam(collection_name_array=list(names)))


def delete(stub: Any, name: str, ids: Iterable[int], tag: str = "") -> Any:
    request = milvus_pb2.DeleteByIDParam(collection_name=name, id_array=[int(i) for i in ids], partition_tag=tag)
    return _call(stub, "DeleteByID", request)


def count(stub: Any, name: str) -> int:
    reply = ok(_call(stub, "CountCollection", milvus_pb2.CollectionName(collection_name=name)))
    return int(reply.collection_row_count)


def info(stub: Any, name: str) -> dict[str, Any]:
    """ShowCollectionInfo, parsed."""
    reply = ok(_call(stub, "ShowCollectionInfo", milvus_pb2.CollectionName(collection_name=name)))
    parsed: dict[str, Any] = json.loads(reply.json_info)
    return parsed


def segments(stub: Any, name: str) -> list[dict[str, Any]]:
    """Every segment entry of ShowCollectionInfo, over all partitions."""
    return [seg for part in info(stub, name)["partitions"] for seg in (part["segments"] or [])]


def get_vectors(stub: Any, name: str, ids: Iterable[int], tag: str = "") -> Any:
    request = milvus_pb2.VectorsIdentity(collection_name=name, id_array=[int(i) for i in ids], partition_tag=tag)
    return _call(stub, "GetVectorsByID", request)


def decode_topk(reply: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """(status, ids (nq, k), distances (nq, k)) of a TopKQueryResult, checking that it is rectangular."""
    nq = int(reply.row_num)
    ids = np.array(reply.ids, dtype=np.int64)
    dist = np.array(reply.distances, dtype=np.float32)
    assert ids.size == dist.size, f"{ids.size} ids but {dist.size} distances"
    if nq == 0:
        assert ids.size == 0, f"row_num 0 with {ids.size} ids"
        return reply.status, ids.reshape(0, 0), dist.reshape(0, 0)
    assert ids.size % nq == 0, f"result not rectangular: {ids.size} ids for {nq} rows"
    k = ids.size // nq
    return reply.status, ids.reshape(nq, k), dist.reshape(nq, k)


def search(
    stub: Any, name: str, queries: np.ndarray, topk: int, tags: Sequence[str] = (),
    params: Mapping[str, Any] | str | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Search; returns (status, ids (nq, k), distances (nq, k))."""
    return decode_topk(_call(stub, "Search", search_param(name, queries, topk, tags, params)))


def search_by_id(
    stub: Any, name: str, ids: Iterable[int], topk: int, tags: Sequence[str] = (),
    params: Mapping[str, Any] | str | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    request = milvus_pb2.SearchByIDParam(
        collection_name=name, partition_tag_array=list(tags), id_array=[int(i) for i in ids], topk=topk,
        extra_params=extra_params(params),
    )
    return decode_topk(_call(stub, "SearchByID", request))


def search_in_files(
    stub: Any, name: str, file_ids: Iterable[int | str], queries: np.ndarray, topk: int,
    params: Mapping[str, Any] | str | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    request = milvus_pb2.SearchInFilesParam(
        file_id_array=[str(f) for f in file_ids], search_param=search_param(name, queries, topk, (), params)
    )
    return decode_topk(_call(stub, "SearchInFiles", request))


def cmd(stub: Any, text: str) -> Any:
    return _call(stub, "Cmd", milvus_pb2.Command(cmd=text))


# -- exact oracle --------------------------------------------------------------------------------


def hole_distance(metric: int) -> float:
    """The distance next to a -1 id: the worst float32 value for the metric."""
    info32 = np.finfo(np.float32)
    return float(info32.min if metric == IP else info32.max)


def exact_distances(base: np.ndarray, queries: np.ndarray, metric: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (nq, n) in float64 and which of them are candidates at all (SUB/SUPERSTRUCTURE)."""
    if metric in (L2, IP):
        b = np.asarray(base, dtype=np.float64)
        q = np.asarray(queries, dtype=np.float64)
        dots = q @ b.T
        if metric == IP:
            return dots, np.ones(dots.shape, dtype=bool)
        l2 = (q * q).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * dots
        return np.maximum(l2, 0.0), np.ones(dots.shape, dtype=bool)
    b8 = np.asarray(base, dtype=np.uint8)
    q8 = np.asarray(queries, dtype=np.uint8)
    inter = np.bitwise_count(q8[:, None, :] & b8[None, :, :]).sum(axis=2, dtype=np.int64).astype(np.float64)
    q_pop = np.bitwise_count(q8).sum(axis=1, dtype=np.int64).astype(np.float64)[:, None]
    b_pop = np.bitwise_count(b8).sum(axis=1, dtype=np.int64).astype(np.float64)[None, :]
    union = q_pop + b_pop - inter
    everything = np.ones(inter.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == HAMMING:
            return q_pop + b_pop - 2.0 * inter, everything
        if metric == JACCARD:
            return np.where(union > 0, 1.0 - inter / union, 0.0), everything
        if metric == TANIMOTO:
            return np.where(union > 0, -np.log2(inter / union), 0.0), everything
        # As Milvus 1.1's faiss fork (Sub/SuperstructureComputer with the query as ``a``): SUBSTRUCTURE
        # keeps rows of which the query is a substructure (q & r == q), SUPERSTRUCTURE rows of which
        # it is a superstructure (q & r == r). Every match is at distance 0.
        if metric == SUBSTRUCTURE:
            return np.where(q_pop > 0, 1.0 - inter / q_pop, 0.0), inter == q_pop
        if metric == SUPERSTRUCTURE:
            return np.where(b_pop > 0, 1.0 - inter / b_pop, 0.0), inter == b_pop
    raise ValueError(f"unknown metric {metric}")


def oracle(base: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int,
           metric: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``queries`` over ``base`` rows (whose ids are ``ids``).

    Width is ``min(k, rows)`` like the node's; rows with fewer candidates are padded with -1 ids and
    the metric's hole distance. Order: distance ascending (IP descending), then id.
    """
    ids = np.asarray(ids, dtype=np.int64)
    nq = int(np.asarray(queries).shape[0])
    width = min(k, int(ids.shape[0]))
    out_ids = np.full((nq, width), NO_ID, dtype=np.int64)
    out_dist = np.full((nq, width), hole_distance(metric), dtype=np.float64)
    if width == 0:
        return out_ids, out_dist
    dist, valid = exact_distances(base, queries, metric)
    for i in range(nq):
        cand = np.flatnonzero(valid[i])
        d = dist[i, cand]
        order = np.lexsort((ids[cand], -d if metric == IP else d))[:width]
        out_ids[i, : order.size] = ids[cand][order]
        out_dist[i, : order.size] = d[order]
    return out_ids, out_dist


def merge_topk(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int,
               metric: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge partial results of the same queries (e.g. one per segment) into the best ``k``."""
    widths = sum(p[0].shape[1] for p in parts)
    nq = parts[0][0].shape[0]
    width = min(k, widths)
    ids = np.concatenate([p[0] for p in parts], axis=1)
    dist = np.concatenate([np.asarray(p[1], dtype=np.float64) for p in parts], axis=1)
    out_ids = np.full((nq, width), NO_ID, dtype=np.int64)
    out_dist = np.full((nq, width), hole_distance(metric), dtype=np.float64)
    for i in range(nq):
        live = np.flatnonzero(ids[i] != NO_ID)
        d = dist[i, live]
        order = np.lexsort((ids[i, live], -d if metric == IP else d))[:width]
        out_ids[i, : order.size] = ids[i, live][order]
        out_dist[i, : order.size] = d[order]
    return out_ids, out_dist


def _close(a: float, b: float, rtol: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def assert_topk_matches(got_ids: np.ndarray, got_dist: np.ndarray, ref_ids: np.ndarray, ref_dist: np.ndarray,
                        rtol: float = 1e-4) -> None:
    """Assert a top-k result equals a reference, tolerating ties.

    Distances must agree position by position within ``rtol`` (relative, absolute below 1). Ids must
    agree except inside a group of equal distances, where only the set of ids must agree; a group
    that reaches the end of a full row may be completed by other (equally distant) ids. -1 holes
    must be at the same positions.
    """
    assert got_ids.shape == ref_ids.shape, f"result shape {got_ids.shape}, expected {ref_ids.shape}"
    assert got_dist.shape == ref_dist.shape, f"distances shape {got_dist.shape}, expected {ref_dist.shape}"
    width = int(ref_ids.shape[1]) if ref_ids.ndim == 2 else 0
    for i in range(ref_ids.shape[0]):
        g_ids, r_ids = got_ids[i], ref_ids[i]
        g_d, r_d = got_dist[i].astype(np.float64), ref_dist[i].astype(np.float64)
        live = int((r_ids != NO_ID).sum())
        assert (r_ids[:live] != NO_ID).all(), f"reference row {i} has holes before live ids"
        assert (g_ids[:live] != NO_ID).all() and (g_ids[live:] == NO_ID).all(), (
            f"row {i}: holes at {np.flatnonzero(g_ids == NO_ID).tolist()}, expected from position {live}\n"
            f"got {g_ids.tolist()}\nref {r_ids.tolist()}"
        )
        assert len(set(g_ids[:live].tolist())) == live, f"row {i}: duplicate ids {g_ids.tolist()}"
        for j in range(live):
            assert _close(g_d[j], r_d[j], rtol), (
                f"row {i} position {j}: distance {g_d[j]} expected {r_d[j]}\n"
                f"got {g_d[:live].tolist()}\nref {r_d[:live].tolist()}"
            )
        start = 0
        while start < live:
            end = start + 1
            while end < live and _close(r_d[end], r_d[end - 1], rtol):
                end += 1
            if not (end == live == width):
                got_group, ref_group = set(g_ids[start:end].tolist()), set(r_ids[start:end].tolist())
                assert got_group == ref_group, (
                    f"row {i} positions {start}..{end - 1} (distance {r_d[start]}): ids {sorted(got_group)} "
                    f"expected {sorted(ref_group)}"
                )
            start = end


def assert_search_exact(got_ids: np.ndarray, got_dist: np.ndarray, base: np.ndarray, ids: np.ndarray,
                        queries: np.ndarray, k: int, metric: int, rtol: float = 1e-4) -> None:
    """Assert a search result is the exact top-k of ``queries`` over ``base`` (ids ``ids``).

    On top of :func:`assert_topk_matches` against :func:`oracle`, every returned id must be a row
    at the reported distance from its query, which also pins ids tied at the end of a full row.
    """
    assert_topk_matches(got_ids, got_dist, *oracle(base, ids, queries, k, metric), rtol=rtol)
    dist, valid = exact_distances(base, queries, metric)
    rows_of: dict[int, list[int]] = {}
    for row, row_id in enumerate(np.asarray(ids).tolist()):
        rows_of.setdefault(row_id, []).append(row)
    for i in range(got_ids.shape[0]):
        for j in np.flatnonzero(got_ids[i] != NO_ID):
            row_id, reported = int(got_ids[i, j]), float(got_dist[i, j])
            rows = rows_of.get(row_id, [])
            assert any(valid[i, r] and _close(reported, float(dist[i, r]), rtol) for r in rows), (
                f"row {i} position {j}: id {row_id} is not a candidate at distance {reported}"
            )
