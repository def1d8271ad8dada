"""`mishards up`: one command starts proxy, writer and readers; SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from coordinator import parent_watch
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.nodeproc import ROOT
from tests.support.waiting import poll_for, wait_for_ready_file


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by whoever adopted it, counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "?")
    return state not in ("Z", "X")


def _start_up(tmp_path: Path, readers: int = 2) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``mishards up`` on free ports in ``tmp_path``; its ready file's contents once everything serves."""
    ready = tmp_path / "up.ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mishards.cli", "up", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--readers", str(readers), "--ready-file", str(ready), "--http-port", "-1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )

    def started() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(proc.stdout.read().decode() if proc.stdout else "up exited")
        return ready.exists()

    try:
        poll_for(started, 120, what="the local cluster")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=60)
        raise
    return proc, dict(json.loads(ready.read_text()))


def _child_pids(tmp_path: Path) -> dict[str, int]:
    """The pid of each child of ``mishards up`` from its ready file (name -> pid)."""
    pids = {}
    for path in (tmp_path / "data" / "run").glob("*.ready"):
        try:
            pids[path.stem] = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError):
            continue  # being rewritten by a restarted child
    return pids


def _stop_up(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    return out.decode(errors="replace")


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _first_hit(stub: Any, query: np.ndarray, expected: int) -> bool:
    try:
        res = stub.Search(milvus_pb2.SearchParam(collection_name="demo", topk=1, query_record_array=_rows(query[None])),
                          timeout=10)
    except grpc.RpcError:
        return False
    return res.status.error_code == 0 and list(res.ids) == [expected]


def test_up_runs_a_local_cluster_and_stops_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "up.ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mishards.cli", "up", "--port", "0", "--data-dir", str(tmp_path / "data"),
         "--readers", "2", "--ready-file", str(ready), "--http-port", "0"],
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


def test_up_restarts_a_child_that_dies_and_the_cluster_serves_again(tmp_path: Path) -> None:
    """kill -9 of a reader, then of the writer: each is restarted (same port, same data), searches through the
    proxy are answered again and new rows can be written; only SIGTERM stops the cluster."""
    proc, info = _start_up(tmp_path)
    try:
        with grpc.insecure_channel(info["address"]) as channel:
            s = milvus_pb2_grpc.MilvusServiceStub(channel)
            schema = milvus_pb2.CollectionSchema(collection_name="demo", dimension=8, index_file_size=1024,
                                                 metric_type=1)
            assert s.CreateCollection(schema, timeout=30).error_code == 0
            x = np.random.default_rng(1).standard_normal((300, 8)).astype(np.float32)
            ids = list(s.Insert(milvus_pb2.InsertParam(collection_name="demo", row_record_array=_rows(x[:200])),
                                timeout=30).vector_id_array)
            assert s.Flush(milvus_pb2.FlushParam(), timeout=60).error_code == 0
            poll_for(lambda: _first_hit(s, x[7], ids[7]), 30, what="the rows to be searchable")

            for name in ("reader-1", "writer"):
                old = _child_pids(tmp_path)[name]
                os.kill(old, signal.SIGKILL)

                def restarted(name: str = name, old: int = old) -> bool:
                    assert proc.poll() is None, "mishards up stopped"
                    pid = _child_pids(tmp_path).get(name)
                    return pid is not None and pid != old and _alive(pid)

                poll_for(restarted, 60, what=f"{name} to be restarted")
                poll_for(lambda: _first_hit(s, x[7], ids[7]), 60, what=f"searches after {name} came back")

            def written() -> list[int]:
                try:
                    reply = s.Insert(milvus_pb2.InsertParam(collection_name="demo", row_record_array=_rows(x[200:])),
                                     timeout=10)
                except grpc.RpcError:
                    return []
                return list(reply.vector_id_array) if reply.status.error_code == 0 else []

            more = poll_for(written, 60, what="an insert through the restarted writer")
            assert s.Flush(milvus_pb2.FlushParam(), timeout=60).error_code == 0
            poll_for(lambda: _first_hit(s, x[250], more[50]), 30, what="the new rows to be searchable")
            up_log = tmp_path / "data" / "logs" / "up.log"
            poll_for(lambda: "writer is back" in up_log.read_text(), 30, what="the writer's return in up.log")
            assert proc.poll() is None
    finally:
        out = _stop_up(proc)
    assert proc.returncode == 0, out
    assert "mishards up: reader-1 (pid" in out and "exited with -9" in out, out
    assert "restarting it in 0.5 s" in out, out
    assert "mishards up: reader-1 is back" in out and "mishards up: writer is back" in out, out
    assert "reader-1 (pid" in (tmp_path / "data" / "logs" / "up.log").read_text()
    for pid in _child_pids(tmp_path).values():
        assert not _alive(pid), f"child {pid} still running"


def test_children_never_outlive_a_killed_up(tmp_path: Path) -> None:
    """kill -9 of ``mishards up`` itself: every child exits, and the proxy's port is free again."""
    proc, info = _start_up(tmp_path)
    children = _child_pids(tmp_path)
    assert sorted(children) == ["proxy", "reader-1", "reader-2", "writer"]
    port = int(info["address"].rpartition(":")[2])
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    try:
        poll_for(lambda: not any(_alive(pid) for pid in children.values()), 60,
                 what="every child of the killed mishards up to exit")
    finally:
        for pid in children.values():  # never leak them into the rest of the run
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def port_free() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    poll_for(port_free, 30, what=f"the proxy port {port} to be free")


def test_a_node_stops_when_its_supervisors_pipe_closes(tmp_path: Path) -> None:
    """The fallback that needs no PR_SET_PDEATHSIG: a node given the read end of a pipe (MISHARDS_PARENT_FD)
    drains and exits once the pipe's last write end closes, as when its supervisor is gone."""
    read_end, write_end = os.pipe()
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), parent_watch.ENV: str(read_end)}
    with open(tmp_path / "node.log", "wb") as out:
        node = subprocess.Popen([sys.executable, "-m", "node", "--port", "0", "--storage-path", str(tmp_path / "s"),
                                 "--ready-file", str(ready), "--http-port", "0"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, pass_fds=(read_end,))
    os.close(read_end)
    try:
        wait_for_ready_file(node, ready, 60, "node", lambda: (tmp_path / "node.log").read_text())
        assert node.poll() is None
        os.close(write_end)
        assert node.wait(timeout=60) == 0  # drained as on SIGTERM
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(timeout=30)
    assert "the supervising process is gone: stopping" in (tmp_path / "node.log").read_text()
