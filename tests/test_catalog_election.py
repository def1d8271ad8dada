"""Writer election through the catalog (no etcd): two rw nodes, a read node and the proxy on static membership.
kill -9 the writer under an insert load through the proxy: the standby takes the lease once it runs out on the
database's clock, claims the epoch and replays the log; the proxy follows; no acknowledged row is lost. On SQLite
and on a real MariaDB."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.catalog import Catalog
from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from tests.support.nodeproc import ROOT, NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_ports, poll_for

DIM = 8
BATCH = 200


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_standby_takes_the_catalog_lease_and_the_proxy_follows(catalog_uri: str, tmp_path: Path) -> None:
    storage = tmp_path / "shared"
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    membership = f"static://{addrs[0]}=rw,{addrs[1]}=rw,{addrs[2]}=ro"
    common = ["--membership", membership, "--election", "catalog", "--election-ttl", "2"]
    writers = [NodeProcess(tmp_path / f"rw{i}", ["--role", "rw", "--port", str(ports[i]), "--auto-flush-interval",
                                                 "0.5", *common], meta_uri=catalog_uri, storage=storage)
               for i in range(2)]
    reader = NodeProcess(tmp_path / "ro", ["--role", "ro", "--port", str(ports[2]), *common], meta_uri=catalog_uri,
                         storage=storage)
    proxy = ProxyProcess(tmp_path / "p", membership, ["--meta-uri", catalog_uri])
    catalog = Catalog(catalog_uri)
    try:
        for node in (*writers, reader):
            node.start()
        proxy.start()
        s = proxy.stub()

        def holder() -> NodeProcess | None:
            lease = catalog.writer_lease()
            if lease is None or lease.remaining <= 0:
                return None
            return next((n for n in writers if n.address == lease.address), None)

        first = poll_for(holder, 30, what="a writer to take the lease")
        assert first is not None
        standby = writers[1] if first is writers[0] else writers[0]
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1, metric_type=1)
        poll_for(lambda: s.CreateCollection(schema).error_code == 0, 30, what="DDL through the proxy")
        refused = standby.stub().Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.zeros((1, DIM), np.float32))))
        assert refused.status.error_code == ErrorCode.PERMISSION_DENIED and "standby" in refused.status.reason

        acked = [0]
        failures: list[int] = []
        stop = threading.Event()
        batch = milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.random.default_rng(3).standard_normal((BATCH, DIM)).astype(np.float32)))

        def load() -> None:
            while not stop.is_set():
                reply = s.Insert(batch, timeout=30)
                if reply.status.error_code == 0:
                    acked[0] += len(reply.vector_id_array)
                else:
                    failures.append(reply.status.error_code)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            poll_for(lambda: acked[0] >= 10 * BATCH, 60, what="inserts through the proxy")
            first.kill()
            poll_for(lambda: holder() is standby, 30, what="the standby to take the lease")
            after = acked[0]
            poll_for(lambda: acked[0] >= after + 10 * BATCH, 60, what="inserts through the proxy after failover")
        finally:
            stop.set()
            worker.join(timeout=60)
        # In between, the proxy refused fast and clearly (no writer reachable / none elected).
        assert set(failures) <= {ErrorCode.CONNECT_FAILED, ErrorCode.PERMISSION_DENIED}
        assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["c"])).error_code == 0
        count = s.CountCollection(milvus_pb2.CollectionName(collection_name="c")).collection_row_count
        assert acked[0] <= count <= acked[0] + BATCH

        # `mishards status` names the lease holder as the writer.
        status = subprocess.run([sys.executable, "-m", "coordinator.status", "--membership", membership,
                                 "--meta-uri", catalog_uri], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert f"writer: {standby.address} at {standby.address}" in status.stdout
        # The old writer, restarted, stays a standby: the lease is held.
        first.start()
        again = first.stub().Insert(batch)
        assert again.status.error_code == ErrorCode.PERMISSION_DENIED
        assert holder() is standby
    finally:
        catalog.close()
        proxy.stop()
        for node in (*writers, reader):
            node.stop()
