"""Every public method of the three clients: ``Milvus`` has pymilvus 1.1.2's methods with the same parameter names
and defaults (read from pymilvus 1.1.2 itself), ``AsyncMilvus`` and ``RestMilvus`` have ``Milvus``'s; the
methods no other test module calls on ``AsyncMilvus`` or ``RestMilvus`` are called here against a real node
(gRPC and REST), their results compared with the sync gRPC client's. Also exact numpy round trips of float32
bit patterns (subnormals, signed zeros, extremes) and of every byte value of a binary vector, on each transport.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import transport_scenario as scenario
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import free_port

from mishards_client import MetricType, Milvus, NotConnectError, Status
from mishards_client import hybrid as h
from mishards_client.aio import AsyncMilvus
from mishards_client.rest import RestMilvus

# Read in a child process: pymilvus 1.1.2's generated code needs the pure-Python protobuf, chosen at import.
PYMILVUS_SIGNATURES = r"""
import inspect, json, sys, warnings
warnings.simplefilter("ignore")
try:
    from milvus import Milvus
except ImportError:
    sys.exit(3)
print(json.dumps({name: [[p.name, repr(p.default)] for p in inspect.signature(member).parameters.values()]
                  for name, member in inspect.getmembers(Milvus)
                  if not name.startswith("_") and callable(member)}))
"""


def public_methods(cls: type) -> dict[str, list[list[str]]]:
    return {name: [[p.name, repr(p.default)] for p in inspect.signature(member).parameters.values()]
            for name, member in inspect.getmembers(cls) if not name.startswith("_") and callable(member)}


def test_sync_methods_and_parameters_are_pymilvus_ones() -> None:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-c", PYMILVUS_SIGNATURES], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode == 3:
        pytest.skip("pymilvus 1.1.2 is not installed in this interpreter (scripts/bootstrap.sh installs it)")
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    ours = public_methods(Milvus)
    assert set(theirs) - set(ours) == {"set_hook"}  # documented as absent (client/README.md)
    assert {name: ours[name] for name in theirs if name != "set_hook"} == {
        name: params for name, params in theirs.items() if name != "set_hook"}
    assert set(ours) - set(theirs) == {
        "count_hybrid_collection", "create_hybrid_collection", "delete_entities_by_id",
        "describe_hybrid_collection", "drop_hybrid_collection", "get_entities_by_id", "get_entity_array",
        "has_hybrid_collection", "hybrid_search", "insert_entities", "list_hybrid_collections"}


def test_async_and_rest_clients_have_the_sync_methods_and_parameters() -> None:
    sync = public_methods(Milvus)
    assert public_methods(AsyncMilvus) == sync
    rest = public_methods(RestMilvus)
    assert set(rest) == set(sync)
    with_timeout = {"get_config", "set_config"}  # the REST client also bounds these two by a timeout
    assert {name: p for name, p in rest.items() if name not in with_timeout} == {
        name: p for name, p in sync.items() if name not in with_timeout}
    for name in with_timeout:
        assert rest[name] == [*sync[name], ["timeout", "30"]]
    coroutines = {name for name, member in inspect.getmembers(AsyncMilvus) if inspect.iscoroutinefunction(member)}
    assert set(sync) - coroutines == {"client_version", "connected"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("method-parity"), ["--auto-flush-interval", "0", "--metrics-port",
                                                                "-1"], http=True) as proc:
        yield proc


@pytest.fixture(scope="module")
def sync(node: NodeProcess) -> Iterator[Milvus]:
    client = Milvus(uri=f"tcp://{node.address}")
    yield client
    client.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_commands_configuration_and_connection(node: NodeProcess, sync: Milvus) -> None:
    async def main() -> None:
        client = AsyncMilvus(uri=f"tcp://{node.address}")
        assert client.client_version() == sync.client_version() == "0.1.0"
        assert await client.connect() == Status(message="Connected")
        assert client.connected()
        assert await client.server_status() == sync.server_status()
        status, value = await client.get_config("cache", "cache_size")
        assert status.OK() and value == sync.get_config("cache", "cache_size")[1]
        status, message = await client.set_config("cache", "cache_size", "3GB")
        sync_status, sync_message = sync.set_config("cache", "cache_size", "3GB")
        assert status.OK() and (status, message) == (sync_status, sync_message)
        assert sync.get_config("cache", "cache_size")[1] == "3GB"
        assert (await client.set_config("cache", "cache_size", value))[0].OK()
        assert sync.get_config("cache", "cache_size")[1] == value
        await client.disconnect()
        assert not client.connected()
        with pytest.raises(NotConnectError):
            await client.server_status()

    run(main())


def test_async_connect_to_nothing_raises() -> None:
    async def main() -> None:
        client = AsyncMilvus("127.0.0.1", free_port(), retries=0)
        try:
            with pytest.raises(NotConnectError):
                await client.connect(timeout=2)
        finally:
            await client.close()

    run(main())


def test_async_search_in_segment_and_reload_segments(node: NodeProcess, sync: Milvus) -> None:
    x, _ = scenario.data(7)
    ids = np.arange(1, len(x) + 1)
    assert sync.create_collection({"collection_name": "segs", "dimension": scenario.DIM, "index_file_size": 1}).OK()
    assert sync.insert("segs", x[:120], ids=ids[:120])[0].OK()
    assert sync.flush(["segs"]).OK()
    assert sync.insert("segs", x[120:], ids=ids[120:])[0].OK()
    assert sync.flush(["segs"]).OK()
    status, stats = sync.get_collection_stats("segs")
    assert status.OK() and stats is not None
    segments = [seg["name"] for part in stats["partitions"] for seg in part["segments"] or []]
    probes = x[[0, 200]]

    async def main() -> list[tuple[int, int, list[list[int]], list[list[float]]]]:
        async with AsyncMilvus(uri=f"tcp://{node.address}") as client:
            assert (await client.reload_segments("segs", segments)).OK()
            assert (await client.reload_segments("segs_missing", segments)).code == Status.COLLECTION_NOT_EXISTS
            out = []
            for fid in range(1, 30):
                status, result = await client.search_in_segment("segs", [fid], probes, 2)
                out.append((fid, status.code, result.ids.tolist() if status.OK() else [],
                            result.distances.tolist() if status.OK() else []))
            return out

    found = []
    for fid, code, got_ids, got_distances in run(main()):
        status, expected = sync.search_in_segment("segs", [fid], probes, 2)
        assert code == status.code
        if status.OK():
            assert got_ids == expected.ids.tolist() and got_distances == expected.distances.tolist()
            found += [int(row[0]) for row in got_ids if row[0] in (1, 201)]
    assert sorted(found) == [1, 201]  # each probe's own row, in exactly one segment file
    assert sync.drop_collection("segs").OK()


def test_async_drop_hybrid_collection(node: NodeProcess, sync: Milvus) -> None:
    fields = [h.scalar_field("n", h.DataType.INT64), h.vector_field("v", 4)]

    async def main() -> None:
        async with AsyncMilvus(uri=f"tcp://{node.address}") as client:
            assert (await client.create_hybrid_collection("hdrop", fields)).OK()
            status, ids = await client.insert_entities("hdrop", {"n": np.arange(3)}, np.eye(3, 4, dtype=np.float32),
                                                       ids=[1, 2, 3])
            assert status.OK() and ids == [1, 2, 3]
            assert await client.has_hybrid_collection("hdrop") == (Status(), True)
            assert (await client.drop_hybrid_collection("hdrop")).OK()
            assert await client.has_hybrid_collection("hdrop") == (Status(), False)
            assert (await client.drop_hybrid_collection("hdrop")).code == Status.COLLECTION_NOT_EXISTS
            # the schema cache was emptied: a new collection of the name with other fields takes rows
            assert (await client.create_hybrid_collection("hdrop", [h.scalar_field("f", h.DataType.DOUBLE),
                                                                    h.vector_field("v", 4)])).OK()
            status, _ = await client.insert_entities("hdrop", {"f": np.array([0.5])}, np.ones((1, 4), np.float32),
                                                     ids=[9])
            assert status.OK()
            assert (await client.drop_hybrid_collection("hdrop")).OK()

    run(main())
    assert sync.has_hybrid_collection("hdrop") == (Status(), False)


def test_rest_client_version_and_disconnect(node: NodeProcess, sync: Milvus) -> None:
    rest = Milvus("127.0.0.1", node.http_port, handler="HTTP")
    assert isinstance(rest, RestMilvus)
    assert rest.client_version() == sync.client_version() == "0.1.0"
    assert rest.has_collection("x") == (Status(), False)
    rest.disconnect()
    assert not rest.connected()
    with pytest.raises(NotConnectError):
        rest.has_collection("x")


def bit_patterns(rows: int, dim: int) -> np.ndarray:
    """Random float32 bit patterns (every exponent, subnormals included; no NaN or infinity) with both zeros
    and the extreme finite values planted."""
    rng = np.random.default_rng(99)
    bits = rng.integers(0, 2**32, size=(rows, dim), dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32).copy()
    x[~np.isfinite(x)] = np.float32(1.5)
    specials = [0.0, -0.0, np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                np.float32(1e-45), -np.float32(1e-45), np.finfo(np.float32).eps]
    x[0, :len(specials)] = np.array(specials, dtype=np.float32)
    return x


def test_numpy_round_trips_are_bit_exact_on_every_transport(node: NodeProcess, sync: Milvus) -> None:
    """What goes in comes back with the same bits: float32 rows (compared as uint32) and binary rows holding
    every byte value, over gRPC, asyncio and REST."""
    dim, rows = 16, 64
    x = bit_patterns(rows, dim)
    codes = np.arange(256, dtype=np.uint8).reshape(32, 8)  # every byte value; 64-bit binary vectors
    ids = list(range(1, rows + 1))
    assert sync.create_collection({"collection_name": "bits", "dimension": dim}).OK()
    assert sync.create_collection({"collection_name": "bytes", "dimension": 64,
                                   "metric_type": MetricType.HAMMING}).OK()
    status, got = sync.insert("bits", x, ids=ids)
    assert status.OK() and got == ids
    assert sync.insert("bytes", codes, ids=ids[:32])[0].OK()
    assert sync.flush(["bits", "bytes"]).OK()
    wanted = [*ids[::-1], 10_000]

    def check(status: Status, vectors: np.ndarray, found: np.ndarray, binary: bool) -> None:
        assert status.OK() and found.tolist() == [True] * (len(found) - 1) + [False]
        if binary:
            assert vectors.dtype == np.uint8 and np.array_equal(vectors[:-1], codes[::-1]) and not vectors[-1].any()
        else:
            assert vectors.dtype == np.float32
            assert np.array_equal(vectors[:-1].view(np.uint32), x[::-1].view(np.uint32))

    check(*sync.get_entity_array("bits", wanted), binary=False)
    check(*sync.get_entity_array("bytes", wanted[-33:]), binary=True)
    status, rows_back = sync.get_entity_by_id("bits", ids[:2])
    assert status.OK() and np.array_equal(np.array(rows_back, dtype=np.float32).view(np.uint32),
                                          x[:2].view(np.uint32))

    async def over_asyncio() -> None:
        async with AsyncMilvus(uri=f"tcp://{node.address}") as client:
            check(*(await client.get_entity_array("bits", wanted)), binary=False)
            check(*(await client.get_entity_array("bytes", wanted[-33:])), binary=True)

    run(over_asyncio())
    rest = Milvus("127.0.0.1", node.http_port, handler="HTTP")
    try:
        check(*rest.get_entity_array("bits", wanted), binary=False)
        check(*rest.get_entity_array("bytes", wanted[-33:]), binary=True)
        # and in through REST: the same bits stored
        assert rest.create_collection({"collection_name": "bits_rest", "dimension": dim}).OK()
        assert rest.insert("bits_rest", x, ids=ids)[0].OK()
        assert rest.flush(["bits_rest"]).OK()
        check(*sync.get_entity_array("bits_rest", wanted), binary=False)
    finally:
        rest.close()
    # search replies: ids as int64 and distances as float32 arrays, equal to the oracle's float32 arithmetic
    q = np.float32(0.5) * np.ones((3, dim), dtype=np.float32)
    assert sync.create_collection({"collection_name": "small", "dimension": dim}).OK()
    y = np.random.default_rng(3).random((50, dim), dtype=np.float32)
    assert sync.insert("small", y, ids=list(range(100, 150)))[0].OK()
    assert sync.flush(["small"]).OK()
    status, result = sync.search("small", 5, q)
    assert status.OK() and result.ids.dtype == np.int64 and result.distances.dtype == np.float32
    truth = scenario.l2(y, q)
    scenario.check_hits(result.ids, result.distances, truth, np.arange(100, 150), 5)
    for name in ("bits", "bytes", "bits_rest", "small"):
        assert sync.drop_collection(name).OK()
