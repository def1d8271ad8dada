"""Hybrid collections over REST (``/hybrid/collections...``) on a real node and through a proxy with two read nodes:
create, insert JSON rows and columns of every field type, describe, count, get by ids, delete, drop, and searches
filtered with the JSON DSL checked against brute force over the rows that pass (decided row by row by the reference
evaluator of tests/support/hybrid.py); bad input answers a clear error and leaves nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.hybrid.types import STORAGE_DTYPE, DataType
from tests.support.cluster import LocalCluster
from tests.support.http import HttpReply, request
from tests.support.hybrid import SCALARS, dsl_row, rows_of
from tests.support.hybrid_rows import boundaries
from tests.support.hybrid_search import scalar_columns
from tests.support.nodeproc import NodeProcess
from tests.support.scrape import scrape, value
from tests.test_rest_api import check_hits

Rest = Callable[..., HttpReply]
DIM = 8
K = 10
FIELDS = [{"name": n, "type": DataType(t).name} for n, t in SCALARS.items()]
FILTERS: dict[str, dict[str, Any]] = {
    "range": {"must": [{"range": {"i32": {"GTE": 100, "LT": 600}}}]},
    "term-and-not": {"must": [{"term": {"i8": [-2, 0, 4]}}], "must_not": [{"range": {"d": {"LT": -0.5}}}]},
    "nested-should": {"should": [{"range": {"f": {"GT": 50.0}}},
                                 {"must": [{"term": {"b": [True]}}, {"range": {"i16": {"LTE": -100}}}]}]},
    "float-equality": {"must": [{"range": {"f": {"NE": 0.1, "gte": -20.5}}}, {"term": {"i64": {"values": [7, 8]}}}]},
    "nothing": {"must": [{"range": {"i32": {"LT": 0}}}]},
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    args = ["--auto-flush-interval", "0", "--grpc-max-message-size", "4MB", "--metrics-port", "-1"]
    with NodeProcess(tmp_path_factory.mktemp("resthybrid"), args, http=True) as started:
        yield started


@pytest.fixture
def rest(node: NodeProcess) -> Rest:
    return lambda method, path, body=None: request(node.http_port, method, path, body)


def _name() -> str:
    return f"h_{uuid.uuid4().hex[:10]}"


def _error(reply: HttpReply, http: int, code: int, *words: str) -> None:
    assert reply.status == http, reply
    doc = reply.json()
    assert list(doc) == ["message", "code"] and doc["code"] == code, doc
    assert all(w in doc["message"] for w in words), doc


def _create(rest: Rest, name: str, metric: str = "L2", dim: int = DIM) -> None:
    vector = {"name": "v", "type": "VECTOR", "dimension": dim, "params": {"metric_type": metric, "index_file_size": 1}}
    reply = rest("POST", "/hybrid/collections", {"collection_name": name, "fields": [*FIELDS, vector]})
    assert reply.status == 201 and reply.json() == {"message": "OK", "code": 0}, reply


def _rows(columns: dict[str, np.ndarray], vectors: np.ndarray) -> list[dict[str, Any]]:
    return [{**{n: c[i].item() for n, c in columns.items()}, "v": vectors[i].tolist()} for i in range(len(vectors))]


def _insert(rest: Rest, name: str, body: dict[str, Any]) -> np.ndarray:
    reply = rest("POST", f"/hybrid/collections/{name}/entities", body)
    assert reply.status == 201, reply
    return np.array([int(i) for i in reply.json()["ids"]], dtype=np.int64)


def _flush(rest: Rest, name: str) -> None:
    assert rest("PUT", "/system/task", {"flush": {"collection_names": [name]}}).status == 200


def _count(rest: Rest, name: str) -> int:
    reply = rest("GET", f"/hybrid/collections/{name}")
    assert reply.status == 200, reply
    return int(reply.json()["count"])


def test_create_describe_list_and_drop(rest: Rest) -> None:
    name = _name()
    _create(rest, name, "IP")
    described = rest("GET", f"/hybrid/collections/{name}/").json()
    assert described == {"collection_name": name, "count": 0, "dimension": DIM, "index_file_size": 1,
                         "metric_type": "IP", "fields": [*FIELDS, {"name": "v", "type": "VECTOR", "dimension": DIM,
                                                                   "params": {"metric_type": "IP",
                                                                              "index_file_size": 1}}]}
    listed = rest("GET", "/hybrid/collections?all_required=true").json()
    assert {**described, "count": 0} in [{**c, "count": 0} for c in listed["collections"]]
    assert listed["count"] >= 1 and rest("GET", "/hybrid/collections?page_size=0").json()["collections"] == []
    stat = rest("GET", f"/hybrid/collections/{name}?info=stat")
    assert stat.status == 200 and "partitions" in stat.json()
    _error(rest("POST", "/hybrid/collections", {"collection_name": name, "fields": [*FIELDS, {
        "name": "v", "type": "VECTOR", "dimension": DIM}]}), 400, 9, "already exists")
    assert rest("OPTIONS", f"/hybrid/collections/{name}/search").status == 204
    paths = rest("GET", "/openapi.json").json()["paths"]
    assert set(paths["/hybrid/collections/{collection_name}/entities"]) == {"post", "get", "delete"}
    assert "post" in paths["/hybrid/collections/{collection_name}/search"]
    # The 1.1 routes serve a hybrid collection as a plain one; the hybrid routes a plain one not at all.
    assert rest("GET", f"/collections/{name}").json()["dimension"] == DIM
    plain = _name()
    assert rest("POST", "/collections", {"collection_name": plain, "dimension": DIM}).status == 201
    _error(rest("GET", f"/hybrid/collections/{plain}"), 404, 4, "not a hybrid collection")
    assert rest("DELETE", f"/hybrid/collections/{name}").status == 204
    _error(rest("GET", f"/hybrid/collections/{name}"), 404, 4)
    _error(rest("DELETE", f"/hybrid/collections/{name}"), 404, 4)


def test_entities_of_every_type_round_trip(rest: Rest) -> None:
    name = _name()
    _create(rest, name)
    edges = {n: boundaries(DataType(t)) for n, t in SCALARS.items()}
    rows = max(len(e) for e in edges.values())
    columns = {n: np.resize(e, rows).astype(STORAGE_DTYPE[DataType(SCALARS[n])]) for n, e in edges.items()}
    vectors = np.random.default_rng(1).standard_normal((rows, DIM)).astype(np.float32)
    ids = np.arange(100, 100 + rows, dtype=np.int64)
    half = rows // 2
    first = _insert(rest, name, {"entities": _rows({n: c[:half] for n, c in columns.items()}, vectors[:half]),
                                 "ids": [str(i) for i in ids[:half]]})
    as_columns = {**{n: c[half:].tolist() for n, c in columns.items()}, "v": vectors[half:].tolist()}
    second = _insert(rest, name, {"columns": as_columns, "ids": ids[half:].tolist()})
    assert np.array_equal(np.concatenate([first, second]), ids)
    _flush(rest, name)
    assert _count(rest, name) == rows
    reply = rest("GET", f"/hybrid/collections/{name}/entities?ids={','.join(map(str, ids))},7")
    assert reply.status == 200, reply
    found = reply.json()["entities"]
    assert [e["id"] for e in found] == [*map(str, ids), "7"] and found[-1]["entity"] is None
    for n, column in columns.items():
        got = np.array([e["entity"][n] for e in found[:-1]], dtype=column.dtype)
        assert got.tobytes() == column.tobytes(), n  # bit for bit: -0.0, subnormals, the extremes
    assert np.array_equal(np.array([e["entity"]["v"] for e in found[:-1]], dtype=np.float32), vectors)
    deleted = rest("DELETE", f"/hybrid/collections/{name}/entities", {"ids": [int(ids[0]), str(ids[1])]})
    assert deleted.status == 200 and deleted.json() == {"code": 0, "message": "OK"}
    _flush(rest, name)
    assert _count(rest, name) == rows - 2
    again = rest("GET", f"/hybrid/collections/{name}/entities?ids={ids[0]},{ids[2]}").json()["entities"]
    assert again[0]["entity"] is None and again[1]["entity"]["i8"] == int(columns["i8"][2])


def test_binary_collection_takes_byte_values(rest: Rest) -> None:
    name = _name()
    _create(rest, name, "JACCARD", 16)
    columns = scalar_columns(np.random.default_rng(2), 3)
    bits = np.array([[255, 0], [1, 2], [0, 128]], dtype=np.uint8)
    ids = _insert(rest, name, {"entities": _rows(columns, bits)})
    _flush(rest, name)
    found = rest("GET", f"/hybrid/collections/{name}/entities?ids={ids[1]}").json()["entities"]
    assert found[0]["entity"]["v"] == [1, 2]
    dsl = {"bool": {"must": [{"vector": {"v": {"topk": 3, "query": [[255, 0]], "metric_type": "JACCARD"}}}]}}
    hits = rest("POST", f"/hybrid/collections/{name}/search", {"dsl": dsl}).json()["result"][0]
    assert hits[0] == {"distance": "0.000000", "id": str(ids[0])} and len(hits) == 3


def _fill(rest: Rest, name: str, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Three flushed batches (the second in partition p1): ids, vectors, columns and each row's tag."""
    _create(rest, name)
    assert rest("POST", f"/collections/{name}/partitions", {"partition_tag": "p1"}).status == 201
    rng = np.random.default_rng(seed)
    ids, vecs, cols, tags = [], [], [], []
    for tag, n in (("", 300), ("p1", 250), ("", 200)):
        part = scalar_columns(rng, n)
        part["i64"] = rng.integers(0, 12, n)  # terms on i64 match several rows
        vectors = rng.standard_normal((n, DIM)).astype(np.float32)
        body: dict[str, Any] = {"entities": _rows(part, vectors)}
        if tag:
            body["partition_tag"] = tag
        ids.append(_insert(rest, name, body))
        vecs.append(vectors)
        cols.append(part)
        tags += [tag] * n
        _flush(rest, name)
    columns = {f: np.concatenate([c[f] for c in cols]) for f in SCALARS}
    return np.concatenate(ids), np.concatenate(vecs), columns, np.array(tags)


def _dsl(body: dict[str, Any], queries: np.ndarray, topk: int) -> dict[str, Any]:
    clause = {"vector": {"v": {"topk": topk, "query": queries.tolist(), "metric_type": "L2", "params": {}}}}
    return {"bool": {**body, "must": [*body.get("must", []), clause]}}


def _check_filtered(call: Rest, name: str, filled: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray],
                    body: dict[str, Any], tags: list[str], queries: np.ndarray) -> np.ndarray:
    ids, vectors, columns, row_tags = filled
    mask = np.array([dsl_row(body, row) for row in rows_of(columns, ids.size)], dtype=bool)
    if tags:
        mask &= np.isin(row_tags, tags)
    request_body: dict[str, Any] = {"dsl": _dsl(body, queries, K)}
    if tags:
        request_body["partition_tags"] = tags
    reply = call("POST", f"/hybrid/collections/{name}/search", request_body)
    assert reply.status == 200, reply
    result = reply.json()
    if not mask.any():
        assert result == {"num": 0, "result": []}
        return mask
    truth = ((queries[:, None, :].astype(np.float64) - vectors[mask][None].astype(np.float64)) ** 2).sum(axis=2)
    assert result["num"] == len(queries)
    check_hits(result["result"], truth, ids[mask], K)
    return mask


@pytest.mark.parametrize("tags", [[], ["p1"]], ids=["all", "p1"])
def test_filtered_search_is_brute_force_over_the_passing_rows(rest: Rest, tags: list[str]) -> None:
    name = _name()
    filled = _fill(rest, name, seed=len(tags))
    queries = np.random.default_rng(5).standard_normal((4, DIM)).astype(np.float32)
    passing = [_check_filtered(rest, name, filled, body, tags, queries).sum() for body in FILTERS.values()]
    assert all(0 < p < filled[0].size for p in passing[:-1]) and passing[-1] == 0  # filters that do filter


def test_search_answers_requested_fields(rest: Rest) -> None:
    name = _name()
    ids, vectors, columns, _ = _fill(rest, name, seed=7)
    dsl = _dsl(FILTERS["range"], vectors[:2] + 0.01, 3)
    reply = rest("POST", f"/hybrid/collections/{name}/search", {"dsl": dsl, "fields": ["i32", "f", "v"]})
    assert reply.status == 200, reply
    row_of = {int(i): r for r, i in enumerate(ids)}
    hits = [h for row in reply.json()["result"] for h in row]
    assert len(hits) == 6
    for hit in hits:
        r = row_of[int(hit["id"])]
        assert list(hit["entity"]) == ["i32", "f", "v"] and 100 <= hit["entity"]["i32"] < 600
        assert hit["entity"]["i32"] == columns["i32"][r] and np.float32(hit["entity"]["f"]) == columns["f"][r]
        assert np.array_equal(np.array(hit["entity"]["v"], dtype=np.float32), vectors[r])


def test_bad_input_is_refused_and_leaves_nothing(rest: Rest, node: NodeProcess) -> None:
    name = _name()
    _create(rest, name)
    columns = scalar_columns(np.random.default_rng(3), 2)
    good = _rows(columns, np.ones((2, DIM), dtype=np.float32))
    path = f"/hybrid/collections/{name}/entities"
    inserts: list[tuple[Any, int, str]] = [
        (b'{"entities": [', 36, "json error"),
        (b"", 34, "payload"),
        ({"entities": [good[0], {**good[1], "i32": "5"}]}, 36, "i32"),
        ({"entities": [good[0], {**good[1], "i8": 128}]}, 5, "i8"),
        ({"entities": [good[0], {**good[1], "b": 2}]}, 5, "b"),
        ({"entities": [good[0], {**good[1], "f": 1e39}]}, 5, "FLOAT"),
        ({"entities": [good[0], {**good[1], "i64": 2**63}]}, 5, "INT64"),
        ({"entities": [good[0], {**good[1], "color": 1}]}, 5, "color"),
        ({"entities": [good[0], {k: v for k, v in good[1].items() if k != "d"}]}, 5, "field d"),
        ({"entities": [good[0], {**good[1], "v": [1.0] * (DIM - 1)}]}, 7, "dimension"),
        ({"entities": good, "ids": ["1", "2"]}, 12, "auto-generated"),
        ({"entities": good, "partition_tag": "nope"}, 1, "Partition nope"),
        ({"entities": good, "extra": 1}, 35, "extra"),
    ]
    _insert(rest, name, {"entities": good})  # the collection's ids are automatic from now on
    for body, code, word in inserts:
        reply = rest("POST", path, body)
        assert reply.status == 400 and reply.json()["code"] == code and word in reply.json()["message"], (body, reply)
    search = f"/hybrid/collections/{name}/search"
    vector = {"vector": {"v": {"topk": 2, "query": [[0.0] * DIM]}}}
    _error(rest("POST", search, {"dsl": {"bool": {"must": [{"term": {"i8": [1]}}]}}}), 400, 5, "no vector query")
    _error(rest("POST", search, {"dsl": {"bool": {"must": [{"term": {"zz": [1]}}, vector]}}}), 400, 5, "zz")
    _error(rest("POST", search, {"dsl": {"bool": {"must": [{"range": {"i8": {"GT": "1"}}}, vector]}}}), 400, 5)
    _error(rest("POST", search, {"dsl": {"bool": {"must": [{"vector": {"v": {"topk": 0, "query": [[0.0] * DIM]}}}]}}}),
           400, 10)
    _error(rest("POST", search, b'{"dsl": {"bool": {"must": []}, "bool": {}}}'), 400, 36, "repeated")
    _error(rest("POST", search, {"dsl": {"bool": {"must": [vector]}}, "fields": ["zz"]}), 400, 5, "zz")
    _error(rest("POST", f"/hybrid/collections/{_name()}/search", {"dsl": {"bool": {"must": [vector]}}}), 404, 4)
    before = rest("GET", "/hybrid/collections?page_size=0").json()["count"]
    for fields, code in (([{"name": "s", "type": "STRING"}], 5), ([{"name": "v", "type": "VECTOR"}], 34),
                         ([{"name": "a", "type": "INT8"}], 5), ([{"name": "a", "type": "WORD"}], 5),
                         ([{"name": "v", "type": "VECTOR", "dimension": 0}], 7)):
        reply = rest("POST", "/hybrid/collections", {"collection_name": _name(), "fields": fields})
        assert reply.status == 400 and reply.json()["code"] == code, (fields, reply)
    _error(rest("POST", "/hybrid/collections", {"collection_name": "a b", "fields": FIELDS}), 400, 9)
    _flush(rest, name)
    assert _count(rest, name) == 2  # only the good insert
    assert rest("GET", "/hybrid/collections?page_size=0").json()["count"] == before
    routes = {s[1]["route"] for s in scrape(node.metrics_port) if s[0] == "mishards_node_rest_request_seconds_count"}
    assert {"POST /hybrid/collections/{collection_name}/entities",
            "POST /hybrid/collections/{collection_name}/search", "POST /hybrid/collections"} <= routes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(Path(tmp_path_factory.mktemp("resthybridproxy")), readers=2,
                           proxy_args=["--metrics-port", "-1"])
    started.proxy.http = True
    with started:
        yield started


def test_through_the_proxy_writes_reach_the_writer_and_searches_the_read_nodes(cluster: LocalCluster) -> None:
    def call(method: str, path: str, body: Any = None) -> HttpReply:
        return request(cluster.proxy.http_port, method, path, body)

    name = _name()
    filled = _fill(call, name, seed=11)
    queries = np.random.default_rng(6).standard_normal((3, DIM)).astype(np.float32)

    def sub_requests() -> float:
        return value(scrape(cluster.proxy.metrics_port), "mishards_proxy_subrequest_seconds_count",
                     method="HybridSearchInSegments")

    before = sub_requests()
    for body in (FILTERS["range"], FILTERS["nested-should"]):
        assert _check_filtered(call, name, filled, body, [], queries).any()
    assert sub_requests() - before >= 2  # each search sent to the read nodes holding its segments
    ids = filled[0]
    got = call("GET", f"/hybrid/collections/{name}/entities?ids={ids[0]}").json()["entities"][0]["entity"]
    assert got["i32"] == filled[2]["i32"][0]
    assert call("DELETE", f"/hybrid/collections/{name}/entities", {"ids": [int(ids[0])]}).status == 200
    _flush(call, name)
    assert _count(call, name) == ids.size - 1
    assert call("DELETE", f"/hybrid/collections/{name}").status == 204
    _error(call("GET", f"/hybrid/collections/{name}"), 404, 4)
