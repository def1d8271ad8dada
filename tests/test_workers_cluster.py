"""A cluster whose read node runs two workers (real processes): the proxy spreads its searches over both
workers of the node (seen in the node's per-worker metrics) and the results stay exact; a proxy of two
workers answers on its shared port."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support import requests as rq
from tests.support.cluster import LocalCluster
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for
from tests.test_workers_node import stub_at

DIM = 8


def searches_per_worker(metrics_port: int) -> tuple[float, float]:
    samples = scrape(metrics_port)
    return tuple(value(samples, "mishards_node_request_seconds_count", method="SearchInFiles", worker=w)
                 for w in ("0", "1"))  # type: ignore[return-value]


def test_the_proxy_spreads_searches_over_the_workers_of_a_read_node(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=1, reader_args=["--workers", "2", "--metrics-port", "-1"]) as cluster:
        stub = rq.TimedStub(cluster.stub())
        name = rq.unique_name("spread")
        rq.ok(rq.create(stub, name, DIM, rq.L2))
        rng = np.random.default_rng(11)
        base = rng.random((300, DIM), dtype=np.float32)
        ids = rq.insert_ok(stub, name, base)
        rq.ok(rq.flush(stub, name))
        queries = rng.random((3, DIM), dtype=np.float32)
        reader = cluster.readers[0]

        def both_workers_searched() -> bool:
            status, got_ids, got_dist = rq.search(stub, name, queries, 5)
            assert status.error_code == 0, status.reason
            rq.assert_search_exact(got_ids, got_dist, base, ids, queries, 5, rq.L2)
            return min(searches_per_worker(reader.metrics_port)) > 0

        poll_for(both_workers_searched, 60, interval=0.05, what="searches on both workers of the read node")
        before = searches_per_worker(reader.metrics_port)
        for _ in range(20):
            status, got_ids, got_dist = rq.search(stub, name, queries, 5)
            assert status.error_code == 0, status.reason
            rq.assert_search_exact(got_ids, got_dist, base, ids, queries, 5, rq.L2)
        after = searches_per_worker(reader.metrics_port)
        spread = [a - b for a, b in zip(after, before, strict=True)]
        assert sum(spread) >= 20 and min(spread) >= 5, f"sub-requests per worker: {spread}"

        # The proxy itself as two workers sharing its port: connections of their own land on either one.
        cluster.proxy.stop()
        proxy = cluster.restart_proxy(["--workers", "2", "--metrics-port", "-1"])
        for _ in range(8):
            channel, own = stub_at(proxy.address, own_connection=True)
            try:
                status, got_ids, got_dist = rq.search(own, name, queries, 5)
                assert status.error_code == 0, status.reason
                rq.assert_search_exact(got_ids, got_dist, base, ids, queries, 5, rq.L2)
            finally:
                channel.close()
        samples = scrape(proxy.metrics_port)
        assert value(samples, "mishards_worker_up", worker="0") == 1
        assert value(samples, "mishards_worker_up", worker="1") == 1
