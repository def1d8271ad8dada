"""One scenario run through any transport of the client (gRPC, REST, asyncio behind :class:`Blocking`), every
result checked against a numpy oracle; what it returns is compared across transports.

Collections, partitions, inserts with explicit ids and auto ids (float and binary), flush, count, FLAT and
IVF searches (also within a partition and within a segment), get by id, list ids of a segment, delete,
compact, load/release, indexes, refusals with their status codes, drop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from mishards_client import IndexType, MetricType, Status

DIM = 16
ROWS = 240
K = 8


def data(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((ROWS, DIM), dtype=np.float32), rng.random((4, DIM), dtype=np.float32)


def l2(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((q[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1)


def hamming(codes: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.unpackbits(q[:, None, :] ^ codes[None], axis=2).sum(-1).astype(np.float64)


def check_hits(ids: np.ndarray, distances: np.ndarray, truth: np.ndarray, id_of: np.ndarray, k: int,
               atol: float = 1e-5) -> None:
    """Each row: min(k, n) hits, ascending, the exact k best distances, each hit at its own oracle distance
    (ties may order equal distances either way)."""
    column = {int(i): c for c, i in enumerate(id_of)}
    n = min(k, truth.shape[1])
    assert ids.shape == (truth.shape[0], n), (ids.shape, truth.shape, k)
    for row in range(truth.shape[0]):
        best = np.sort(truth[row])[:n]
        np.testing.assert_allclose(distances[row], best, rtol=1e-5, atol=atol)
        for i, d in zip(ids[row], distances[row], strict=True):
            assert abs(truth[row, column[int(i)]] - d) <= atol + 1e-5 * abs(d), (i, d)


def codes_of(statuses: dict[str, Any]) -> dict[str, int]:
    return {k: v.code for k, v in statuses.items()}


def run(c: Any, name: str, atol: float = 1e-5) -> dict[str, Any]:
    """The scenario on collection ``name`` (and ``name + "_bin"``); returns what should not depend on the
    transport: ids of every search, counts, partition lists, index info, refusal codes."""
    x, q = data()
    ids = np.arange(1000, 1000 + ROWS, dtype=np.int64)
    out: dict[str, Any] = {}

    assert c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                "metric_type": MetricType.L2}).OK()
    assert c.has_collection(name) == (Status(), True)
    status, info = c.get_collection_info(name)
    assert status.OK() and (info.collection_name, info.dimension, info.index_file_size, info.metric_type) == (
        name, DIM, 1, MetricType.L2)
    status, names = c.list_collections()
    assert status.OK() and name in names
    assert c.create_partition(name, "p").OK()
    assert c.has_partition(name, "p") == (Status(), True)
    assert c.has_partition(name, "q")[1] is False
    status, parts = c.list_partitions(name)
    out["partitions"] = sorted(p.tag for p in parts)
    assert status.OK() and out["partitions"] == ["_default", "p"]

    half = ROWS // 2
    status, got = c.insert(name, x[:half], ids=ids[:half])  # numpy in
    assert status.OK() and got == ids[:half].tolist()
    status, got = c.insert(name, x[half:].tolist(), ids=ids[half:].tolist(), partition_tag="p")  # lists in
    assert status.OK() and got == ids[half:].tolist()
    assert c.flush([name]).OK()
    assert c.count_entities(name) == (Status(), ROWS)

    truth = l2(x, q)
    status, result = c.search(name, K, q)
    assert status.OK()
    check_hits(result.ids, result.distances, truth, ids, K, atol)
    out["flat"] = result.ids.tolist()
    status, result = c.search(name, K, q, partition_tags=["p"])
    assert status.OK()
    check_hits(result.ids, result.distances, truth[:, half:], ids[half:], K, atol)
    out["flat_p"] = result.ids.tolist()

    status, rows = c.get_entity_by_id(name, [1003, 1200, 7])
    assert status.OK() and rows[2] == [] and np.array_equal(np.array(rows[:2], dtype=np.float32), x[[3, 200]])
    status, arr, found = c.get_entity_array(name, [1005, 9, 1239])
    assert status.OK() and found.tolist() == [True, False, True]
    assert np.array_equal(arr[[0, 2]], x[[5, 239]]) and not arr[1].any()

    status, stats = c.get_collection_stats(name)
    assert status.OK() and stats["row_count"] == ROWS
    segments = {p["tag"]: [s["name"] for s in p["segments"] or []] for p in stats["partitions"]}
    in_p: list[int] = []
    for segment in segments["p"]:
        status, listed = c.list_id_in_segment(name, segment)
        assert status.OK()
        in_p += listed
    assert sorted(in_p) == ids[half:].tolist()

    assert c.create_index(name, IndexType.IVF_FLAT, {"nlist": 4}).OK()
    status, index = c.get_index_info(name)
    assert status.OK() and index.index_type == IndexType.IVF_FLAT and index.params == {"nlist": 4}
    status, result = c.search(name, K, q, params={"nprobe": 4})  # every list probed: exact
    assert status.OK()
    check_hits(result.ids, result.distances, truth, ids, K, atol)
    out["ivf"] = result.ids.tolist()
    assert c.load_collection(name).OK()
    assert c.release_collection(name).OK()
    assert c.drop_index(name).OK()
    status, index = c.get_index_info(name)
    assert status.OK() and index.index_type == IndexType.FLAT

    assert c.delete_entity_by_id(name, [1000, 1001, 1200]).OK()
    assert c.flush([name]).OK()
    assert c.count_entities(name) == (Status(), ROWS - 3)
    assert c.get_entity_by_id(name, [1000])[1] == [[]]
    assert c.compact(name).OK()
    status, result = c.search(name, 3, x[[0, 2]])
    assert status.OK() and 1000 not in result.ids[0].tolist() and result.ids[1, 0] == 1002

    out["refusals"] = codes_of({
        "count_missing": c.count_entities(name + "_missing")[0],
        "describe_missing": c.get_collection_info(name + "_missing")[0],
        "search_missing": c.search(name + "_missing", 3, q)[0],
        "insert_missing": c.insert(name + "_missing", x[:2])[0],
        "create_again": c.create_collection({"collection_name": name, "dimension": DIM}),
        "bad_name": c.create_collection({"collection_name": "1-bad", "dimension": DIM}),
        "bad_dimension": c.insert(name, np.ones((2, DIM + 1), dtype=np.float32), ids=[5, 6])[0],
        "mixed_ids": c.insert(name, x[:2])[0],
        "bad_topk": c.search(name, 0, q)[0],
        "partition_again": c.create_partition(name, "p"),
        "drop_default": c.drop_partition(name, "_default"),
        "missing_partition": c.insert(name, x[:1], ids=[1], partition_tag="nope")[0],
        "bad_nlist": c.create_index(name, IndexType.IVF_FLAT, {"nlist": 0}),
    })
    assert all(code != 0 for code in out["refusals"].values()), out["refusals"]
    assert c.has_collection(name + "_missing") == (Status(), False)

    assert c.drop_partition(name, "p").OK()
    status, parts = c.list_partitions(name)
    assert status.OK() and [p.tag for p in parts] == ["_default"]
    assert c.count_entities(name) == (Status(), half - 2)
    out["binary"] = _binary(c, name + "_bin")
    assert c.drop_collection(name).OK()
    assert c.has_collection(name) == (Status(), False)
    return out


def _binary(c: Any, name: str) -> dict[str, Any]:
    """HAMMING, auto ids, uint8 in, bytes out."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, size=(60, 8), dtype=np.uint8)
    assert c.create_collection({"collection_name": name, "dimension": 64, "metric_type": MetricType.HAMMING}).OK()
    status, ids = c.insert(name, codes)
    assert status.OK() and len(set(ids)) == 60
    assert c.flush([name]).OK()
    status, rows = c.get_entity_by_id(name, [ids[0], ids[59]])
    assert status.OK() and rows == [codes[0].tobytes(), codes[59].tobytes()]
    status, arr, found = c.get_entity_array(name, [ids[7]])
    assert status.OK() and found.tolist() == [True] and np.array_equal(arr[0], codes[7])
    queries = codes[[1, 2]] ^ np.uint8(1)  # one bit away from rows 1 and 2
    status, result = c.search(name, 5, queries)
    assert status.OK()
    check_hits(result.ids, result.distances, hamming(codes, queries), np.array(ids), 5)
    status, result = c.search(name, 1, [codes[9].tobytes()])
    assert status.OK() and result.id_array == [[ids[9]]]
    assert c.drop_collection(name).OK()
    position = {i: n for n, i in enumerate(ids)}
    return {"positions": [[position[int(i)] for i in row] for row in result.ids]}


class Blocking:
    """The sync API over an ``AsyncMilvus``: each method runs its coroutine to completion on one private
    event loop (so the scenario above runs unchanged through the asyncio client)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(self._make(factory))

    @staticmethod
    async def _make(factory: Callable[[], Any]) -> Any:
        return factory()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self.client, attr)
        if not asyncio.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()
