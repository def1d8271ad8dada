"""The proxy follows the writer election: kill -9 the writer under an insert load through the proxy (automatic ids
and explicit ids); while there is no writer, the proxy holds the inserts and sends them to the standby once it is
elected, the one in flight when the writer died under its request key; so no client sees an error, every
acknowledged row is there exactly once, and nothing unacknowledged lands. With --write-retry-timeout 0 the proxy
fails fast instead, saying whether the write was applied. Real etcd, two rw nodes, a read node and the proxy on
etcd membership."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode
from coordinator.etcd_client import EtcdClient
from coordinator.writer_key import parse_writer, writer_key
from milvus_wire import milvus_pb2
from tests.support.etcd import EtcdServer
from tests.support.nodeproc import NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.scrape import scrape, value
from tests.support.waiting import poll_for

DIM = 8
BATCH = 200


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


@pytest.mark.parametrize("retry", [True, False], ids=["retrying", "fail-fast"])
def test_the_proxy_follows_a_new_writer_and_no_acknowledged_row_is_lost(etcd: EtcdServer, tmp_path: Path,
                                                                        retry: bool) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    storage = tmp_path / "shared"
    prefix = f"/pf{uuid.uuid4().hex[:8]}"
    membership = f"etcd://{etcd.endpoint}{prefix}"
    common = ["--membership", membership, "--election-ttl", "2"]
    writers = [NodeProcess(tmp_path / f"rw{i}", ["--role", "rw", "--auto-flush-interval", "0.5", *common],
                           meta_uri=uri, storage=storage) for i in range(2)]
    reader = NodeProcess(tmp_path / "ro", ["--role", "ro", *common], meta_uri=uri, storage=storage)
    proxy = ProxyProcess(tmp_path / "p", membership, ["--meta-uri", uri, "--metrics-port", "-1",
                                                      *([] if retry else ["--write-retry-timeout", "0"])])
    client = EtcdClient(etcd.endpoint)
    try:
        for node in (*writers, reader):
            node.start()
        proxy.start()
        s = proxy.stub()

        def elected() -> NodeProcess | None:
            raw = client.get(writer_key(prefix))
            info = parse_writer(raw) if raw else None
            return next((n for n in writers if info and info.get("address") == n.address), None)

        first = poll_for(elected, 30, what="a writer to be elected")
        assert first is not None
        def create(name: str) -> bool:
            schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1,
                                                 metric_type=1)
            return bool(s.CreateCollection(schema).error_code == 0)

        for name in ("auto", "user"):
            poll_for(functools.partial(create, name), 30, what="DDL through the proxy")

        acked = {"auto": 0, "user": 0}
        failed: list[tuple[str, int, str, float]] = []  # (collection, code, reason, seconds) of failed inserts
        unknown_rows = {"auto": 0, "user": 0}
        stop = threading.Event()
        rng = np.random.default_rng(2)
        vectors = _rows(rng.standard_normal((BATCH, DIM)).astype(np.float32))

        def load(name: str) -> None:
            next_id = 0
            while not stop.is_set():
                ids = list(range(next_id, next_id + BATCH)) if name == "user" else []
                started = time.monotonic()
                reply = s.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=vectors,
                                                        row_id_array=ids), timeout=60)
                if reply.status.error_code == 0:
                    acked[name] += len(reply.vector_id_array)
                    next_id += BATCH
                    continue
                failed.append((name, reply.status.error_code, reply.status.reason, time.monotonic() - started))
                if reply.status.error_code != ErrorCode.CONNECT_FAILED:
                    unknown_rows[name] += BATCH
                    next_id += BATCH  # give up on these ids: whether they landed is unknown

        workers = [threading.Thread(target=load, args=(name,)) for name in acked]
        for worker in workers:
            worker.start()
        try:
            poll_for(lambda: min(acked.values()) >= 20 * BATCH, 60, what="inserts through the proxy")
            first.kill()
            poll_for(lambda: elected() not in (None, first), 30, what="the standby to be elected")
            after = dict(acked)
            poll_for(lambda: all(acked[n] >= after[n] + 20 * BATCH for n in acked), 60,
                     what="inserts through the proxy after failover")
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=90)
        print(f"acknowledged {acked} rows; {len(failed)} inserts failed during the failover")
        samples = scrape(proxy.metrics_port)
        if retry:
            assert failed == [], "the proxy should have carried every insert over to the new writer"
            assert value(samples, "mishards_proxy_write_retries_total", method="Insert") >= 1
        else:
            assert value(samples, "mishards_proxy_writes_given_up_total", method="Insert") == len(failed) > 0
        for _name, code, reason, seconds in failed:
            # Fail-fast: never reached a writer (CONNECT_FAILED: nothing written) or outcome unknown, said so.
            assert (code == ErrorCode.CONNECT_FAILED and "nothing was written" in reason) or (
                code == ErrorCode.UNEXPECTED_ERROR and reason.startswith("Write outcome unknown")), (code, reason)
            assert seconds < 5.0, f"a failed insert took {seconds:.1f} s"
        assert s.Flush(milvus_pb2.FlushParam(collection_name_array=list(acked))).error_code == 0
        for name, rows in acked.items():
            count = s.CountCollection(milvus_pb2.CollectionName(collection_name=name)).collection_row_count
            # Exactly once: every acknowledged row, no duplicate of a retried one; unknown outcomes may have landed.
            assert rows <= count <= rows + unknown_rows[name], (name, rows, count)
    finally:
        proxy.stop()
        for node in (*writers, reader):
            node.stop()
        client.close()
