"""A writer paused past its lease (SIGSTOP, like a long GC pause or a frozen VM) must not acknowledge a write
that its successor never sees, with either election backend.

Inserts and deletes are sent straight to the frozen writer, so they sit in its socket while the standby takes
over and replays the log. After SIGCONT each of them is answered: an acknowledged one must be visible through
the successor (and stay so after another failover), one refused before it was written must never appear, and
one whose outcome is unknown may go either way. The deposed writer must stop (exit 75) and its late records,
if it wrote any, must never be replayed by a later writer.
"""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coordinator.catalog import Catalog
from coordinator.errors import ErrorCode, WriteOutcomeUnknown
from coordinator.etcd_client import EtcdClient
from coordinator.writer_key import parse_writer, writer_key
from milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2
from tests.support.etcd import EtcdServer
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import free_ports, poll_for

DIM = 4
BATCH = 20
PAUSED_INSERTS = 24
TTL = "2"


def vectors_of(ids: np.ndarray) -> np.ndarray:
    """Each row's vector follows from its id, so every stored vector can be checked exactly."""
    base = ids.astype(np.float64)[:, None]
    return np.hstack([np.sin(base * (k + 1)) for k in range(DIM)]).astype(np.float32)


def insert_param(ids: np.ndarray) -> Any:
    return milvus_pb2.InsertParam(collection_name="c", row_id_array=ids.tolist(), row_record_array=[
        milvus_pb2.RowRecord(float_data=v) for v in vectors_of(ids).tolist()])


@dataclass
class Cluster:
    writers: list[NodeProcess]
    holder: Any  # () -> the NodeProcess currently elected, or None


def _etcd_cluster(tmp_path: Path, uri: str, etcd: EtcdServer, client: EtcdClient) -> Cluster:
    prefix = f"/pause{uuid.uuid4().hex[:8]}"
    args = ["--role", "rw", "--membership", f"etcd://{etcd.endpoint}{prefix}", "--election-ttl", TTL,
            "--auto-flush-interval", "0.5"]
    writers = [NodeProcess(tmp_path / f"rw{i}", args, meta_uri=uri, storage=tmp_path / "shared") for i in range(2)]

    def holder() -> NodeProcess | None:
        info = parse_writer(client.get(writer_key(prefix)))
        return next((n for n in writers if info and info.get("address") == n.address), None)

    return Cluster(writers, holder)


def _catalog_cluster(tmp_path: Path, uri: str, catalog: Catalog) -> Cluster:
    ports = free_ports(2)
    membership = "static://" + ",".join(f"127.0.0.1:{p}=rw" for p in ports)
    writers = [NodeProcess(tmp_path / f"rw{i}", [
        "--role", "rw", "--port", str(ports[i]), "--membership", membership, "--election", "catalog",
        "--election-ttl", TTL, "--auto-flush-interval", "0.5"], meta_uri=uri, storage=tmp_path / "shared")
        for i in range(2)]

    def holder() -> NodeProcess | None:
        lease = catalog.writer_lease()
        if lease is None or lease.remaining <= 0:
            return None
        return next((n for n in writers if n.address == lease.address), None)

    return Cluster(writers, holder)


def _present(stub: Any, ids: list[int]) -> dict[int, bool]:
    """Which ids the collection holds, each checked to hold exactly its vector."""
    out: dict[int, bool] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        got = stub.GetVectorsByID(milvus_pb2.VectorsIdentity(collection_name="c", id_array=chunk))
        assert got.status.error_code == 0, got.status.reason
        for i, rec in zip(chunk, got.vectors_data, strict=True):
            if rec.float_data:
                assert np.array_equal(np.asarray(rec.float_data, np.float32), vectors_of(np.array([i]))[0])
            out[i] = bool(rec.float_data)
    return out


@pytest.mark.parametrize("election", ["etcd", "catalog"])
def test_a_writer_paused_past_its_lease_never_acknowledges_what_its_successor_lacks(
        election: str, catalog_uri: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    catalog = Catalog(catalog_uri)
    client: EtcdClient | None = None
    if election == "etcd":
        etcd: EtcdServer = request.getfixturevalue("etcd")
        client = EtcdClient(etcd.endpoint)
        cluster = _etcd_cluster(tmp_path, catalog_uri, etcd, client)
    else:
        cluster = _catalog_cluster(tmp_path, catalog_uri, catalog)
    pool = ThreadPoolExecutor(max_workers=PAUSED_INSERTS + 8)
    paused: NodeProcess | None = None
    try:
        for node in cluster.writers:
            node.start()
        first = poll_for(cluster.holder, 30, what="a writer to be elected")
        assert first is not None
        second = cluster.writers[1] if first is cluster.writers[0] else cluster.writers[0]
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1, metric_type=1)
        assert first.stub().CreateCollection(schema).error_code == 0
        acked: set[int] = set()
        before = np.arange(1, 201, dtype=np.int64)
        reply = first.stub().Insert(insert_param(before))
        assert reply.status.error_code == 0
        acked |= set(before.tolist())

        # Freeze the writer, then queue inserts (and deletes of rows it acknowledged) in its socket.
        assert first.proc is not None
        paused = first
        os.kill(first.proc.pid, signal.SIGSTOP)
        channel = grpc.insecure_channel(first.address)
        frozen = milvus_pb2_grpc.MilvusServiceStub(channel)
        batches = [np.arange(10_000 + i * BATCH, 10_000 + (i + 1) * BATCH, dtype=np.int64)
                   for i in range(PAUSED_INSERTS)]
        inserts: list[Future[Any]] = [pool.submit(frozen.Insert, insert_param(b), timeout=60) for b in batches]
        doomed = before[:40].tolist()
        delete: Future[Any] = pool.submit(frozen.DeleteByID, milvus_pb2.DeleteByIDParam(
            collection_name="c", id_array=doomed), timeout=60)

        # The standby takes over once the lease has run out, and takes writes.
        poll_for(lambda: cluster.holder() is second, 30, what="the standby to be elected")
        after = np.arange(50_000, 50_000 + BATCH, dtype=np.int64)
        poll_for(lambda: second.stub().Insert(insert_param(after)).status.error_code == 0, 30,
                 what="the new writer to take an insert")
        acked |= set(after.tolist())

        os.kill(first.proc.pid, signal.SIGCONT)
        paused = None
        outcome: dict[str, list[np.ndarray]] = {"acked": [], "refused": [], "unknown": [], "lost": []}
        for ids, fut in zip(batches, inserts, strict=True):
            try:
                status = fut.result(timeout=60).status
            except grpc.RpcError:
                outcome["lost"].append(ids)  # the process stopped before answering: outcome unknown
                continue
            if status.error_code == 0:
                outcome["acked"].append(ids)
            elif status.error_code == ErrorCode.PERMISSION_DENIED:
                outcome["refused"].append(ids)
            else:
                assert status.reason.startswith(WriteOutcomeUnknown.PREFIX), status.reason
                outcome["unknown"].append(ids)
        try:
            delete_status: Any = delete.result(timeout=60)
        except grpc.RpcError:
            delete_status = status_pb2.Status(error_code=int(ErrorCode.UNEXPECTED_ERROR))  # type: ignore[arg-type]
        channel.close()
        # The deposed writer stops: it must not write again.
        poll_for(lambda: first.proc is not None and first.proc.poll() is not None, 30,
                 what="the deposed writer to stop")
        assert first.proc is not None and first.proc.returncode == 75

        def check(stub: Any) -> None:
            # (elected is not yet writable: the claim and the replay come first)
            poll_for(lambda: stub.Flush(milvus_pb2.FlushParam(collection_name_array=["c"])).error_code == 0, 30,
                     what="a flush through the new writer")
            got = _present(stub, sorted(acked | {int(i) for b in batches for i in b}))
            for ids in outcome["acked"]:
                assert all(got[int(i)] for i in ids), "an acknowledged insert is missing"
            for ids in outcome["refused"]:
                assert not any(got[int(i)] for i in ids), "a refused insert took effect"
            assert all(got[i] for i in acked - set(doomed)), "an acknowledged row is missing"
            if delete_status.error_code == 0:
                assert not any(_present(stub, doomed).values()), "an acknowledged delete did not happen"
            elif delete_status.error_code == ErrorCode.PERMISSION_DENIED:
                assert all(_present(stub, doomed).values()), "a refused delete took effect"

        check(second.stub())
        for ids in outcome["acked"]:
            acked |= set(ids.tolist())

        # Another failover: the restarted old writer (a new epoch) replays the log, void records excluded.
        second.kill()
        first.start()  # same arguments (with the catalog election, the same port)
        poll_for(lambda: cluster.holder() is first, 30, what="the old writer to be elected again")
        check(first.stub())
    finally:
        if paused is not None and paused.proc is not None and paused.proc.poll() is None:
            os.kill(paused.proc.pid, signal.SIGCONT)
        pool.shutdown(wait=False, cancel_futures=True)
        for node in cluster.writers:
            node.stop()
        if client is not None:
            client.close()
        catalog.close()
