"""Search through the proxy fans out across read nodes and equals a single node's exact answer."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.waiting import poll_for

DIM = 16


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _search(stub: Any, name: str, q: np.ndarray, k: int) -> tuple[int, np.ndarray, np.ndarray]:
    res = stub.Search(milvus_pb2.SearchParam(collection_name=name, topk=k, query_record_array=_rows(q)), timeout=30)
    if res.status.error_code or not res.row_num:
        return res.status.error_code, np.zeros((0, 0)), np.zeros((0, 0))
    return 0, np.array(res.ids).reshape(len(q), -1), np.array(res.distances).reshape(len(q), -1)


def test_fanout_equals_exact_search_and_survives_a_killed_reader(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, replication=2, membership_on_nodes=False) as cluster:
        readers = cluster.readers
        w, s = cluster.writer.stub(), cluster.stub()
        rng = np.random.default_rng(11)
        for name, metric in (("l2", 1), ("ip", 2)):
            schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1,
                                                 metric_type=metric)
            assert s.CreateCollection(schema).error_code == 0  # DDL through the proxy reaches the writer
            for _ in range(4):  # four segments of 9,000 rows: none merge
                s.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(
                    rng.standard_normal((9000, DIM)).astype(np.float32))))
                assert s.Flush(milvus_pb2.FlushParam(collection_name_array=[name])).error_code == 0
        q = rng.standard_normal((7, DIM)).astype(np.float32)
        for name in ("l2", "ip"):
            for r in readers:
                poll_for(lambda r=r, name=name: r.stub().CountCollection(  # type: ignore[misc]
                    milvus_pb2.CollectionName(collection_name=name)).collection_row_count == 36000, 15,
                    what="readers to see the data")
            for k in (1, 10, 50):
                code, ids, dist = _search(s, name, q, k)
                assert code == 0
                _, ref_ids, ref_dist = _search(w, name, q, k)
                assert np.allclose(dist, ref_dist, rtol=1e-5, atol=1e-4)
                assert (ids == ref_ids).mean() > 0.99  # equal up to ties
        # The searches were served by the read nodes (the writer only answers when there are none).
        for r in readers:
            info = json.loads(r.stub().Cmd(milvus_pb2.Command(cmd="mishards_stats")).string_reply)
            assert info["cache_hits"] > 0
        # Errors still read as Milvus statuses through the fan-out path.
        assert _search(s, "l2", q, 0)[0] == 10
        assert _search(s, "nope", q, 5)[0] == 4

        # Sustained search load; kill -9 one reader in the middle: with two replicas no search fails.
        failures: list[int] = []
        done = [0]
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                code, ids, _ = _search(s, "l2", q, 10)
                if code != 0 or ids.shape != (7, 10):
                    failures.append(code)
                done[0] += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            poll_for(lambda: done[0] >= 20, 60, what="some searches")
            readers[0].kill()
            before = done[0]
            poll_for(lambda: done[0] >= before + 40, 60, what="searches after the kill")
        finally:
            stop.set()
            worker.join(timeout=60)
        assert failures == []
