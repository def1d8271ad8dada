"""The proxy in front of a single node: the real pymilvus 1.1.2 scenario passes through it unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.test_pymilvus_compat import SCENARIO, _client_env, _require_pymilvus


def test_pymilvus_scenario_through_the_proxy(tmp_path: Path) -> None:
    _require_pymilvus()
    node = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"])
    with node:
        proxy = ProxyProcess(tmp_path / "proxy", f"static://{node.address}=standalone")
        proxy.start()
        try:
            host, _, port = proxy.address.rpartition(":")
            res = subprocess.run([sys.executable, str(SCENARIO), "--host", host, "--port", port], env=_client_env(),
                                 cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-2000:]}\n{proxy.log_tail()}"
            assert "checks passed" in res.stdout.strip().splitlines()[-1]
        finally:
            proxy.stop()


def test_proxy_answers_version_and_fails_fast_without_a_writer(tmp_path: Path) -> None:
    proxy = ProxyProcess(tmp_path / "proxy", "static://127.0.0.1:1=ro",
                         ["--version-string", "1.1.9", "--grpc-max-message-size", "4MB"])
    proxy.start()
    try:
        s = proxy.stub()
        reply = s.Cmd(milvus_pb2.Command(cmd="version"), timeout=10)
        assert reply.status.error_code == 0 and reply.string_reply == "1.1.9"
        # No writer within the client's deadline (the proxy waits for one until then): nothing was written.
        st = s.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=[
            milvus_pb2.RowRecord(float_data=np.zeros(4, np.float32).tolist())]), timeout=2)
        assert st.status.error_code == 2 and "No writable node" in st.status.reason
        assert "nothing was written" in st.status.reason
        # A hybrid search is served (no longer UNIMPLEMENTED): with no node up, an in-band status says so.
        hybrid = s.HybridSearch(milvus_pb2.HSearchParam(collection_name="c"), timeout=10)
        assert hybrid.status.error_code == 2 and "No writable node" in hybrid.status.reason
        # A request over the proxy's message cap is refused by its gRPC layer, and the proxy carries on.
        big = milvus_pb2.InsertParam(collection_name="c", row_record_array=[
            milvus_pb2.RowRecord(float_data=np.zeros(1024, np.float32).tolist()) for _ in range(1100)])
        with pytest.raises(grpc.RpcError) as info:
            s.Insert(big, timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert s.Cmd(milvus_pb2.Command(cmd="version"), timeout=10).string_reply == "1.1.9"
    finally:
        proxy.stop()
    assert os.path.exists(tmp_path / "proxy" / "proxy.log")


def test_at_most_half_the_proxy_threads_wait_for_a_writer(tmp_path: Path) -> None:
    """While no writer can be elected, writes wait for one, but only in half of the proxy's handler threads:
    the others are answered at once (nothing was written) and the proxy keeps serving everything else."""
    proxy = ProxyProcess(tmp_path / "proxy", "static://127.0.0.1:1=rw", ["--grpc-workers", "4"])
    proxy.start()
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        s = proxy.stub()
        insert = milvus_pb2.InsertParam(collection_name="c", row_record_array=[
            milvus_pb2.RowRecord(float_data=np.zeros(4, np.float32).tolist())])

        def timed_insert() -> tuple[float, Any]:
            started = time.monotonic()
            reply = s.Insert(insert, timeout=4)
            return time.monotonic() - started, reply

        calls = [pool.submit(timed_insert) for _ in range(6)]
        assert s.Cmd(milvus_pb2.Command(cmd="version"), timeout=2).string_reply == "1.1.1"  # still served
        results = [c.result(timeout=30) for c in calls]
        for _seconds, reply in results:
            assert reply.status.error_code == 2 and "nothing was written" in reply.status.reason
        waited = sorted(seconds for seconds, _ in results)
        assert waited[-1] < 4, "answered before the client's deadline"
        assert sum(1 for seconds in waited if seconds > 2) <= 2, waited
        assert sum(1 for seconds in waited if seconds < 2) >= 2, waited
        assert any("already holds 2 writes waiting" in reply.status.reason for _, reply in results)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        proxy.stop()
