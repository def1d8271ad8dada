"""etcd goes away under a cluster with etcd membership and election: the proxy keeps answering in-band (the
last writer it knew takes writes until its lease runs out, then 'nothing was written'), never a bare gRPC
UNKNOWN from the failed election lookup."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from tests.support.etcd import EtcdServer
from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import poll_for


def test_writes_through_the_proxy_get_a_status_while_etcd_is_down(tmp_path: Path) -> None:
    etcd = EtcdServer().start()
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    membership = f"etcd://{etcd.endpoint}/o{uuid.uuid4().hex[:8]}"
    writer = NodeProcess(tmp_path / "rw", ["--role", "rw", "--membership", membership, "--election-ttl", "2"],
                         meta_uri=uri, storage=tmp_path / "shared")
    proxy = ProxyProcess(tmp_path / "p", membership, ["--meta-uri", uri, "--write-retry-timeout", "3"])
    rows = [milvus_pb2.RowRecord(float_data=v) for v in np.ones((3, 4), np.float32).tolist()]
    insert = milvus_pb2.InsertParam(collection_name="c", row_record_array=rows)
    try:
        writer.start()
        proxy.start()
        s = proxy.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=4, index_file_size=1, metric_type=1)
        poll_for(lambda: s.CreateCollection(schema).error_code == 0, 30, what="a writer through the proxy")
        assert s.Insert(insert, timeout=10).status.error_code == 0
        etcd.stop()
        codes = set()
        for _ in range(4):  # raised a gRPC error (UNKNOWN) before the fix
            reply = s.Insert(insert, timeout=10)
            codes.add(reply.status.error_code)
            assert reply.status.error_code in (ErrorCode.SUCCESS, ErrorCode.CONNECT_FAILED), reply.status
        # Once the writer's lease has run out (it stops), writes say that nothing was written.
        poll_for(lambda: writer.proc is not None and writer.proc.poll() is not None, 30,
                 what="the writer to stop without its lease")
        late = s.Insert(insert, timeout=10)
        assert late.status.error_code == ErrorCode.CONNECT_FAILED and "nothing was written" in late.status.reason
        flush = s.Flush(milvus_pb2.FlushParam(), timeout=10)
        assert flush.error_code == ErrorCode.CONNECT_FAILED
        # Answered before a short client deadline too (the election lookup is bounded), never DEADLINE_EXCEEDED.
        for _ in range(3):
            started = time.monotonic()
            deleted = s.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=[1]), timeout=2)
            assert deleted.error_code == ErrorCode.CONNECT_FAILED, deleted
            assert time.monotonic() - started < 2
    finally:
        proxy.stop()
        writer.stop()
        etcd.stop()
