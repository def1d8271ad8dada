"""With one replica per segment, losing a read node fails searches fast and clearly; they recover with it.
With the writer down, metadata reads and searches keep working through the proxy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.catalog import Catalog
from coordinator.placement import Placement
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster
from tests.support.waiting import poll_for


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_a_segment_without_live_replica_fails_fast_and_recovers(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, readers=2, replication=1, membership_on_nodes=False) as cluster:
        writer, readers, addrs, uri = cluster.writer, cluster.readers, cluster.addresses, cluster.meta_uri
        s = cluster.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1, metric_type=1)
        assert s.CreateCollection(schema).error_code == 0
        rng = np.random.default_rng(5)
        first_ids: list[int] = []
        for _ in range(6):  # six segments of 20,000 rows (over half of index_file_size: none merge)
            reply = s.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
                rng.standard_normal((20000, 8)).astype(np.float32))))
            first_ids.append(reply.vector_id_array[0])
            assert s.Flush(milvus_pb2.FlushParam()).error_code == 0
        query = milvus_pb2.SearchParam(collection_name="c", topk=5, query_record_array=_rows(
            rng.standard_normal((2, 8)).astype(np.float32)))

        def ok() -> bool:
            res = s.Search(query, timeout=30)
            return res.status.error_code == 0 and res.row_num == 2

        poll_for(ok, 30, what="searches through the proxy")
        catalog = Catalog(uri)
        try:
            snap = catalog.snapshot()
            segment_ids = [seg.id for seg in snap.segments_of(snap.collections["c"].id)]
        finally:
            catalog.close()
        placement = Placement.of(addrs[1:], r=1)
        # Kill a reader that serves at least one segment (one of the two must).
        victim = next(i for i in range(2) if placement.share(addrs[i + 1], segment_ids))
        readers[victim].kill()
        started = time.monotonic()
        res = s.Search(query, timeout=30)
        assert time.monotonic() - started < 5, "a search must fail fast, not hang"
        assert res.status.error_code == 1 and "have no live replica" in res.status.reason

        readers[victim].start()  # same port: it comes back under the same id
        poll_for(ok, 30, what="searches to recover")

        # With the writer down, metadata reads come from the proxy's cached catalog and searches from the
        # read nodes; writes fail fast with a clear status.
        writer.kill()
        name = milvus_pb2.CollectionName(collection_name="c")
        assert s.CountCollection(name, timeout=10).collection_row_count == 120000
        assert s.HasCollection(name, timeout=10).bool_reply
        assert s.DescribeCollection(name, timeout=10).dimension == 8
        assert s.ShowCollections(milvus_pb2.Command(cmd=""), timeout=10).collection_names == ["c"]
        assert list(s.ShowPartitions(name, timeout=10).partition_tag_array) == ["_default"]
        assert s.DescribeIndex(name, timeout=10).extra_params[0].key == "params"
        assert '"row_count":120000' in s.ShowCollectionInfo(name, timeout=10).json_info
        missing = s.DescribeCollection(milvus_pb2.CollectionName(collection_name="nope"), timeout=10)
        assert missing.status.error_code == 4
        assert ok()
        # Reads any node can serve come from a read node; cache calls reach the read nodes.
        got = s.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name="c", id_array=first_ids[:2]), timeout=10)
        assert got.status.error_code == 0 and [len(v.float_data) for v in got.vectors_data] == [8, 8]
        by_id = s.SearchByID(milvus_pb2.SearchByIDParam(collection_name="c", id_array=first_ids[:1], topk=3),
                             timeout=10)
        assert by_id.status.error_code == 0 and by_id.ids[0] == first_ids[0]
        param = milvus_pb2.PreloadCollectionParam(collection_name="c")
        assert s.ReleaseCollection(param, timeout=10).error_code == 0
        assert s.PreloadCollection(param, timeout=30).error_code == 0
        # (the proxy waits for a new writer within the client's deadline, then says nothing was written)
        st = s.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.zeros((1, 8), np.float32))), timeout=3)
        assert st.status.error_code == 2 and "nothing was written" in st.status.reason
