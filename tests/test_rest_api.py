"""The REST API of a node, endpoint by endpoint, at the HTTP level: status codes, bodies, headers.

Search results are checked against an exact numpy oracle (tolerant of ties)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.http import HttpReply, request
from tests.support.nodeproc import NodeProcess
from tests.support.scrape import scrape

Rest = Callable[..., HttpReply]
CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "GET, POST, OPTIONS, PUT, DELETE",
        "access-control-max-age": "1728000"}
DIM = 8


@pytest.fixture(scope="module")
def rest_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    args = ["--auto-flush-interval", "0", "--grpc-max-message-size", "4MB", "--metrics-port", "-1"]
    with NodeProcess(tmp_path_factory.mktemp("rest"), args, http=True) as node:
        yield node


@pytest.fixture
def rest(rest_node: NodeProcess) -> Rest:
    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> HttpReply:
        return request(rest_node.http_port, method, path, body, headers)

    return call


def _name() -> str:
    return f"c_{uuid.uuid4().hex[:10]}"


def _status(reply: HttpReply, http: int, code: int) -> None:
    assert reply.status == http, reply
    assert reply.json()["code"] == code, reply
    assert list(reply.json()) == ["message", "code"]


def _create(rest: Rest, dim: int = DIM, metric: str = "L2", name: str | None = None) -> str:
    name = name or _name()
    reply = rest("POST", "/collections", {"collection_name": name, "dimension": dim, "metric_type": metric,
                                          "index_file_size": 1024})
    assert reply.status == 201 and reply.body == b'{"message":"OK","code":0}', reply
    return name


def _insert(rest: Rest, name: str, rows: Any, **extra: Any) -> np.ndarray:
    reply = rest("POST", f"/collections/{name}/vectors", {"vectors": rows, **extra})
    assert reply.status == 201, reply
    ids = reply.json()["ids"]
    assert all(isinstance(i, str) for i in ids)
    return np.array([int(i) for i in ids], dtype=np.int64)


def _flush(rest: Rest, *names: str) -> None:
    reply = rest("PUT", "/system/task", {"flush": {"collection_names": list(names)}})
    assert reply.status == 200 and reply.json() == {"code": 0, "message": "OK"}, reply


def _count(rest: Rest, name: str) -> int:
    reply = rest("GET", f"/collections/{name}")
    assert reply.status == 200, reply
    return int(reply.json()["count"])


def check_hits(result: list[list[dict[str, str]]], truth: np.ndarray, ids: np.ndarray, k: int,
               descending: bool = False) -> None:
    """Each row: min(k, n) hits, the exact best distances in order, each the distance of its own id."""
    column = {int(i): c for c, i in enumerate(ids)}
    assert len(result) == truth.shape[0]
    for q, row in enumerate(result):
        got_ids = [int(h["id"]) for h in row]
        got = np.array([float(h["distance"]) for h in row])
        best = np.sort(truth[q])[::-1] if descending else np.sort(truth[q])
        assert len(row) == min(k, ids.size) and len(set(got_ids)) == len(got_ids)
        assert np.allclose(got, best[:len(row)], atol=1e-4, rtol=1e-4), (got, best[:k])
        assert np.allclose(got, truth[q, [column[i] for i in got_ids]], atol=1e-4, rtol=1e-4)


def test_root_state_devices_options_and_unknown_paths(rest: Rest) -> None:
    root = rest("GET", "/")
    assert root.status == 200 and root.body == b"Welcome to milvus"
    state = rest("GET", "/state")
    assert state.status == 200 and state.body == b'{"message":"Success","code":0}'
    assert state.headers["content-type"] == "application/json"
    assert all(state.headers[k] == v for k, v in CORS.items()) and "authorization" in state.headers[
        "access-control-allow-headers"].lower()
    devices = rest("GET", "/devices").json()
    assert devices["gpus"] == {} and devices["cpu"]["memory"] >= 1
    for path in ("/", "/state", "/collections", "/collections/x/vectors", "/collections/x/segments/1/ids",
                 "/system/version"):
        options = rest("OPTIONS", path)
        assert options.status == 204 and options.body == b"" and options.headers["content-length"] == "0"
        assert all(options.headers[k] == v for k, v in CORS.items())
    for method, path in (("OPTIONS", "/nope"), ("GET", "/nope"), ("PATCH", "/state"), ("POST", "/state"),
                         ("DELETE", "/collections/"), ("GET", "/config/gpu_resources"), ("HEAD", "/collections")):
        reply = rest(method, path)
        assert reply.status == 404, (method, path)
        if method != "HEAD":
            _status(reply, 404, 32)
    assert "paths" in rest("GET", "/openapi.json").json()
    docs = rest("GET", "/docs")
    assert docs.status == 200 and docs.headers["content-type"].startswith("text/html") and b"/openapi.json" in docs.body


def test_create_describe_list_drop_collections(rest: Rest) -> None:
    name = _create(rest)
    reply = rest("GET", f"/collections/{name}/")
    assert reply.json() == {"collection_name": name, "count": 0, "dimension": DIM, "index": "FLAT",
                            "index_file_size": 1024, "index_params": "{}", "metric_type": "L2"}
    stat = rest("GET", f"/collections/{name}?info=stat").json()
    assert stat["row_count"] == 0 and [p["tag"] for p in stat["partitions"]] == ["_default"]
    # Defaults: index_file_size 1024, metric L2; errors in Milvus 1.1's order.
    plain = _name()
    assert rest("POST", "/collections", {"collection_name": plain, "dimension": 4}).status == 201
    assert rest("GET", f"/collections/{plain}").json()["index_file_size"] == 1024
    _status(rest("POST", "/collections", {"collection_name": name, "dimension": 4}), 400, 9)
    _status(rest("POST", "/collections", {"dimension": 4}), 400, 34)
    _status(rest("POST", "/collections", {"collection_name": _name()}), 400, 34)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": 4, "metric_type": None}), 400, 34)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": 4, "metric_type": "COS"}), 400, 23)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": "128"}), 400, 36)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": True}), 400, 36)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": 4, "shards": 2}), 400, 35)
    _status(rest("POST", "/collections", {"collection_name": _name(), "dimension": 0}), 400, 7)
    _status(rest("POST", "/collections", {"collection_name": "a/b", "dimension": 4}), 400, 9)
    _status(rest("POST", "/collections", b'{"collection_name": '), 400, 36)
    _status(rest("POST", "/collections", [1, 2]), 400, 36)
    _status(rest("POST", "/collections", b""), 400, 34)
    # The list: count first (page_size 0, as pymilvus asks), then pages.
    listing = rest("GET", "/collections?offset=0&page_size=0").json()
    assert listing["collections"] == [] and listing["count"] >= 2
    everything = rest("GET", f"/collections?page_size={listing['count']}").json()["collections"]
    assert {name, plain} <= {c["collection_name"] for c in everything}
    assert len(rest("GET", "/collections?page_size=1&offset=1").json()["collections"]) == 1
    assert len(rest("GET", "/collections?all_required=true&page_size=1").json()["collections"]) == listing["count"]
    _status(rest("GET", "/collections?offset=-1"), 400, 37)
    assert rest("GET", "/collections?all_required=maybe").status == 200  # ignored there, as Milvus 1.1
    dropped = rest("DELETE", f"/collections/{name}")
    assert dropped.status == 204 and dropped.body == b""
    _status(rest("DELETE", f"/collections/{name}"), 404, 4)
    _status(rest("GET", f"/collections/{name}"), 404, 4)


def test_invalid_names_in_url_paths_are_400_with_code_9(rest: Rest) -> None:
    search = {"search": {"topk": 1, "params": {}, "vectors": [[0.0] * DIM]}}
    for quoted in ("a%2Fb", "..x", "a%20b", "%2E%2E", "x%3Fy", "1abc"):
        _status(rest("GET", f"/collections/{quoted}"), 400, 9)
        _status(rest("DELETE", f"/collections/{quoted}"), 400, 9)
        _status(rest("GET", f"/collections/{quoted}/indexes"), 400, 9)
        _status(rest("PUT", f"/collections/{quoted}/vectors", search), 400, 9)
        _status(rest("POST", f"/collections/{quoted}/vectors", {"vectors": [[0.0] * DIM]}), 400, 9)
    _status(rest("GET", "/collections//indexes"), 400, 9)
    _status(rest("GET", "/collections//partitions"), 400, 9)


def test_insert_flush_search_get_and_delete(rest: Rest) -> None:
    rng = np.random.default_rng(7)
    name = _create(rest)
    data = rng.random((300, DIM), dtype=np.float32)
    ids = _insert(rest, name, data)  # no Content-Type, as pymilvus sends some bodies
    assert ids.size == 300 and np.unique(ids).size == 300
    assert _count(rest, name) == 0  # not flushed yet: invisible
    _flush(rest, name)
    assert _count(rest, name) == 300
    queries = np.concatenate([rng.random((3, DIM), dtype=np.float32), data[[17]]])
    truth = ((queries[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(axis=2)
    reply = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 7, "params": {}, "vectors": queries}},
                 {"Content-Type": "application/json"})
    assert reply.status == 200 and reply.json()["num"] == 4, reply
    result = reply.json()["result"]
    check_hits(result, truth, ids, 7)
    assert result[3][0] == {"distance": "0.000000", "id": str(ids[17])}
    assert all(len(h["distance"].split(".")[1]) == 6 for row in result for h in row)  # printf("%f")
    # Search by ids, and in segments (file ids).
    by_id = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 3, "params": {}, "ids": [str(ids[5])]}})
    assert by_id.status == 200 and by_id.json()["result"][0][0]["id"] == str(ids[5])
    segments = rest("GET", f"/collections/{name}/segments").json()
    assert segments["code"] == 0 and segments["count"] == 1
    seg = segments["segments"][0]
    assert seg["partition_tag"] == "_default" and seg["row_count"] == 300 and seg["index_name"] == "IDMAP"
    # File ids (SearchInFiles) are catalog numbers no reply shows: the collection's only one is found by asking.
    found = []
    for fid in range(1, 200):
        in_files = rest("PUT", f"/collections/{name}/vectors",
                        {"search": {"topk": 7, "params": {}, "vectors": queries, "file_ids": [str(fid)]}})
        if in_files.status == 200:
            found.append(in_files.json()["result"])
        else:
            _status(in_files, 400, 1)
    assert found == [result]
    # Get by ids: found ones exactly, [] for the missing one, in request order.
    wanted = f"{ids[3]},{int(ids.max()) + 999},{ids[250]}"
    got = rest("GET", f"/collections/{name}/vectors?ids={wanted}")
    assert got.status == 200 and got.json()["code"] == 0
    vectors = got.json()["vectors"]
    assert [v["id"] for v in vectors] == wanted.split(",")
    assert np.array_equal(np.array(vectors[0]["vector"], np.float32), data[3]) and vectors[1]["vector"] == []
    assert np.array_equal(np.array(vectors[2]["vector"], np.float32), data[250])
    _status(rest("GET", f"/collections/{name}/vectors"), 400, 33)
    _status(rest("GET", f"/collections/{name}/vectors?ids="), 400, 5)
    _status(rest("GET", f"/collections/{name}/vectors?ids=1,x"), 400, 37)
    _status(rest("GET", f"/collections/{name}/vectors?ids=" + ",".join(map(str, range(1001)))), 400, 5)
    _status(rest("GET", "/collections/nope_x/vectors?ids=1"), 404, 4)
    # Segment ids and vectors, paged.
    seg_ids = rest("GET", f"/collections/{name}/segments/{seg['name']}/ids?page_size=1000000").json()
    assert seg_ids["count"] == 300 and sorted(int(i) for i in seg_ids["ids"]) == sorted(ids.tolist())
    page = rest("GET", f"/collections/{name}/segments/{seg['name']}/vectors?offset=10&page_size=5").json()
    assert page["code"] == 0 and page["count"] == 300 and len(page["vectors"]) == 5
    for entry in page["vectors"]:
        assert np.array_equal(np.array(entry["vector"], np.float32), data[list(ids).index(int(entry["id"]))])
    _status(rest("GET", f"/collections/{name}/segments/{seg['name']}/other"), 400, 32)
    _status(rest("GET", f"/collections/{name}/segments/999999/ids"), 400, 1)
    # Delete: ids as strings; afterwards neither searched nor found.
    gone = [str(ids[17]), str(ids[3])]
    deleted = rest("PUT", f"/collections/{name}/vectors", {"delete": {"ids": gone}})
    assert deleted.status == 200 and deleted.json() == {"code": 0, "message": "OK"}
    _flush(rest, name)
    assert _count(rest, name) == 298
    again = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 7, "params": {}, "vectors": queries}})
    keep = ~np.isin(ids, [ids[17], ids[3]])
    check_hits(again.json()["result"], truth[:, keep], ids[keep], 7)
    assert rest("GET", f"/collections/{name}/vectors?ids={ids[3]}").json()["vectors"][0]["vector"] == []
    _status(rest("PUT", f"/collections/{name}/vectors", {"delete": {"ids": [int(ids[0])]}}), 400, 36)
    _status(rest("PUT", f"/collections/{name}/vectors", {"delete": {"ids": ["x1"]}}), 400, 35)
    _status(rest("PUT", f"/collections/{name}/vectors", {"delete": {}}), 400, 34)
    _status(rest("PUT", "/collections/nope_x/vectors", {"delete": {"ids": ["1"]}}), 404, 4)


def test_binary_collection_takes_and_gives_byte_values(rest: Rest) -> None:
    rng = np.random.default_rng(11)
    name = _create(rest, dim=64, metric="HAMMING")
    codes = rng.integers(0, 256, (120, 8), dtype=np.uint8)
    ids = _insert(rest, name, codes.tolist())
    _flush(rest, name)
    queries = np.concatenate([rng.integers(0, 256, (2, 8), dtype=np.uint8), codes[[9]]])
    truth = np.bitwise_count(queries[:, None, :] ^ codes[None]).sum(axis=2).astype(np.float64)
    reply = rest("PUT", f"/collections/{name}/vectors", {"search": {"topk": 5, "params": {}, "vectors": queries}})
    assert reply.status == 200, reply
    check_hits(reply.json()["result"], truth, ids, 5)
    got = rest("GET", f"/collections/{name}/vectors?ids={ids[9]}").json()["vectors"]
    assert got == [{"id": str(ids[9]), "vector": codes[9].tolist()}]
    _status(rest("POST", f"/collections/{name}/vectors", {"vectors": [[256] * 8]}), 400, 36)
    _status(rest("POST", f"/collections/{name}/vectors", {"vectors": [[1] * 7]}), 400, 7)
    assert rest("GET", f"/collections/{name}").json()["metric_type"] == "HAMMING"


def test_partitions_pages_and_bodies_without_content_type(rest: Rest) -> None:
    name = _create(rest)
    tags = [f"p{i:02d}" for i in range(12)]
    for tag in tags:
        reply = rest("POST", f"/collections/{name}/partitions", {"partition_tag": tag})
        assert reply.status == 201 and reply.json() == {"message": "OK", "code": 0}
    default_page = rest("GET", f"/collections/{name}/partitions").json()
    assert default_page["count"] == 13 and len(default_page["partitions"]) == 10
    assert default_page["partitions"][0] == {"partition_tag": "_default"}
    assert rest("GET", f"/collections/{name}/partitions?page_size=0").json() == {"partitions": [], "count": 13}
    everything = rest("GET", f"/collections/{name}/partitions?all_required=True").json()["partitions"]
    assert [p["partition_tag"] for p in everything] == ["_default", *tags]
    _status(rest("GET", f"/collections/{name}/partitions?all_required=2"), 400, 37)
    _status(rest("GET", f"/collections/{name}/partitions?page_size=x"), 400, 37)
    _status(rest("POST", f"/collections/{name}/partitions", {"partition_tag": "p00"}), 400, 1)
    _status(rest("POST", f"/collections/{name}/partitions", {"partition_tag": "_default"}), 400, 1)
    _status(rest("POST", f"/collections/{name}/partitions", {}), 400, 34)
    _status(rest("POST", f"/collections/{name}/partitions", {"partition_tag": 5}), 400, 36)
    _status(rest("POST", "/collections/nope_x/partitions", {"partition_tag": "a"}), 404, 4)
    # Rows go to a partition; a search restricted to it sees only those.
    rng = np.random.default_rng(5)
    in_p3 = rng.random((20, DIM), dtype=np.float32)
    ids_p3 = _insert(rest, name, in_p3, partition_tag="p03")
    _insert(rest, name, rng.random((20, DIM), dtype=np.float32))
    _status(rest("POST", f"/collections/{name}/vectors", {"vectors": in_p3[:1], "partition_tag": "nope"}), 400, 1)
    _flush(rest, name)
    q = rng.random((2, DIM), dtype=np.float32)
    truth = ((q[:, None, :].astype(np.float64) - in_p3[None].astype(np.float64)) ** 2).sum(axis=2)
    reply = rest("PUT", f"/collections/{name}/vectors",
                 {"search": {"topk": 30, "params": {}, "vectors": q, "partition_tags": ["p03"]}})
    check_hits(reply.json()["result"], truth, ids_p3, 30)
    assert {s["partition_tag"] for s in rest("GET", f"/collections/{name}/segments?partition_tag=p03").json()[
        "segments"]} == {"p03"}
    # DELETE with a body and no Content-Type.
    dropped = rest("DELETE", f"/collections/{name}/partitions", b'{"partition_tag": "p11"}')
    assert dropped.status == 204 and dropped.body == b""
    _status(rest("DELETE", f"/collections/{name}/partitions", {"partition_tag": "_default"}), 400, 9)
    _status(rest("DELETE", f"/collections/{name}/partitions", {"partition_tag": "p11"}), 400, 1)
    _status(rest("DELETE", f"/collections/{name}/partitions", {"partition_tag": 3}), 400, 36)
    assert rest("GET", f"/collections/{name}/partitions").json()["count"] == 12


def test_indexes(rest: Rest) -> None:
    name = _create(rest)
    created = rest("POST", f"/collections/{name}/indexes", {"index_type": "IVFFLAT", "params": {"nlist": 16}})
    assert created.status == 201 and created.json() == {"message": "OK", "code": 0}
    assert rest("GET", f"/collections/{name}/indexes").json() == {"index_type": "IVFFLAT", "params": {"nlist": 16}}
    described = rest("GET", f"/collections/{name}").json()
    assert described["index"] == "IVFFLAT" and described["index_params"] == '{"nlist":16}'
    _status(rest("POST", f"/collections/{name}/indexes", {"index_type": "BOGUS", "params": {}}), 400, 8)
    _status(rest("POST", f"/collections/{name}/indexes", {"index_type": "IVFFLAT"}), 400, 34)
    _status(rest("POST", f"/collections/{name}/indexes", {"params": {}}), 400, 34)
    _status(rest("POST", f"/collections/{name}/indexes", {"index_type": 2, "params": {}}), 400, 36)
    _status(rest("POST", f"/collections/{name}/indexes", {"index_type": "IVFFLAT", "params": {}}), 400, 5)
    _status(rest("POST", "/collections/nope_x/indexes", {"index_type": "FLAT", "params": {}}), 404, 4)
    search = {"search": {"topk": 2, "params": {}, "vectors": [[0.0] * DIM]}}
    _status(rest("PUT", f"/collections/{name}/vectors", search), 400, 5)  # IVF needs nprobe
    dropped = rest("DELETE", f"/collections/{name}/indexes")
    assert dropped.status == 204 and dropped.body == b""
    assert rest("GET", f"/collections/{name}/indexes").json() == {"index_type": "FLAT", "params": {}}
    _status(rest("DELETE", "/collections/nope_x/indexes"), 404, 4)


def test_system_commands_config_and_tasks(rest: Rest) -> None:
    assert rest("GET", "/system/version").json() == {"code": 0, "message": "OK", "reply": "1.1.1"}
    assert rest("GET", "/system/status").json()["reply"] == "OK"
    assert rest("GET", "/system/mode").json()["reply"] == "CPU"
    assert rest("GET", "/system/no_such_word").json() == {"code": 0, "message": "OK", "reply": "Unknown command"}
    config = rest("GET", "/system/config").json()
    assert config["restart_required"] is False and config["cache"]["cache_size"]
    assert all(isinstance(v, str) for section in config.values() if isinstance(section, dict) for v in section.values())
    changed = rest("PUT", "/system/config", b'{"storage": {"auto_flush_interval": 5}}')
    assert changed.status == 200, changed
    assert changed.json()["message"] == "set_config storage.auto_flush_interval 5 successfully;"
    assert rest("GET", "/system/config").json()["storage"]["auto_flush_interval"] == "5"
    assert rest("PUT", "/system/config", {"storage": {"auto_flush_interval": "0"}}).status == 200
    _status(rest("PUT", "/system/config", {"no_such": {"key": "1"}}), 400, 1)
    _status(rest("PUT", "/system/config", [1]), 400, 35)
    _status(rest("PUT", "/system/config", {"storage": 5}), 400, 35)
    _status(rest("PUT", "/system/other", {"a": {}}), 400, 32)
    _status(rest("PUT", "/system/task", b""), 400, 34)
    _status(rest("PUT", "/system/task", b"{oops"), 400, 36)
    _status(rest("PUT", "/system/task", {"nothing": {}}), 400, 35)
    # No 404 branch on /system: a missing collection is 400 with code 4.
    _status(rest("PUT", "/system/task", {"load": {"collection_name": "nope_x"}}), 400, 4)
    _status(rest("PUT", "/system/task", {"flush": {"collection_names": ["nope_x"]}}), 400, 4)
    _status(rest("PUT", "/system/task", {"compact": {"collection_name": "nope_x"}}), 400, 4)
    _status(rest("PUT", "/system/task", {"load": {}}), 400, 34)
    _status(rest("PUT", "/system/task", {"flush": {}}), 400, 34)
    name = _create(rest)
    tasks: list[dict[str, Any]] = [{"load": {"collection_name": name}},
                                   {"load": {"collection_name": name, "partition_tags": None}},
                                   {"release": {"collection_name": name}}, {"compact": {"collection_name": name}},
                                   {"flush": {"collection_names": []}}]
    for task in tasks:
        reply = rest("PUT", "/system/task", task)
        assert reply.status == 200 and reply.json() == {"code": 0, "message": "OK"}, (task, reply)
    advanced = rest("GET", "/config/advanced").json()
    assert set(advanced) == {"cpu_cache_capacity", "cache_insert_data", "use_blas_threshold"}
    assert rest("PUT", "/config/advanced", {"cpu_cache_capacity": 2}).json() == {"message": "OK", "code": 0}
    assert rest("GET", "/config/advanced").json()["cpu_cache_capacity"] == 2
    assert rest("GET", "/system/config").json()["cache"]["cache_size"] == "2GB"
    _status(rest("PUT", "/config/advanced", {"cpu_cache_capacity": None}), 400, 34)
    _status(rest("PUT", "/config/advanced", {"gpu_search_threshold": 1}), 400, 35)
    assert rest("PUT", "/config/advanced", {"cpu_cache_capacity": advanced["cpu_cache_capacity"] or 4}).status == 200


def test_bad_input_is_refused_whole(rest: Rest, rest_node: NodeProcess) -> None:
    name = _create(rest)
    rng = np.random.default_rng(1)
    _insert(rest, name, rng.random((10, DIM), dtype=np.float32))
    path = f"/collections/{name}/vectors"
    one = [[0.5] * DIM]
    _status(rest("POST", path, b""), 400, 34)
    _status(rest("POST", path, b'{"vectors": [[1, 2'), 400, 36)
    _status(rest("POST", path, {"ids": ["1"]}), 400, 34)
    _status(rest("POST", path, {"vectors": [[0.5] * (DIM - 1) + ["x"]]}), 400, 36)
    _status(rest("POST", path, {"vectors": [[0.5] * (DIM - 1) + [None]]}), 400, 36)
    _status(rest("POST", path, {"vectors": "rows"}), 400, 36)
    _status(rest("POST", path, {"vectors": one, "ids": [1]}), 400, 36)  # ids are strings in Milvus 1.1
    _status(rest("POST", path, {"vectors": one, "ids": "1"}), 400, 35)
    _status(rest("POST", path, {"vectors": one, "ids": ["1"]}), 400, 12)  # an auto-id collection
    _status(rest("POST", path, {"vectors": [[0.5] * DIM, [0.5] * (DIM + 1)]}), 400, 7)
    _status(rest("POST", path, {"vectors": [[1e39] * DIM]}), 400, 11)
    _status(rest("POST", path, {"vectors": []}), 400, 11)
    _status(rest("POST", path, {"vectors": one, "partition_tag": 3}), 400, 36)
    _status(rest("POST", "/collections/nope_x/vectors", b"garbage"), 404, 4)  # the collection is checked first
    # Larger than the node's message cap (4MB here): refused before it is read, with a status body.
    big = b'{"vectors": [' + b"[0.1, 0.2]," * 500_000 + b"[0.1, 0.2]]}"
    reply = rest("POST", path, big)
    assert reply.status == 413 and reply.json()["code"] == 35, reply
    search = {"topk": 3, "params": {}, "vectors": one}
    _status(rest("PUT", path, {"search": {**search, "topk": "3"}}), 400, 36)
    _status(rest("PUT", path, {"search": {"params": {}, "vectors": one}}), 400, 34)
    _status(rest("PUT", path, {"search": {"topk": 3, "vectors": one}}), 400, 34)
    _status(rest("PUT", path, {"search": {"topk": 3, "params": {}}}), 400, 34)
    _status(rest("PUT", path, {"search": {**search, "topk": 0}}), 400, 10)
    _status(rest("PUT", path, {"search": {**search, "partition_tags": "p"}}), 400, 36)
    _status(rest("PUT", path, {"search": {**search, "ids": [5]}}), 400, 36)
    _status(rest("PUT", path, {"search": {**search, "vectors": [[0.5] * (DIM + 1)]}}), 400, 7)
    _status(rest("PUT", path, {"other": {}}), 400, 35)
    _status(rest("PUT", path, b"[1,2"), 400, 36)
    _status(rest("PUT", "/collections/nope_x/vectors", {"search": search}), 404, 4)
    _flush(rest, name)
    assert _count(rest, name) == 10  # nothing of the refused requests was written


def test_rest_requests_are_counted_by_route_and_status(rest: Rest, rest_node: NodeProcess) -> None:
    rest("GET", "/state")
    rest("GET", "/collections/nope_x")
    rest("GET", "/nope")
    samples = scrape(rest_node.metrics_port)
    counts = {(labels.get("route"), labels.get("status")): value for name, labels, value in samples
              if name == "mishards_node_rest_request_seconds_count"}
    assert counts.get(("GET /state", "200"), 0) >= 1
    assert counts.get(("GET /collections/{collection_name}", "404"), 0) >= 1
    assert counts.get(("unmatched", "404"), 0) >= 1
