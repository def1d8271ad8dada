"""Several proxies in front of one cluster (as behind a load balancer): with strong consistency (the default) a
search through any proxy sees what was flushed through another; with session consistency a proxy's polled view
may lag. Proxies and read nodes poll the catalog only every 30 s here, so no poll can hide the difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.proxyproc import ProxyProcess

SLOW_POLL = ["--catalog-refresh-interval", "30"]


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _insert_and_flush(stub: Any, x: np.ndarray) -> list[int]:
    reply = stub.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(x)))
    assert reply.status.error_code == 0
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=["c"])).error_code == 0
    return list(reply.vector_id_array)


def _nearest(stub: Any, q: np.ndarray) -> list[int]:
    res = stub.Search(milvus_pb2.SearchParam(collection_name="c", topk=1, query_record_array=_rows(q)), timeout=30)
    assert res.status.error_code == 0, res.status.reason
    return list(res.ids)


def test_a_search_through_one_proxy_sees_what_another_flushed(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, reader_args=SLOW_POLL, proxy_args=SLOW_POLL) as cluster:
        other_strong = ProxyProcess(tmp_path / "strong", cluster.membership, [*cluster.proxy_args])
        other_session = ProxyProcess(tmp_path / "session", cluster.membership,
                                     [*cluster.proxy_args, "--consistency", "session"])
        try:
            other_strong.start()
            other_session.start()
            a, strong, session = cluster.stub(), other_strong.stub(), other_session.stub()
            schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1, metric_type=1)
            assert a.CreateCollection(schema).error_code == 0
            rng = np.random.default_rng(4)
            first = rng.standard_normal((200, 8)).astype(np.float32)
            first_ids = _insert_and_flush(a, first)
            # Each other proxy catches up once with a change of its own (a new partition).
            for i, stub in enumerate((strong, session)):
                assert stub.CreatePartition(milvus_pb2.PartitionParam(collection_name="c", tag=f"t{i}")).error_code == 0
                assert _nearest(stub, first[:5]) == first_ids[:5]
            # A second flush through proxy A: a new segment the other proxies' polled views do not hold.
            second = rng.standard_normal((200, 8)).astype(np.float32) + 100.0  # far from the first batch
            second_ids = _insert_and_flush(a, second)
            assert _nearest(strong, second[:5]) == second_ids[:5]  # strong: checked the revision, found it
            assert _nearest(a, second[:5]) == second_ids[:5]
            stale = _nearest(session, second[:5])  # session: the lag strong consistency removes
            assert not set(stale) & set(second_ids)
        finally:
            other_strong.stop()
            other_session.stop()
