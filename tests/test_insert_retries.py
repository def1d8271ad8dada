"""Retried inserts are answered, not applied twice: the same batch with explicit ids (any path), and an
automatic-id batch under the proxy's request key; across a restart of the writer too. Deletes in between
make a re-insert a new insert again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from node.engine import Engine
from node.maintenance import collect_garbage
from node.service import MilvusService
from node.settings import NodeSettings


def _reply(reply: Any, cls: Any) -> Any:
    return cls.FromString(reply) if isinstance(reply, bytes) else reply


class Node:
    def __init__(self, root: Path, window: float = 60.0, file_cleanup_timeout: float = 10.0) -> None:
        self.engine = Engine(NodeSettings(storage_path=str(root), auto_flush_interval=0,
                                          idempotency_window=window, file_cleanup_timeout=file_cleanup_timeout))
        self.engine.open()
        self.pool = ThreadPoolExecutor(2)
        self.service = MilvusService(self.engine, self.pool)

    def close(self, flush: bool = True) -> None:
        self.pool.shutdown()
        self.engine.close(flush=flush)

    def insert(self, name: str, x: np.ndarray, ids: list[int] | None = None, tag: str = "") -> list[int]:
        reply = _reply(self.service.Insert(milvus_pb2.InsertParam(
            collection_name=name, partition_tag=tag, row_id_array=ids or [],
            row_record_array=[milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]), None), milvus_pb2.VectorIds)
        assert reply.status.error_code == 0, reply.status.reason
        return list(reply.vector_id_array)

    def count(self, name: str) -> int:
        assert self.service.Flush(milvus_pb2.FlushParam(), None).error_code == 0
        reply = _reply(self.service.CountCollection(milvus_pb2.CollectionName(collection_name=name), None),
                       milvus_pb2.CollectionRowCount)
        return int(reply.collection_row_count)

    def create(self, name: str) -> None:
        schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=4, index_file_size=1, metric_type=1)
        assert self.service.CreateCollection(schema, None).error_code == 0


def test_the_same_user_id_batch_twice_is_one_insert(tmp_path: Path) -> None:
    node = Node(tmp_path)
    x = np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32)
    try:
        node.create("c")
        assert node.service.CreatePartition(milvus_pb2.PartitionParam(collection_name="c", tag="p"), None) \
            .error_code == 0
        assert node.insert("c", x, list(range(10))) == list(range(10))
        assert node.insert("c", x, list(range(10))) == list(range(10))  # a retry: answered, not applied
        assert node.count("c") == 10
        assert node.insert("c", x, list(range(10))) == list(range(10))  # flushed since: still a retry
        assert node.count("c") == 10
        # Anything else is a new insert, as in Milvus: other vectors, other ids, another partition.
        node.insert("c", x + 1, list(range(10)))
        node.insert("c", x, list(range(1, 11)))
        node.insert("c", x, list(range(10)), tag="p")
        assert node.count("c") == 40
    finally:
        node.close()


def test_a_delete_in_between_makes_the_same_batch_a_new_insert(tmp_path: Path) -> None:
    node = Node(tmp_path)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    try:
        node.create("c")
        node.insert("c", x, [1, 2, 3, 4, 5])
        assert node.service.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=[3]), None) \
            .error_code == 0
        node.insert("c", x, [1, 2, 3, 4, 5])  # re-inserting a deleted row is not a retry
        assert node.count("c") == 9
    finally:
        node.close()


def test_the_same_batch_into_a_collection_created_again_is_a_new_insert(tmp_path: Path) -> None:
    """Dropped, purged from the catalog, created again under the same name: the old collection's id must
    not make the same batch look like a retry (on SQLite the id used to be given again, and the rows were
    acknowledged but never written)."""
    node = Node(tmp_path, file_cleanup_timeout=0)
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    try:
        for tag in ("", "p"):
            node.create("c")
            if tag:
                assert node.service.CreatePartition(milvus_pb2.PartitionParam(collection_name="c", tag=tag),
                                                    None).error_code == 0
            assert node.insert("c", x, [1, 2], tag) == [1, 2]
            assert node.count("c") == 2
            assert node.service.DropCollection(milvus_pb2.CollectionName(collection_name="c"), None).error_code == 0
            collect_garbage(node.engine)  # the catalog forgets the dropped collection
            assert node.engine.catalog.garbage(2**62) == ([], [])
        node.create("c")
        assert node.insert("c", x, [1, 2]) == [1, 2]
        assert node.count("c") == 2, "the batch was taken for a retry of the dropped collection's insert"
    finally:
        node.close()


def test_retries_are_recognised_by_the_next_writer_and_a_zero_window_turns_it_off(tmp_path: Path) -> None:
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    node = Node(tmp_path)
    try:
        node.create("c")
        node.create("auto")
        node.insert("c", x, list(range(6)))
        assert node.count("c") == 6  # flushed: the key lives on in the kept log
        key = bytes(range(16))
        coll = node.engine.collection("auto")
        part = node.engine.snapshot().partition(coll.id, "_default")
        assert part is not None
        first = node.engine.insert(coll, part, None, x, request_key=key)
        again = node.engine.insert(coll, part, None, x, request_key=key)  # the proxy's retry: same ids
        assert first.tolist() == again.tolist()
        other = node.engine.insert(coll, part, None, x, request_key=b"\x01" * 16)  # another request
        assert set(other.tolist()).isdisjoint(first.tolist())
    finally:
        node.close(flush=False)  # like a crash after the last acknowledgement

    node = Node(tmp_path)  # the next writer (a new epoch) replays the log, keys included
    try:
        assert node.insert("c", x, list(range(6))) == list(range(6))
        assert node.count("c") == 6
        coll = node.engine.collection("auto")
        part = node.engine.snapshot().partition(coll.id, "_default")
        assert part is not None
        assert node.engine.insert(coll, part, None, x, request_key=key).tolist() == first.tolist()
        assert node.count("auto") == 12
    finally:
        node.close()

    node = Node(tmp_path, window=0)  # off: exactly Milvus 1.1 (a repeated batch is inserted again)
    try:
        node.insert("c", x, list(range(6)))
        assert node.count("c") == 12
    finally:
        node.close()
