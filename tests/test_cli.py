"""The ``mishards`` command: settings from a config file, the environment and flags; health service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import ROOT
from tests.support.waiting import poll_for, terminate_process


def test_node_reads_config_file_env_and_flags_in_that_order(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("node:\n  version: 1.1.7\n  cache_size: 2GB\n  insert_buffer_size: 256MB\n")
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MISHARDS_NODE_CACHE_SIZE": "3GB",
           "MISHARDS_NODE_INSERT_BUFFER_SIZE": "128MB", "MISHARDS_NODE_HTTP_PORT": "0"}
    args = [sys.executable, "-m", "mishards.cli", "node", "--config", str(config), "--port", "0",
            "--storage-path", str(tmp_path / "data"), "--ready-file", str(ready), "--insert-buffer-size", "64MB"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def started() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "node exited")
            return ready.exists()

        poll_for(started, 60, what="node ready file")
        address = json.loads(ready.read_text())["address"]
        with grpc.insecure_channel(address) as channel:
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)

            def cmd(text: str) -> str:
                reply = stub.Cmd(milvus_pb2.Command(cmd=text), timeout=10)
                assert reply.status.error_code == 0, reply.status.reason
                return str(reply.string_reply)

            assert cmd("version") == "1.1.7"  # file
            assert cmd("get_config cache.cache_size") == "3GB"  # environment beats file
            assert cmd("get_config cache.insert_buffer_size") == "64MB"  # flag beats environment
            assert cmd("get_config network.bind.port") == address.rsplit(":", 1)[1]

            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "milvus.grpc.MilvusService"):
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        terminate_process(proc, 30, "node")
    assert proc.returncode == 0, "SIGTERM must stop the node cleanly"


def test_bad_settings_exit_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "mishards.cli", "node", "--role", "standalone", "--cache-size", "lots",
         "--storage-path", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2
    assert "invalid size 'lots'" in res.stderr

    res = subprocess.run([sys.executable, "-m", "mishards.cli", "bogus"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "unknown command 'bogus'" in res.stderr
