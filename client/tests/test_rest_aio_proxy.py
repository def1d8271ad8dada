"""Through a proxy (a writer, one read node, the proxy serving gRPC and REST; module-scoped): the shared
scenario gives the same results over REST, over asyncio and over the sync gRPC client, each checked against a
numpy oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import transport_scenario as scenario
from tests.support.cluster import LocalCluster

from mishards_client import Milvus
from mishards_client.aio import AsyncMilvus


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(Path(tmp_path_factory.mktemp("client-transports-proxy")), readers=1,
                           proxy_args=["--metrics-port", "-1"])
    started.proxy.http = True
    started.start()
    try:
        yield started
    finally:
        started.stop()


def test_same_scenario_results_through_the_proxy_over_every_transport(cluster: LocalCluster) -> None:
    with Milvus(uri=f"tcp://{cluster.proxy.address}") as sync_client:
        over_grpc = scenario.run(sync_client, "px_grpc")
    with Milvus("127.0.0.1", cluster.proxy.http_port, handler="HTTP") as rest_client:
        over_rest = scenario.run(rest_client, "px_rest")
    blocking = scenario.Blocking(lambda: AsyncMilvus(uri=f"tcp://{cluster.proxy.address}"))
    try:
        over_aio = scenario.run(blocking, "px_aio")
    finally:
        blocking.close()
    assert over_rest == over_grpc
    assert over_aio == over_grpc
