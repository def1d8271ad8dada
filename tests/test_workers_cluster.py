"""``mishards up --workers 2`` (real processes): its read node and its proxy run two workers each; the proxy
spreads its searches over both workers of the read node (seen in the node's per-worker metrics), connections to
the proxy's gRPC and REST ports land on either proxy worker, and every result is exact; a release, a preload and a
set_config through the proxy reach both workers of the read node."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from milvus_wire import milvus_pb2
from tests.support import http
from tests.support import requests as rq
from tests.support.scrape import scrape, value
from tests.support.upproc import UpProcess
from tests.support.waiting import poll_for
from tests.test_workers_node import stub_at

DIM = 8


def searches_per_worker(metrics_port: int) -> list[float]:
    samples = scrape(metrics_port)
    return [value(samples, "mishards_node_request_seconds_count", method="SearchInFiles", worker=w)
            for w in ("0", "1")]


def test_up_with_two_workers_spreads_searches_over_the_workers_of_a_read_node(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "up", ["--workers", "2", "--readers", "1", "--http-port", "-1"])
    up.start()
    channels = []
    try:
        channel, stub = stub_at(up.address)
        channels.append(channel)
        name = rq.unique_name("spread")
        rq.ok(rq.create(stub, name, DIM, rq.L2))
        rng = np.random.default_rng(11)
        base = rng.random((300, DIM), dtype=np.float32)
        ids = rq.insert_ok(stub, name, base)
        rq.ok(rq.flush(stub, name))
        queries = rng.random((3, DIM), dtype=np.float32)
        reader_metrics = int(up.info["metrics_ports"]["reader-1"])

        def search_is_exact(through: object) -> None:
            status, got_ids, got_dist = rq.search(through, name, queries, 5)
            assert status.error_code == 0, status.reason
            rq.assert_search_exact(got_ids, got_dist, base, ids, queries, 5, rq.L2)

        def both_workers_searched() -> bool:
            search_is_exact(stub)
            return min(searches_per_worker(reader_metrics)) > 0

        poll_for(both_workers_searched, 60, interval=0.05, what="searches on both workers of the read node")
        before = searches_per_worker(reader_metrics)
        for _ in range(20):
            search_is_exact(stub)
        spread = [a - b for a, b in zip(searches_per_worker(reader_metrics), before, strict=True)]
        assert sum(spread) >= 20 and min(spread) >= 5, f"sub-requests per worker: {spread}"

        for _ in range(6):  # connections of their own to the proxy's port: either proxy worker answers
            own_channel, own = stub_at(up.address, own_connection=True)
            channels.append(own_channel)
            search_is_exact(own)
        proxy = scrape(int(up.info["metrics_ports"]["proxy"]))
        assert value(proxy, "mishards_worker_up", worker="0") == value(proxy, "mishards_worker_up", worker="1") == 1
        requests = [value(proxy, "mishards_proxy_request_seconds_count", worker=w) for w in ("0", "1")]
        assert sum(requests) > 0, requests
        for _ in range(6):  # both proxy workers share the REST port too: every new connection is answered
            reply = http.request(up.http_port, "GET", f"/collections/{name}")
            assert reply.status == 200 and reply.json()["dimension"] == DIM, reply.body

        # Calls the proxy sends to every node reach every worker of the read node.
        def per_worker(metric: str) -> list[float]:
            samples = scrape(reader_metrics)
            return [value(samples, metric, worker=w) for w in ("0", "1")]

        param = milvus_pb2.PreloadCollectionParam(collection_name=name)
        rq.ok(stub.ReleaseCollection(param))
        assert per_worker("mishards_node_cache_segments") == [0, 0]
        rq.ok(stub.PreloadCollection(param))
        loaded = per_worker("mishards_node_cache_segments")
        assert loaded[0] == loaded[1] > 0, loaded
        rq.ok(rq.cmd(stub, "set_config cache.cache_size 200MB"))
        assert per_worker("mishards_node_cache_capacity_bytes") == [200 << 20, 200 << 20]
    finally:
        for channel in channels:
            channel.close()
        up.stop()
