"""Filtered-search test helpers: a hybrid collection filled over partitions and segments (with deletes), JSON DSL
queries, and the exact oracle: brute force over the rows that pass the filter (decided row by row by the reference
evaluator of tests/support/hybrid.py, independent of the server's vectorised code), are live and lie in the searched
partitions."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coordinator.hybrid.schema import HybridSchema
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from tests.support.hybrid import SCALARS, dsl_row, rows_of
from tests.support.requests import (
    BINARY_METRICS,
    NO_ID,
    SUCCESS,
    TIMEOUT,
    assert_search_exact,
    decode_topk,
    ok,
)

VECTOR = "v"


@dataclass
class Filled:
    """What was stored: every inserted row (ids, vectors, scalar columns, partition tag) and which are deleted."""

    schema: HybridSchema
    metric: int
    ids: np.ndarray
    vectors: np.ndarray
    columns: dict[str, np.ndarray]
    tags: np.ndarray  # the partition tag of each row ("" = _default)
    deleted: np.ndarray  # bool per row
    rows: list[dict[str, float]]  # row dicts for the reference evaluator

    @property
    def name(self) -> str:
        return self.schema.collection_name

    @property
    def binary(self) -> bool:
        return self.metric in BINARY_METRICS


def scalar_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Columns of every scalar type with many repeated values (terms and equalities match several rows)."""
    big = rng.integers(0, 10**6, n).astype(np.int64)
    big[: min(n, 4)] = [2**62, -(2**62), 2**63 - 1, -(2**63)][: min(n, 4)]
    return {
        "i8": rng.integers(-5, 6, n).astype(np.int8),
        "i16": rng.integers(-300, 301, n).astype(np.int16),
        "i32": rng.integers(0, 1000, n).astype(np.int32),
        "i64": big,
        "b": rng.integers(0, 2, n).astype(bool),
        "f": (rng.integers(-1000, 1000, n) / 10).astype(np.float32),
        "d": rng.uniform(-1.0, 1.0, n),
    }


def vectors(rng: np.random.Generator, n: int, metric: int, dim: int, clusters: int = 0) -> np.ndarray:
    """Random bits, Gaussian floats, or (``clusters``) floats around that many Gaussian centres."""
    if metric in BINARY_METRICS:
        return rng.integers(0, 256, (n, dim // 8), dtype=np.uint8)
    if clusters:
        centres = np.random.default_rng(clusters).standard_normal((clusters, dim)) * 3
        return (centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))).astype(np.float32)
    return rng.standard_normal((n, dim)).astype(np.float32)


def create(stub: Any, name: str, metric: int, dim: int, index_file_size: int = 1024) -> HybridSchema:
    fields = [hc.scalar_field(n, t) for n, t in SCALARS.items()]
    fields.append(hc.vector_field(VECTOR, dim, metric, index_file_size=index_file_size))
    request = hc.mapping(name, fields)
    ok(stub.CreateHybridCollection(request, timeout=TIMEOUT))
    return hc.schema_of(request)


def fill(stub: Any, name: str, metric: int, dim: int, batches: Sequence[tuple[str, int]], delete: int = 0,
         seed: int = 0, index_file_size: int = 1024, clusters: int = 0) -> Filled:
    """A hybrid collection with every scalar type: one segment per batch (``(partition tag, rows)``, each flushed),
    then ``delete`` random rows deleted and flushed. Vectors as :func:`vectors` makes them."""
    rng = np.random.default_rng(seed)
    schema = create(stub, name, metric, dim, index_file_size)
    for tag in sorted({t for t, _ in batches if t}):
        ok(stub.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag=tag), timeout=TIMEOUT))
    ids, vecs, cols, tags = [], [], [], []
    for tag, n in batches:
        part_cols = scalar_columns(rng, n)
        part_vecs = vectors(rng, n, metric, dim, clusters)
        reply = stub.InsertEntity(hc.insert_param(schema, part_cols, part_vecs, None, tag), timeout=TIMEOUT)
        assert reply.status.error_code == SUCCESS, reply.status.reason
        ids.append(np.array(reply.entity_id_array, dtype=np.int64))
        vecs.append(part_vecs)
        cols.append(part_cols)
        tags.append(np.full(n, tag, dtype=object))
        flush(stub, name)
    all_ids = np.concatenate(ids)
    columns = {f: np.concatenate([c[f] for c in cols]) for f in SCALARS}
    deleted = np.zeros(all_ids.size, dtype=bool)
    if delete:
        gone = rng.choice(all_ids.size, delete, replace=False)
        deleted[gone] = True
        ok(stub.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=name, id_array=all_ids[gone].tolist()),
                           timeout=TIMEOUT))
        flush(stub, name)
    return Filled(schema, metric, all_ids, np.concatenate(vecs), columns, np.concatenate(tags), deleted,
                  rows_of(columns, all_ids.size))


def flush(stub: Any, name: str) -> None:
    ok(stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=TIMEOUT))


def query_vectors(filled: Filled, nq: int, seed: int = 1, near_rows: bool = False) -> np.ndarray:
    """Random query vectors, or (``near_rows``) stored vectors with a little noise added."""
    rng = np.random.default_rng(seed)
    if near_rows and not filled.binary:
        picked = filled.vectors[rng.choice(filled.ids.size, nq, replace=False)]
        return (picked + 0.3 * rng.standard_normal(picked.shape)).astype(np.float32)
    return vectors(rng, nq, filled.metric, filled.schema.dimension)


def dsl(body: Mapping[str, Any], queries: np.ndarray, topk: int, params: Mapping[str, Any] | None = None) -> dict[
        str, Any]:
    """A DSL document: the filter ``body`` (a bool body: must / should / must_not) with the vector clause added to
    its ``must`` list."""
    doc = copy.deepcopy(dict(body))
    clause = {"topk": topk, "query": np.asarray(queries).tolist(), "params": dict(params or {})}
    doc.setdefault("must", []).append({"vector": {VECTOR: clause}})
    return {"bool": doc}


def passing(filled: Filled, body: Mapping[str, Any], tags: Sequence[str] = ()) -> np.ndarray:
    """Rows (bool per row) that pass ``body``, are live, and lie in the partitions ``tags`` select (full-match
    regexes; none given: every partition)."""
    mask = np.array([dsl_row(body, row) for row in filled.rows], dtype=bool) & ~filled.deleted
    if tags:
        names = ["_default" if t == "" else t for t in filled.tags]
        mask &= np.array([any(n == t or re.fullmatch(t, n) for t in tags) for n in names], dtype=bool)
    return mask


def hybrid_search(stub: Any, filled: Filled, body: Mapping[str, Any], queries: np.ndarray, topk: int,
                  tags: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                  as_dsl: bool = False) -> tuple[Any, np.ndarray, np.ndarray]:
    request = hc.search_param(filled.schema, dsl(body, queries, topk, params), tags, as_dsl)
    return decode_topk(stub.HybridSearch(request, timeout=TIMEOUT))


def assert_exact(filled: Filled, mask: np.ndarray, queries: np.ndarray, topk: int, answer: tuple[Any, np.ndarray,
                 np.ndarray], metric: int | None = None) -> None:
    """The answer is the exact top-k over the rows ``mask`` passes (row_num 0 when none does)."""
    status, ids, dist = answer
    assert status.error_code == SUCCESS, status.reason
    if not mask.any():
        assert ids.shape == (0, 0), ids
        return
    assert_search_exact(ids, dist, filled.vectors[mask], filled.ids[mask], queries, topk, metric or filled.metric)


def precision_and_recall(filled: Filled, mask: np.ndarray, queries: np.ndarray, topk: int,
                         ids: np.ndarray) -> float:
    """Every returned id passes (asserted) and there are min(topk, passing) of them per query; returns the recall
    against the exact ids (L2)."""
    allowed = set(filled.ids[mask].tolist())
    width = min(topk, int(mask.sum()))
    assert ids.shape == (queries.shape[0], width), ids.shape
    base = filled.vectors[mask].astype(np.float64)
    exact_ids = filled.ids[mask]
    found = 0
    for q, row in zip(queries.astype(np.float64), ids, strict=True):
        got = row[row != NO_ID]
        assert len(got) == width, row
        assert set(got.tolist()) <= allowed, set(got.tolist()) - allowed
        best = exact_ids[np.argsort(((base - q) ** 2).sum(axis=1), kind="stable")[:width]]
        found += len(set(got.tolist()) & set(best.tolist()))
    return found / (queries.shape[0] * width)
