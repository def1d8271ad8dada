"""Read-only nodes compute their own share with the placement function and load it before reporting ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.catalog import Catalog
from coordinator.placement import Placement
from milvus_wire import milvus_pb2
from tests.support.nodeproc import ROOT, NodeProcess
from tests.support.waiting import free_ports, poll_for


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _stats(stub: Any) -> dict[str, Any]:
    return dict(json.loads(stub.Cmd(milvus_pb2.Command(cmd="mishards_stats")).string_reply))


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="milvus.grpc.MilvusService"), timeout=5)
        return int(reply.status)


def test_readers_warm_their_share_then_report_ready(tmp_path: Path) -> None:
    storage = tmp_path / "shared"
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    membership = f"static://{addrs[0]}=rw,{addrs[1]}=ro,{addrs[2]}=ro"
    writer = NodeProcess(tmp_path / "w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval", "0"],
                         meta_uri=uri, storage=storage)
    with writer:
        w = writer.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=16, index_file_size=1, metric_type=1)
        assert w.CreateCollection(schema).error_code == 0
        rng = np.random.default_rng(2)
        for _ in range(6):  # six segments of 9,000 rows: over half of index_file_size, so none merge
            w.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
                rng.standard_normal((9000, 16)).astype(np.float32))))
            assert w.Flush(milvus_pb2.FlushParam()).error_code == 0
        catalog = Catalog(uri)
        try:
            snap = catalog.snapshot()
            segment_ids = [s.id for s in snap.segments_of(snap.collections["c"].id)]
        finally:
            catalog.close()
        assert len(segment_ids) == 6
        placement = Placement.of(addrs[1:], r=1)

        readers = [
            NodeProcess(tmp_path / f"r{i}", ["--role", "ro", "--port", str(ports[i + 1]), "--membership", membership,
                                              "--replication", "1"], meta_uri=uri, storage=storage)
            for i in range(2)
        ]
        try:
            for r in readers:
                r.start()
            for r, addr in zip(readers, addrs[1:], strict=True):
                poll_for(lambda r=r: _health(r.address) == health_pb2.HealthCheckResponse.SERVING, 30,  # type: ignore[misc]
                         what="a reader to finish warming")
                expected = len(placement.share(addr, segment_ids))
                assert _stats(r.stub())["cache_segments"] == expected
            shares = [len(placement.share(a, segment_ids)) for a in addrs[1:]]
            assert sum(shares) == 6  # replication 1: the shares partition the segments

            # `mishards status` shows the same cluster.
            res = subprocess.run(
                [sys.executable, "-m", "mishards.cli", "status", "--membership", membership, "--meta-uri", uri,
                 "--replication", "1"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
            )
            assert res.returncode == 0, res.stderr
            out = res.stdout
            assert "writer epoch 1" in out and "searchable segments: 6" in out
            assert f"writer: {addrs[0]}" in out
            for addr, share in zip(addrs[1:], shares, strict=True):
                [line] = [ln for ln in out.splitlines() if ln.startswith(addr)]
                assert " ro " in line and "SERVING" in line and line.split()[-1] == str(share)
            [wline] = [ln for ln in out.splitlines() if ln.startswith(addrs[0])]
            assert " rw " in wline and "SERVING" in wline
        finally:
            for r in readers:
                r.stop()
