"""`mishards up`: one command starts proxy, writer and readers; SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import ROOT
from tests.support.waiting import poll_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_a_local_cluster_and_stops_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "up.ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mishards.cli", "up", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--readers", "2", "--ready-file", str(ready)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        def started() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "up exited")
            return ready.exists()

        poll_for(started, 120, what="the local cluster")
        info = json.loads(ready.read_text())
        address = info["address"]
        # Metrics are on by default: every child on a port of its own.
        metrics_ports = info["metrics_ports"]
        assert sorted(metrics_ports) == ["proxy", "reader-1", "reader-2", "writer"]
        assert len(set(metrics_ports.values())) == 4 and all(p > 0 for p in metrics_ports.values())
        for name, port in metrics_ports.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            prefix = "mishards_proxy_" if name == "proxy" else "mishards_node_"
            assert prefix + "request_seconds" in text, name
        with grpc.insecure_channel(address) as channel:
            s = milvus_pb2_grpc.MilvusServiceStub(channel)
            assert s.Cmd(milvus_pb2.Command(cmd="version"), timeout=10).string_reply == "1.1.1"
            schema = milvus_pb2.CollectionSchema(collection_name="demo", dimension=8, index_file_size=1024,
                                                 metric_type=1)
            assert s.CreateCollection(schema, timeout=30).error_code == 0
            x = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
            ids = s.Insert(milvus_pb2.InsertParam(collection_name="demo", row_record_array=[
                milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]), timeout=30).vector_id_array
            assert s.Flush(milvus_pb2.FlushParam(), timeout=60).error_code == 0

            def first_hit() -> bool:
                res = s.Search(milvus_pb2.SearchParam(collection_name="demo", topk=1, query_record_array=[
                    milvus_pb2.RowRecord(float_data=x[0].tolist())]), timeout=30)
                return res.status.error_code == 0 and list(res.ids) == [ids[0]]

            poll_for(first_hit, 30, what="the rows to be searchable through the proxy")
        children = [json.loads(p.read_text())["pid"] for p in (tmp_path / "data" / "run").glob("*.ready")]
        assert len(children) == 4  # writer, two readers, proxy
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out.decode()
    assert b"mishards up: stopped" in out
    for name, port in metrics_ports.items():
        assert f"{name} http://127.0.0.1:{port}/metrics".encode() in out
    for pid in children:
        assert not _alive(pid), f"child {pid} still running"
