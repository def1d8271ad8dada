"""Writer election and failover with real processes, a real etcd and a shared SQLite catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from coordinator.errors import ErrorCode
from coordinator.etcd_client import EtcdClient
from coordinator.writer_key import parse_writer, writer_key
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.etcd import EtcdServer
from tests.support.nodeproc import ROOT, NodeProcess
from tests.support.waiting import poll_for

DIM = 8


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_standby_takes_over_without_losing_acknowledged_rows(etcd: EtcdServer, tmp_path: Path,
                                                             catalog_uri: str) -> None:
    uri = catalog_uri
    storage = tmp_path / "shared"
    prefix = f"/fo{uuid.uuid4().hex[:8]}"
    membership = f"etcd://{etcd.endpoint}{prefix}"
    args = ["--role", "rw", "--membership", membership, "--election-ttl", "2", "--auto-flush-interval", "0.5"]
    nodes = [NodeProcess(tmp_path / f"rw{i}", args, meta_uri=uri, storage=storage) for i in range(2)]
    client = EtcdClient(etcd.endpoint)
    try:
        for n in nodes:
            n.start()

        def elected() -> NodeProcess | None:
            raw = client.get(writer_key(prefix))
            info = parse_writer(raw) if raw else None
            return next((n for n in nodes if info and info.get("address") == n.address), None)

        winner = poll_for(elected, 30, what="a writer to be elected")
        assert winner is not None
        first: NodeProcess = winner
        standby = nodes[1] if first is nodes[0] else nodes[0]
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1, metric_type=1)
        assert first.stub().CreateCollection(schema).error_code == 0
        # The standby refuses writes and says why.
        st = standby.stub().Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.zeros((1, DIM), np.float32))))
        assert st.status.error_code == ErrorCode.PERMISSION_DENIED and "standby" in st.status.reason

        acked: list[int] = []
        stop = threading.Event()
        rng = np.random.default_rng(4)

        def load() -> None:
            """Insert into whichever node is the writer; remember every acknowledged id."""
            while not stop.is_set():
                target = elected()
                if target is None or target.proc is None or target.proc.poll() is not None:
                    continue
                with grpc.insecure_channel(target.address) as ch:
                    try:
                        reply = milvus_pb2_grpc.MilvusServiceStub(ch).Insert(milvus_pb2.InsertParam(
                            collection_name="c", row_record_array=_rows(rng.standard_normal((50, DIM)).astype(
                                np.float32))), timeout=5)
                    except grpc.RpcError:
                        continue
                if reply.status.error_code == 0:
                    acked.extend(reply.vector_id_array)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            poll_for(lambda: len(acked) >= 1000, 30, what="some acknowledged inserts")
            first.kill()  # kill -9 the writer in the middle of the load
            poll_for(lambda: elected() is standby, 30, what="the standby to take over")
            before = len(acked)
            poll_for(lambda: len(acked) >= before + 500, 30, what="inserts through the new writer")
        finally:
            stop.set()
            worker.join(timeout=30)

        s = standby.stub()
        assert s.Flush(milvus_pb2.FlushParam()).error_code == 0
        assert s.CountCollection(milvus_pb2.CollectionName(collection_name="c")).collection_row_count >= len(acked)
        for start in range(0, len(acked), 1000):
            got = s.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name="c", id_array=acked[start:start + 1000]))
            assert got.status.error_code == 0
            missing = [i for i, v in zip(acked[start:start + 1000], got.vectors_data, strict=True) if not v.float_data]
            assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {missing[:5]}"

        # The old writer comes back as a standby and cannot write.
        first.start()
        st = first.stub().Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.zeros((1, DIM), np.float32))))
        assert st.status.error_code == ErrorCode.PERMISSION_DENIED
        assert elected() is standby

        # `mishards status` names the elected writer and the epoch it claimed.
        res = subprocess.run(
            [sys.executable, "-m", "mishards.cli", "status", "--membership", membership, "--meta-uri", uri],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert f"writer: {standby.address} at {standby.address}" in res.stdout
        assert "writer epoch 2" in res.stdout or "writer epoch 3" in res.stdout
    finally:
        client.close()
        for n in nodes:
            n.stop()
