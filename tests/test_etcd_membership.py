"""etcd membership with real node processes and a real etcd: join, warm up, leave on kill -9."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.membership import Member, create_provider
from milvus_wire import milvus_pb2
from tests.support.etcd import EtcdServer
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_readers_register_warm_up_and_vanish_when_killed(etcd: EtcdServer, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    storage = tmp_path / "shared"
    membership = f"etcd://{etcd.endpoint}/cluster1"
    writer = NodeProcess(tmp_path / "w", ["--role", "rw", "--auto-flush-interval", "0"], meta_uri=uri,
                         storage=storage)
    watcher = create_provider(membership)
    watcher.start()
    readers: list[NodeProcess] = []
    try:
        writer.start()
        w = writer.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=8, index_file_size=1, metric_type=1)
        assert w.CreateCollection(schema).error_code == 0
        w.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(
            np.random.default_rng(0).standard_normal((2000, 8)).astype(np.float32))))
        assert w.Flush(milvus_pb2.FlushParam()).error_code == 0

        def ready_readers() -> dict[str, Member]:
            return {m.address: m for m in watcher.members() if m.role == "ro" and m.state == "ready"}

        for i in range(2):
            node = NodeProcess(tmp_path / f"r{i}", ["--role", "ro", "--membership", membership], meta_uri=uri,
                               storage=storage)
            readers.append(node.start())
        poll_for(lambda: set(ready_readers()) == {r.address for r in readers}, 30, what="both readers ready in etcd")

        # A crashed reader leaves the member list within the lease TTL (5 s) ...
        readers[0].kill()
        poll_for(lambda: set(ready_readers()) == {readers[1].address}, 20, what="the killed reader to leave")
        # ... and a new one joins, warms up, and reports ready.
        newcomer = NodeProcess(tmp_path / "r2", ["--role", "ro", "--membership", membership], meta_uri=uri,
                               storage=storage)
        readers.append(newcomer.start())
        poll_for(lambda: newcomer.address in ready_readers(), 30, what="the new reader to be ready")
        res = newcomer.stub().Search(milvus_pb2.SearchParam(collection_name="c", topk=3, query_record_array=_rows(
            np.zeros((1, 8), dtype=np.float32))))
        assert res.status.error_code == 0 and res.row_num == 1

        # A clean stop removes the record at once (no need to wait for the lease).
        readers[1].stop()
        poll_for(lambda: readers[1].address not in ready_readers(), 5, what="the stopped reader to leave")
    finally:
        for r in readers:
            r.stop()
        writer.stop()
        watcher.stop()


def test_a_reader_registers_again_after_etcd_was_away_longer_than_its_lease(tmp_path: Path) -> None:
    etcd = EtcdServer().start()
    membership = f"etcd://{etcd.endpoint}/away"
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    reader = NodeProcess(tmp_path / "r", ["--role", "ro", "--membership", membership, "--election-ttl", "2"],
                         meta_uri=uri, storage=tmp_path / "shared")
    try:
        reader.start()
        watcher = create_provider(membership)
        watcher.start()
        try:
            poll_for(lambda: any(m.address == reader.address for m in watcher.members()), 30,
                     what="the reader to register")
        finally:
            watcher.stop()
        # etcd freezes for longer than the lease: the reader's keepalives fail and its lease is lost locally;
        # when etcd comes back the old lease expires there. Before, the one attempt to register again failed
        # while etcd was away and the record never came back.
        os.kill(etcd.pid, signal.SIGSTOP)
        poll_for(lambda: "membership lease lost" in reader.log_tail(200), 30, what="the reader to lose its lease")
        os.kill(etcd.pid, signal.SIGCONT)
        watcher = create_provider(membership)
        watcher.start()
        try:
            poll_for(lambda: "registered again" in reader.log_tail(200), 30, what="the reader to register again")
            # The record is there and stays there (it lives on the new lease, not the expired one).
            poll_for(lambda: any(m.address == reader.address for m in watcher.members()), 30,
                     what="the reader's record to be back")
            deadline = time.monotonic() + 4  # two lease TTLs: the old lease's expiry must not drop it
            while time.monotonic() < deadline:
                assert any(m.address == reader.address for m in watcher.members()), "the record vanished again"
                time.sleep(0.2)
        finally:
            watcher.stop()
    finally:
        if etcd.is_running():
            os.kill(etcd.pid, signal.SIGCONT)
        reader.stop()
        etcd.stop()


def test_a_node_started_while_etcd_does_not_answer_waits_for_it(tmp_path: Path) -> None:
    etcd = EtcdServer().start()
    membership = f"etcd://{etcd.endpoint}/late"
    reader = NodeProcess(tmp_path / "r", ["--role", "ro", "--membership", membership, "--election-ttl", "2"],
                         meta_uri=f"sqlite:///{tmp_path / 'meta.sqlite'}", storage=tmp_path / "shared")
    try:
        os.kill(etcd.pid, signal.SIGSTOP)
        reader.start()  # serves (not yet ready for searches) instead of exiting 1 as it used to
        poll_for(lambda: "cannot follow the member list yet" in reader.log_tail(200), 30,
                 what="the node to wait for etcd")
        assert reader.proc is not None and reader.proc.poll() is None
        os.kill(etcd.pid, signal.SIGCONT)
        watcher = create_provider(membership)
        watcher.start()
        try:
            poll_for(lambda: any(m.address == reader.address and m.state == "ready" for m in watcher.members()),
                     30, what="the node to join once etcd answers")
        finally:
            watcher.stop()
    finally:
        if etcd.is_running():
            os.kill(etcd.pid, signal.SIGCONT)
        reader.stop()
        etcd.stop()
