"""Every public method of ``Milvus`` against one real node (module-scoped), numpy round trips checked exactly
and searches against a numpy oracle; then retries across a killed and restarted node."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import free_port

from mishards_client import IndexType, MetricType, Milvus, ParamError, Status

DIM = 16


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path_factory.mktemp("client-node"), ["--auto-flush-interval", "0"])
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> Iterator[Milvus]:
    host, _, port = node.address.rpartition(":")
    c = Milvus(host, port)
    yield c
    c.close()


@pytest.fixture(scope="module")
def loaded(client: Milvus) -> tuple[np.ndarray, list[int]]:
    """Collection ``f`` (L2, 16 dims) with 300 float rows (200 in partition ``p``), flushed."""
    assert client.create_collection({"collection_name": "f", "dimension": DIM, "index_file_size": 64,
                                     "metric_type": MetricType.L2}).OK()
    assert client.create_partition("f", "p").OK()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, DIM)).astype(np.float32)
    status, ids_a = client.insert("f", x[:100])
    assert status.OK() and len(ids_a) == 100
    status, ids_b = client.insert("f", x[100:], partition_tag="p")
    assert status.OK()
    assert client.flush(["f"]).OK()
    return x, ids_a + ids_b


def l2_oracle(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((q[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def test_disconnect_closes(node: NodeProcess) -> None:
    host, _, port = node.address.rpartition(":")
    other = Milvus(host, port)
    assert other.has_collection("x")[0].OK()
    other.disconnect()
    assert not other.connected()


def test_server_commands(client: Milvus, node: NodeProcess) -> None:
    assert client.server_version() == (Status(), "1.1.1")
    status, text = client.server_status()
    assert status.OK() and text
    status, value = client.get_config("cache", "cache_size")
    assert status.OK() and value
    assert client.set_config("cache", "cache_size", value)[0].OK()
    assert client.connect().OK() and client.connected()
    assert client.name is None and client.handler == "GRPC" and client.address == node.address
    assert client.client_version() == "0.1.0"


def test_collection_metadata(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    assert client.has_collection("f") == (Status(), True)
    assert client.has_collection("nope")[1] is False
    status, info = client.get_collection_info("f")
    assert status.OK() and info is not None
    assert (info.collection_name, info.dimension, info.index_file_size, info.metric_type) == ("f", DIM, 64,
                                                                                             MetricType.L2)
    assert client.count_entities("f") == (Status(), 300)
    status, names = client.list_collections()
    assert status.OK() and "f" in names
    status, stats = client.get_collection_stats("f")
    assert status.OK() and stats is not None and stats["row_count"] == 300
    assert {p["tag"] for p in stats["partitions"]} == {"_default", "p"}
    status, info = client.get_collection_info("nope")
    assert status.code == Status.COLLECTION_NOT_EXISTS and info is None


def test_partitions(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    assert client.has_partition("f", "p") == (Status(), True)
    assert client.has_partition("f", "q")[1] is False
    status, parts = client.list_partitions("f")
    assert status.OK() and sorted(p.tag for p in parts) == ["_default", "p"]
    assert client.create_partition("f", "tmp").OK()
    assert client.drop_partition("f", "tmp").OK()
    assert not client.has_partition("f", "tmp")[1]


def test_numpy_round_trip_exact(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    x, ids = loaded
    status, rows = client.get_entity_by_id("f", ids[95:105])
    assert status.OK() and np.array_equal(np.array(rows, dtype=np.float32), x[95:105])
    status, arr, found = client.get_entity_array("f", [ids[3], 999, ids[250]])
    assert status.OK() and found.tolist() == [True, False, True]
    assert np.array_equal(arr[[0, 2]], x[[3, 250]]) and not arr[1].any()
    status, rows = client.get_entity_by_id("f", [ids[150]], partition_tag="p")
    assert status.OK() and rows[0] == x[150].tolist()


def test_search_numpy_in_and_out_against_oracle(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    x, ids = loaded
    q = x[[0, 150, 299]] + np.float32(0.01)
    status, result = client.search("f", 10, q)
    assert status.OK()
    assert result.ids.shape == (3, 10) and result.ids.dtype == np.int64 and result.distances.dtype == np.float32
    order, dist = l2_oracle(x, q, 10)
    np.testing.assert_allclose(result.distances, dist, rtol=1e-4, atol=1e-5)
    id_of = np.array(ids)
    for row in range(3):
        # ties may swap equal distances; every returned id is at its oracle distance
        got = {int(i): float(d) for i, d in zip(result.ids[row], result.distances[row], strict=True)}
        assert set(got) <= set(id_of[np.argsort(((x - q[row]) ** 2).sum(-1))[:12]].tolist())
        assert result.id_array[row][0] == int(id_of[order[row, 0]])
    status, lists = client.search("f", 5, q.tolist(), partition_tags=["p"], params={"nprobe": 1})
    assert status.OK() and all(i in ids[100:] for row in lists.id_array for i in row)


def test_search_in_segment_and_list_ids(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    x, ids = loaded
    status, stats = client.get_collection_stats("f")
    assert status.OK() and stats is not None
    segment = next(s["name"] for p in stats["partitions"] for s in p["segments"] if p["tag"] == "p")
    status, in_segment = client.list_id_in_segment("f", segment)
    assert status.OK() and set(in_segment) == set(ids[100:])
    # Segment file ids are numbers counted from 1 in a fresh catalog; find the one holding row 150.
    hits = []
    for fid in range(1, 20):
        status, result = client.search_in_segment("f", [fid], x[[150]], 3)
        if status.OK() and result.id_array[0] and result.id_array[0][0] == ids[150]:
            hits.append(fid)
    assert len(hits) == 1


def test_indexes(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    assert client.create_index("f", IndexType.IVF_FLAT, {"nlist": 8}).OK()
    status, index = client.get_index_info("f")
    assert status.OK() and index is not None
    assert index.index_type == IndexType.IVF_FLAT and index.params == {"nlist": 8}
    status, result = client.search("f", 3, loaded[0][:2], params={"nprobe": 8})
    assert status.OK() and result.id_array[0][0] == loaded[1][0]
    assert client.drop_index("f").OK()
    assert client.get_index_info("f")[1].index_type == IndexType.FLAT  # type: ignore[union-attr]


def test_async_futures_and_callbacks(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    seen: list[object] = []
    future = client.search("f", 2, loaded[0][:1], _async=True, _callback=lambda s, r: seen.append(s))
    status, result = future.result()
    assert status.OK() and result.id_array[0][0] == loaded[1][0]
    assert future.done() and seen == [Status()]
    assert client.flush(["f"], _async=True).result().OK()
    assert client.compact("f", _async=True).result().OK()
    assert client.create_index("f", IndexType.FLAT, {}, _async=True).result().OK()


def test_binary_collection_round_trip(client: Milvus) -> None:
    assert client.create_collection({"collection_name": "b", "dimension": 64,
                                     "metric_type": MetricType.HAMMING}).OK()
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(50, 8), dtype=np.uint8)
    status, ids = client.insert("b", codes, ids=list(range(1, 51)))
    assert status.OK() and ids == list(range(1, 51))
    assert client.flush(["b"]).OK()
    status, rows = client.get_entity_by_id("b", [1, 50])
    assert status.OK() and rows == [codes[0].tobytes(), codes[49].tobytes()]
    status, result = client.search("b", 3, codes[:2])
    assert status.OK() and result.ids[:, 0].tolist() == [1, 2] and result.distances[:, 0].tolist() == [0.0, 0.0]
    status, result = client.search("b", 1, [codes[5].tobytes()])
    assert status.OK() and result.id_array == [[6]]
    assert client.drop_collection("b").OK()


def test_deletes_load_release_compact(client: Milvus) -> None:
    assert client.create_collection({"collection_name": "d", "dimension": 4}).OK()
    x = np.eye(4, dtype=np.float32)
    assert client.insert("d", x, ids=[10, 11, 12, 13])[0].OK()
    assert client.flush().OK()
    assert client.load_collection("d").OK()
    assert client.delete_entity_by_id("d", [11, 12]).OK()
    assert client.flush(["d"]).OK()
    assert client.count_entities("d") == (Status(), 2)
    assert client.compact("d").OK()
    assert client.release_collection("d").OK()
    status, stats = client.get_collection_stats("d")
    assert status.OK() and stats is not None
    segments = [seg["name"] for part in stats["partitions"] for seg in part["segments"]]
    assert segments and client.reload_segments("d", segments).OK()
    status, rows = client.get_entity_by_id("d", [11, 13])
    assert status.OK() and rows == [[], x[3].tolist()]
    assert client.drop_collection("d").OK()
    assert client.has_collection("d")[1] is False


def test_server_refusals_come_back_as_status(client: Milvus) -> None:
    status, ids = client.insert("nope", np.ones((2, DIM), dtype=np.float32))
    assert status.code == Status.COLLECTION_NOT_EXISTS and ids == []
    status, _ = client.search("f", 0, np.ones((1, DIM), dtype=np.float32))
    assert status.code == Status.ILLEGAL_TOPK
    status, _ = client.insert("f", np.ones((2, 3), dtype=np.float32))
    assert status.code == Status.ILLEGAL_DIMENSION
    assert client.create_collection({"collection_name": "bad name!", "dimension": 4}).code == \
        Status.ILLEGAL_COLLECTION_NAME


def test_client_side_param_errors(client: Milvus) -> None:
    with pytest.raises(ParamError, match="collection_name is required"):
        client.create_collection({"dimension": 4})
    with pytest.raises(ParamError, match="dimension is required"):
        client.create_collection({"collection_name": "x"})
    with pytest.raises(ParamError, match="length of vectors do not match that of ids"):
        client.insert("f", np.ones((2, DIM), dtype=np.float32), ids=[1])
    with pytest.raises(ParamError, match="Params must be a dictionary type"):
        client.search("f", 1, [[1.0] * DIM], params="x")  # type: ignore[arg-type]
    with pytest.raises(ParamError, match="Collection name array must be type of list"):
        client.flush("f")  # type: ignore[arg-type]
    with pytest.raises(ParamError):
        client.get_entity_by_id("f", [])
    with pytest.raises(ParamError, match="Unknown pool value"):
        Milvus("127.0.0.1", 1, pool="x")


def test_threads_share_one_client(client: Milvus, loaded: tuple[np.ndarray, list[int]]) -> None:
    x, ids = loaded
    errors: list[str] = []

    def work(offset: int) -> None:
        for i in range(10):
            row = (offset * 10 + i) % 300
            status, result = client.search("f", 1, x[row:row + 1])
            if not status.OK() or result.id_array[0][0] != ids[row]:
                errors.append(f"{row}: {status}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_retry_across_killed_and_restarted_node(tmp_path: Path) -> None:
    port = free_port()
    node = NodeProcess(tmp_path, ["--port", str(port)])
    node.start()
    try:
        # retried until the deadline (60 s), however long the restart takes on a loaded machine
        client = Milvus("127.0.0.1", port, retries=1000, retry_backoff=0.2, retry_backoff_max=0.5, timeout=60)
        single = Milvus("127.0.0.1", port, retries=0)
        assert client.create_collection({"collection_name": "r", "dimension": 4}).OK()
        node.kill()
        assert single.has_collection("r")[0].code == Status.CONNECT_FAILED
        restarter = threading.Timer(0.5, node.start)
        restarter.start()
        status, present = client.has_collection("r")  # down when sent: retried until the node is back
        restarter.join()
        assert status.OK() and present
        status, ids = client.insert("r", np.ones((3, 4), dtype=np.float32))
        assert status.OK() and len(ids) == 3
        client.close()
        single.close()
    finally:
        node.stop()


def test_prepare_insert_param_sent_as_pymilvus_does(client: Milvus) -> None:
    from mishards_client import Prepare

    assert client.create_collection({"collection_name": "prep", "dimension": 2}).OK()
    message = Prepare.insert_param("prep", [[1.0, 2.0], [3.0, 4.0]], None, ids=[5, 6])
    status, ids = client.insert(None, None, insert_param=message)  # type: ignore[arg-type]
    assert status.OK() and ids == [5, 6]
    assert client.create_collection({"collection_name": "prep_auto", "dimension": 2}).OK()
    status, auto = client.insert(None, None, insert_param=Prepare.insert_param("prep_auto", [[0.5, 0.5]], None),
                                 _async=True).result()  # type: ignore[arg-type]
    assert status.OK() and len(auto) == 1
    assert client.drop_collection("prep_auto").OK()
    with pytest.raises(ParamError, match="insert_param"):
        client.insert(None, None, insert_param="x")  # type: ignore[arg-type]
    assert client.flush(["prep"]).OK() and client.count_entities("prep") == (Status(), 2)
    assert client.get_entity_by_id("prep", [6]) == (Status(message="Obtain vector successfully"), [[3.0, 4.0]])
    assert client.drop_collection("prep").OK()
