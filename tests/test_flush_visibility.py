"""Flush returns when the rows are searchable on every read node: a search right after it, through the proxy or
on any read node given the proxy's catalog revision, finds exactly the rows flushed (and not the deleted ones).

Read nodes poll the catalog only once a minute here, so nothing but the revision a search carries makes them
see a flush: what a client flushed is what the next search finds, whichever read node serves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog
from coordinator.headers import MIN_REVISION_HEADER
from tests.support.cluster import LocalCluster
from tests.support.requests import (
    L2,
    assert_search_exact,
    create,
    decode_topk,
    delete,
    flush,
    insert_ok,
    ok,
    search,
    search_param,
)

DIM = 8
K = 5
SLOW_POLL = ("--catalog-refresh-interval", "60")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path, readers=2, replication=2, reader_args=SLOW_POLL) as c:
        yield c


def _search_with_revision(stub: Any, name: str, queries: np.ndarray,
                          revision: int) -> tuple[Any, np.ndarray, np.ndarray]:
    reply = stub.Search(search_param(name, queries, K), timeout=30,
                        metadata=((MIN_REVISION_HEADER, str(revision)),))
    return decode_topk(reply)


def _assert_everywhere(cluster: LocalCluster, name: str, base: np.ndarray, ids: np.ndarray,
                       queries: np.ndarray) -> None:
    """The first search after a Flush, through the proxy and on each read node with the proxy's revision, is
    exact over ``base``."""
    status, got_ids, got_dist = search(cluster.stub(), name, queries, K)
    ok(status)
    assert_search_exact(got_ids, got_dist, base, ids, queries, K, L2)
    catalog = Catalog(cluster.meta_uri)
    try:
        revision = catalog.revision()  # what the proxy, checking the catalog before a search, sends
    finally:
        catalog.close()
    for reader in cluster.readers:
        status, got_ids, got_dist = _search_with_revision(reader.stub(), name, queries, revision)
        ok(status)
        assert_search_exact(got_ids, got_dist, base, ids, queries, K, L2)


def _collection(cluster: LocalCluster, name: str) -> Any:
    stub = cluster.stub()
    ok(create(stub, name, DIM, L2))
    return stub


def test_rows_flushed_through_the_proxy_are_found_at_once_on_every_read_node(cluster: LocalCluster) -> None:
    name = "flushed_everywhere"
    stub = _collection(cluster, name)
    rng = np.random.default_rng(5)
    base = np.zeros((0, DIM), dtype=np.float32)
    ids = np.zeros(0, dtype=np.int64)
    for round_no in range(3):  # each Flush publishes a new segment the read nodes have not loaded
        batch = rng.standard_normal((40, DIM), dtype=np.float32)
        batch_ids = np.arange(round_no * 1000, round_no * 1000 + 40, dtype=np.int64)
        insert_ok(stub, name, batch, batch_ids)
        ok(flush(stub, name))
        base, ids = np.concatenate([base, batch]), np.concatenate([ids, batch_ids])
        queries = np.concatenate([batch[:3], rng.standard_normal((2, DIM), dtype=np.float32)])
        _assert_everywhere(cluster, name, base, ids, queries)


def test_deletes_flushed_through_the_proxy_are_gone_at_once_on_every_read_node(cluster: LocalCluster) -> None:
    name = "deleted_everywhere"
    stub = _collection(cluster, name)
    rng = np.random.default_rng(6)
    base = rng.standard_normal((60, DIM), dtype=np.float32)
    ids = np.arange(60, dtype=np.int64)
    insert_ok(stub, name, base, ids)
    ok(flush(stub, name))
    queries = base[:6]
    _assert_everywhere(cluster, name, base, ids, queries)  # every read node has loaded the segment
    gone = ids[:4]  # the nearest rows of the first four queries
    ok(delete(stub, name, gone))
    ok(flush(stub, name))
    keep = ~np.isin(ids, gone)
    _assert_everywhere(cluster, name, base[keep], ids[keep], queries)
