"""Background merges hold the collection's maintenance lock only to plan and to commit (node/merges.py): a flush
of the same collection goes ahead while a merge writes its files, and a merge whose source segments changed
meanwhile (deletes applied by a flush) is dropped instead of committing rows that were deleted. Real engine,
storage and SQLite catalog in process; the background maintenance thread is stopped so that only the merges
the test runs happen."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from milvus_wire import milvus_pb2, wire_fastpath_pb2
from node import merges
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings
from tests.support.requests import assert_search_exact, decode_topk, rows, search_param

DIM = 8
L2 = 1
PART = 50  # rows per flushed segment
PAUSE_S = 30.0  # the longest a paused merge waits for the test (a failing test must not hang)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[MilvusService]:
    engine = Engine(NodeSettings(storage_path=str(tmp_path), auto_flush_interval=0))
    engine.open()
    assert engine.upkeep is not None
    engine.upkeep.stop()  # no background pass: the test runs every merge itself
    pool = ThreadPoolExecutor(1)
    try:
        service = MilvusService(engine, pool)
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=64, metric_type=L2)
        assert service.CreateCollection(schema, None).error_code == 0
        yield service
    finally:
        pool.shutdown()
        engine.close()


def _insert_flush(svc: MilvusService, x: np.ndarray, ids: np.ndarray) -> None:
    raw = svc.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=rows(x),
                                            row_id_array=ids.tolist()), None)
    reply = milvus_pb2.VectorIds.FromString(raw) if isinstance(raw, bytes) else raw
    assert reply.status.error_code == 0, reply.status.reason
    assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0


def _segments(svc: MilvusService) -> int:
    engine = svc.engine
    return len(engine.refresh().segments_of(engine.collection("c").id))


def _three_segments(svc: MilvusService) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(5).random((3 * PART, DIM), dtype=np.float32)
    ids = np.arange(3 * PART, dtype=np.int64)
    for start in range(0, 3 * PART, PART):
        _insert_flush(svc, x[start:start + PART], ids[start:start + PART])
    assert _segments(svc) == 3
    return x, ids


class Pause:
    """A ``before_commit`` hook: the merge waits there until the test lets it go."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        assert self.go.wait(PAUSE_S), "the test never let the merge go on"


def _merge_in_thread(svc: MilvusService, pause: Pause) -> tuple[threading.Thread, Callable[[], int]]:
    result: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(merges.merge_unlocked(svc.engine, svc.engine.collection("c").id, before_commit=pause))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert pause.reached.wait(PAUSE_S), "the merge never wrote its files"

    def finish() -> int:
        pause.go.set()
        thread.join(PAUSE_S)
        assert not thread.is_alive() and not errors, errors
        return result[0]

    return thread, finish


def _check_search(svc: MilvusService, x: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> None:
    request = wire_fastpath_pb2.SearchParamRaw.FromString(search_param("c", queries, 5).SerializeToString())
    reply = svc.Search(request, None)
    status, got_ids, got_dist = decode_topk(milvus_pb2.TopKQueryResult.FromString(reply)
                                            if isinstance(reply, bytes) else reply)
    assert status.error_code == 0, status.reason
    assert_search_exact(got_ids, got_dist, x, ids, queries, 5, L2)


def _count(svc: MilvusService) -> int:
    reply = svc.CountCollection(milvus_pb2.CollectionName(collection_name="c"), None)
    assert reply.status.error_code == 0
    return int(reply.collection_row_count)


def test_a_flush_goes_ahead_while_a_background_merge_writes(svc: MilvusService) -> None:
    x, ids = _three_segments(svc)
    pause = Pause()
    _, finish = _merge_in_thread(svc, pause)
    # The merge has written its files and holds no lock: a flush of new rows completes meanwhile.
    more = np.random.default_rng(6).random((PART, DIM), dtype=np.float32)
    more_ids = np.arange(3 * PART, 4 * PART, dtype=np.int64)
    _insert_flush(svc, more, more_ids)
    assert _segments(svc) == 4, "the merge has not committed yet"
    assert finish() == 0
    assert _segments(svc) == 2  # the three merged into one, beside the new flush's segment
    everything, every_id = np.vstack([x, more]), np.concatenate([ids, more_ids])
    assert _count(svc) == 4 * PART
    _check_search(svc, everything, every_id, np.random.default_rng(7).random((6, DIM), dtype=np.float32))


def test_deletes_applied_while_a_merge_writes_drop_the_merge(svc: MilvusService) -> None:
    x, ids = _three_segments(svc)
    gone = np.array([3, PART + 7, 2 * PART + 11], dtype=np.int64)  # one row of each source segment
    pause = Pause()
    _, finish = _merge_in_thread(svc, pause)
    reply = svc.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=gone.tolist()), None)
    assert reply.error_code == 0, reply.reason
    assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
    assert finish() == 1, "the merge read the rows before the deletes: it must not commit them"
    assert _segments(svc) == 3
    kept = ~np.isin(ids, gone)
    assert _count(svc) == 3 * PART - gone.size
    _check_search(svc, x[kept], ids[kept], x[np.isin(ids, gone)])  # the deleted rows' own vectors as queries
    # The next pass merges what is there now, deletes included.
    assert merges.merge_unlocked(svc.engine, svc.engine.collection("c").id) == 0
    assert _segments(svc) == 1
    assert _count(svc) == 3 * PART - gone.size
    _check_search(svc, x[kept], ids[kept], x[np.isin(ids, gone)])


def test_a_compaction_while_a_merge_writes_drops_the_merge(svc: MilvusService) -> None:
    x, ids = _three_segments(svc)
    gone = np.arange(PART, PART + PART // 2, dtype=np.int64)  # half of the second segment: compaction rewrites it
    reply = svc.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="c", id_array=gone.tolist()), None)
    assert reply.error_code == 0, reply.reason
    assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
    pause = Pause()
    _, finish = _merge_in_thread(svc, pause)
    assert svc.Compact(milvus_pb2.CollectionName(collection_name="c"), None).error_code == 0
    assert finish() == 1
    kept = ~np.isin(ids, gone)
    assert _count(svc) == 3 * PART - gone.size
    _check_search(svc, x[kept], ids[kept], np.random.default_rng(8).random((6, DIM), dtype=np.float32))


def test_merges_dropped_twice_in_a_row_take_the_lock_next_time() -> None:
    contention = merges.MergeContention()
    assert not contention.locked_next(1)
    contention.record(1, dropped=1)
    assert not contention.locked_next(1)
    contention.record(1, dropped=2)
    assert contention.locked_next(1) and not contention.locked_next(2)
    contention.record(1, dropped=0)  # a pass without drops (a locked one never drops) starts the count again
    assert not contention.locked_next(1)
