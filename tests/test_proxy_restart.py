"""The proxy holds no state: kill -9 it during a search and insert load, start a new one on the same port, and
the same clients carry on; every acknowledged insert is there, searches give the same answers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.cluster import LocalCluster
from tests.support.waiting import free_port, poll_for


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_clients_carry_on_through_a_proxy_restart(tmp_path: Path) -> None:
    port = free_port()
    with LocalCluster(tmp_path, readers=2, proxy_args=["--port", str(port)]) as cluster:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        client = milvus_pb2_grpc.MilvusServiceStub(channel)
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1, metric_type=1)
        assert client.CreateCollection(schema).error_code == 0
        rng = np.random.default_rng(1)
        base = rng.standard_normal((3000, 8)).astype(np.float32)
        assert client.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(base))).status \
            .error_code == 0
        assert client.Flush(milvus_pb2.FlushParam()).error_code == 0
        query = milvus_pb2.SearchParam(collection_name="c", topk=5, query_record_array=_rows(base[:4]))
        reference = client.Search(query, timeout=30)
        assert reference.status.error_code == 0 and reference.row_num == 4

        acked = [0]
        searches = {"ok": 0, "failed": 0, "wrong": 0}
        stop = threading.Event()

        def insert_load() -> None:
            batch = rng.standard_normal((100, 8)).astype(np.float32)
            while not stop.is_set():
                try:
                    reply = client.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(batch)),
                                          timeout=10)
                except grpc.RpcError:
                    continue  # not acknowledged: the client would retry
                if reply.status.error_code == 0:
                    acked[0] += len(reply.vector_id_array)

        def search_load() -> None:
            while not stop.is_set():
                try:
                    res = client.Search(query, timeout=10)
                except grpc.RpcError:
                    searches["failed"] += 1
                    continue
                if res.status.error_code != 0:
                    searches["failed"] += 1
                elif list(res.ids)[::5] != list(reference.ids)[::5]:
                    searches["wrong"] += 1
                else:
                    searches["ok"] += 1

        workers = [threading.Thread(target=insert_load), threading.Thread(target=search_load)]
        for w in workers:
            w.start()
        try:
            poll_for(lambda: searches["ok"] >= 10 and acked[0] >= 1000, 60, what="load through the first proxy")
            cluster.proxy.kill()
            ok_before = searches["ok"]
            cluster.restart_proxy()
            poll_for(lambda: searches["ok"] >= ok_before + 20, 60, what="searches through the new proxy")
            acked_now = acked[0]
            poll_for(lambda: acked[0] >= acked_now + 1000, 60, what="inserts through the new proxy")
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        assert searches["wrong"] == 0
        assert client.Flush(milvus_pb2.FlushParam()).error_code == 0
        count = client.CountCollection(milvus_pb2.CollectionName(collection_name="c")).collection_row_count
        # Every acknowledged row is there; an insert cut off by the kill may have landed unacknowledged.
        assert 3000 + acked[0] <= count <= 3000 + acked[0] + 100
        channel.close()
