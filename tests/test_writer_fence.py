"""A node whose writer fence has failed (its lease ran out while it was paused) writes nothing more to shared
storage or the log, and refuses writes in-band; what it acknowledged before is replayed by its successor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from node import maintenance
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "meta.sqlite" not in p.name}


def _reply(reply: Any, cls: Any) -> Any:
    return cls.FromString(reply) if isinstance(reply, bytes) else reply


def test_a_fenced_writer_touches_no_shared_file_and_its_acknowledged_rows_survive(tmp_path: Path) -> None:
    settings = NodeSettings(storage_path=str(tmp_path), auto_flush_interval=0)
    engine = Engine(settings)
    engine.open()
    pool = ThreadPoolExecutor(2)
    service = MilvusService(engine, pool)
    x = np.random.default_rng(1).standard_normal((30, 8)).astype(np.float32)
    try:
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1, metric_type=1)
        assert service.CreateCollection(schema, None).error_code == 0

        def insert(ids: range) -> Any:
            rows = [milvus_pb2.RowRecord(float_data=v) for v in x[ids.start:ids.stop].tolist()]
            return _reply(service.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=rows,
                                                                row_id_array=list(ids)), None), milvus_pb2.VectorIds)

        assert insert(range(0, 10)).status.error_code == 0
        assert service.Flush(milvus_pb2.FlushParam(), None).error_code == 0  # one segment on storage
        assert insert(range(10, 20)).status.error_code == 0  # acknowledged, still buffered
        assert service.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=[3]), None).error_code == 0
        before = _files(tmp_path)

        engine.fence.revoke("test: the lease ran out while paused")
        refused = insert(range(20, 30))
        assert refused.status.error_code == ErrorCode.PERMISSION_DENIED
        assert "no longer the writer" in refused.status.reason
        flushed = service.Flush(milvus_pb2.FlushParam(), None)
        assert flushed.error_code == ErrorCode.PERMISSION_DENIED
        deleted = service.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=[4]), None)
        assert deleted.error_code == ErrorCode.PERMISSION_DENIED
        # Background upkeep is refused too (a flush of the buffered rows, merges, garbage collection).
        for step in (lambda: maintenance.flush(engine, None), lambda: maintenance.collect_garbage(engine),
                     lambda: maintenance.remove_orphans(engine)):
            try:
                step()
            except Exception as exc:  # any refusal will do; what matters is the storage below
                assert "no longer the writer" in str(exc)
        assert _files(tmp_path) == before, "a fenced writer changed shared storage"
    finally:
        pool.shutdown()
        engine.close(flush=False)

    # The successor (a new epoch) replays what was acknowledged: rows 0..19 without 3, nothing of 20..29.
    successor = Engine(settings)
    successor.open()
    pool = ThreadPoolExecutor(2)
    service = MilvusService(successor, pool)
    try:
        assert successor.epoch > engine.epoch
        assert service.Flush(milvus_pb2.FlushParam(), None).error_code == 0
        got = _reply(service.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name="c", id_array=list(range(30))),
                                            None), milvus_pb2.VectorsData)
        present = [i for i, v in enumerate(got.vectors_data) if v.float_data]
        assert present == [i for i in range(20) if i != 3]
        for i in present:
            assert np.array_equal(np.asarray(got.vectors_data[i].float_data, np.float32), x[i])
    finally:
        pool.shutdown()
        successor.close()
