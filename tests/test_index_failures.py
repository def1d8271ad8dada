"""A failed index build leaves the segment searchable as before and reports a clear status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode
from coordinator.model import SegmentState
from milvus_wire import milvus_pb2
from node import index_builds
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings


@pytest.fixture
def service(tmp_path: Path) -> Iterator[MilvusService]:
    engine = Engine(NodeSettings(storage_path=str(tmp_path), auto_flush_interval=0))
    engine.open()
    pool = ThreadPoolExecutor(2)
    try:
        yield MilvusService(engine, pool)
    finally:
        pool.shutdown()
        engine.close()


def _search(service: MilvusService, request: Any) -> Any:
    reply = service.Search(request, None)
    # Successful searches come back already serialized (built directly in the wire format).
    return milvus_pb2.TopKQueryResult.FromString(reply) if isinstance(reply, bytes) else reply


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_failed_build_reports_build_index_error_and_keeps_exact_search(
    service: MilvusService, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1024, metric_type=1)
    assert service.CreateCollection(schema, None).error_code == 0
    x = np.random.default_rng(5).standard_normal((5000, 8)).astype(np.float32)
    reply = service.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(x),
                                                  row_id_array=list(range(5000))), None)
    if isinstance(reply, bytes):  # successful replies come back already serialized
        reply = milvus_pb2.VectorIds.FromString(reply)
    assert reply.status.error_code == 0

    def broken_build(*_args: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(index_builds, "build_index", broken_build)
    params = [milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": 16}))]
    st = service.CreateIndex(milvus_pb2.IndexParam(collection_name="c", index_type=2, extra_params=params), None)
    assert st.error_code == ErrorCode.BUILD_INDEX_ERROR
    assert "IVF_FLAT build of segment" in st.reason and st.reason.endswith("failed: the disk is on fire")

    [seg] = service.engine.snapshot().segments_of(service.engine.collection("c").id)
    assert seg.state is SegmentState.RAW and "disk is on fire" in seg.index_error
    search = milvus_pb2.SearchParam(
        collection_name="c", topk=3, query_record_array=_rows(x[:4]),
        extra_params=[milvus_pb2.KeyValuePair(key="params", value='{"nprobe": 4}')],
    )
    res = _search(service, search)
    assert res.status.error_code == 0
    assert np.array(res.ids).reshape(4, 3)[:, 0].tolist() == [0, 1, 2, 3]  # still exact over the raw rows
    # The background does not retry a failed build by itself ...
    service.engine.builds.tick()  # type: ignore[union-attr]
    assert service.engine.snapshot().segments_by_id[seg.id].state is SegmentState.RAW

    # ... but CreateIndex does, and succeeds once the fault is gone.
    monkeypatch.undo()
    st = service.CreateIndex(milvus_pb2.IndexParam(collection_name="c", index_type=2, extra_params=params), None)
    assert st.error_code == 0, st.reason
    seg = service.engine.snapshot().segments_by_id[seg.id]
    assert seg.state is SegmentState.INDEX and seg.index_error == "" and seg.index_file
    res = _search(service, search)
    assert res.status.error_code == 0
