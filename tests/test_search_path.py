"""The node's search path: segments searched by a few workers over one queue (the calling thread among them),
search params parsed once and remembered, one-query requests decoded without the bulk join, and small segments
of timed flushes merged right after the flush."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import IllegalArgument, IllegalDimension, IllegalRowRecord
from coordinator.model import Collection, IdMode, IndexType, MetricType, Segment
from coordinator.topk import TopK
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from node import convert, merges, params
from node.engine import Engine
from node.service import MilvusService
from node.settings import NodeSettings
from tests.support.requests import assert_search_exact, decode_topk, rows, search_param
from tests.support.waiting import poll_for

DIM = 16
L2, IP = 1, 2


def _service(tmp_path: Path, search_threads: int, auto_flush: float = 0) -> tuple[MilvusService, Any]:
    settings = NodeSettings(storage_path=str(tmp_path), auto_flush_interval=auto_flush,
                            search_threads=search_threads)
    engine = Engine(settings)
    engine.open()
    pool = ThreadPoolExecutor(settings.search_threads, thread_name_prefix="search")

    def close() -> None:
        pool.shutdown()
        engine.close()

    return MilvusService(engine, pool), close


@pytest.fixture(params=[1, 2, 3])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MilvusService]:
    svc, close = _service(tmp_path, request.param)
    try:
        yield svc
    finally:
        close()


def _fill_partitions(svc: MilvusService, metric: int, parts: int = 7, per: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """One segment per partition (merges never combine partitions, so they stay apart)."""
    schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1024, metric_type=metric)
    assert svc.CreateCollection(schema, None).error_code == 0
    rng = np.random.default_rng(5)
    x = rng.standard_normal((parts * per, DIM)).astype(np.float32)
    ids = np.arange(10_000, 10_000 + parts * per, dtype=np.int64)
    for p in range(parts):
        tag = f"p{p}"
        assert svc.CreatePartition(milvus_pb2.PartitionParam(collection_name="c", tag=tag), None).error_code == 0
        span = slice(p * per, (p + 1) * per)
        request = milvus_pb2.InsertParam(collection_name="c", partition_tag=tag, row_record_array=rows(x[span]),
                                         row_id_array=ids[span].tolist())
        svc.Insert(request, None)
        assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
    return x, ids


def _search(svc: MilvusService, queries: np.ndarray, k: int, tags: tuple[str, ...] = ()) -> Any:
    raw = wire_fastpath_pb2.SearchParamRaw.FromString(search_param("c", queries, k, tags).SerializeToString())
    reply = svc.Search(raw, None)
    return decode_topk(milvus_pb2.TopKQueryResult.FromString(reply) if isinstance(reply, bytes) else reply)


@pytest.mark.parametrize("metric", [L2, IP])
def test_a_search_over_many_segments_is_exact_whatever_the_worker_count(service: MilvusService, metric: int) -> None:
    x, ids = _fill_partitions(service, metric)
    segs = service.engine.snapshot().segments_of(service.engine.collection("c").id)
    assert len(segs) == 7
    rng = np.random.default_rng(9)
    for nq in (1, 5):
        queries = rng.standard_normal((nq, DIM)).astype(np.float32)
        for k in (1, 10, 420):
            status, got_ids, got_dist = _search(service, queries, k)
            assert status.error_code == 0, status.reason
            assert_search_exact(got_ids, got_dist, x, ids, queries, k, metric)
    # Two of the partitions: only their rows.
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    status, got_ids, got_dist = _search(service, queries, 20, ("p2", "p5"))
    assert status.error_code == 0, status.reason
    chosen = np.r_[120:180, 300:360]
    assert_search_exact(got_ids, got_dist, x[chosen], ids[chosen], queries, 20, metric)


def test_the_workers_share_the_segments_and_the_caller_is_one_of_them(service: MilvusService) -> None:
    _fill_partitions(service, L2)
    coll = service.engine.collection("c")
    segs = service.engine.snapshot().segments_of(coll.id)
    caller = threading.get_ident()
    searched: list[tuple[int, int]] = []
    lock = threading.Lock()

    def one(seg: Segment) -> TopK:
        with lock:
            searched.append((seg.id, threading.get_ident()))
        return TopK(np.full((1, 1), seg.id, dtype=np.int64), np.full((1, 1), float(seg.id), dtype=np.float32))

    out = service.reader.fold(segs, 3, False, one)
    assert sorted(s for s, _ in searched) == sorted(s.id for s in segs)  # every segment once
    assert out.ids[0].tolist() == sorted(s.id for s in segs)[:3]  # the best three
    threads = {t for _, t in searched}
    assert len(threads) <= service.engine.settings.search_threads
    if service.engine.settings.search_threads == 1:
        assert threads == {caller}


def test_a_failing_segment_fails_the_search_and_the_pool_stays_usable(service: MilvusService) -> None:
    x, ids = _fill_partitions(service, L2)
    coll = service.engine.collection("c")
    segs = service.engine.snapshot().segments_of(coll.id)
    bad = segs[3].id

    def one(seg: Segment) -> TopK:
        if seg.id == bad:
            raise OSError("segment file gone")
        return TopK.empty(1, 1, False)

    with pytest.raises(OSError, match="segment file gone"):
        service.reader.fold(segs, 1, False, one)
    queries = x[:2] + 0.01
    status, got_ids, got_dist = _search(service, queries, 5)
    assert status.error_code == 0, status.reason
    assert_search_exact(got_ids, got_dist, x, ids, queries, 5, L2)


def test_search_params_are_remembered_and_errors_raised_every_time() -> None:
    pairs = [milvus_pb2.KeyValuePair(key="params", value='{"nprobe": 32}')]
    first = params.search_settings(IndexType.IVF_FLAT, pairs, 10)
    again = params.search_settings(IndexType.IVF_FLAT, pairs, 10)
    assert first is again  # remembered
    raw, sp = first
    assert dict(raw) == {"nprobe": 32} and sp.nprobe == 32
    with pytest.raises(TypeError):
        raw["nprobe"] = 1  # type: ignore[index]  # shared between searches: read-only
    for _ in range(2):
        with pytest.raises(IllegalArgument, match="Invalid nprobe value: 0"):
            params.search_settings(IndexType.IVF_FLAT, [milvus_pb2.KeyValuePair(key="params", value='{"nprobe": 0}')],
                                   10)
    with pytest.raises(IllegalArgument, match="Invalid ef value: 5"):  # ef below topk, for this topk only
        params.search_settings(IndexType.HNSW, [milvus_pb2.KeyValuePair(key="params", value='{"ef": 5}')], 10)
    assert params.search_settings(IndexType.HNSW, [milvus_pb2.KeyValuePair(key="params", value='{"ef": 5}')],
                                  5)[1].ef == 5
    # A long text is parsed each time, with the same result as a short one.
    long_text = '{"nprobe": 7, "pad": "' + "x" * (params.CACHED_PARAMS_CHARS + 10) + '"}'
    raw_long, sp_long = params.search_settings(IndexType.IVF_SQ8, [milvus_pb2.KeyValuePair(key="params",
                                                                                          value=long_text)], 10)
    assert sp_long.nprobe == 7 and raw_long["pad"].startswith("xxx")
    # No params at all, other keys ignored.
    assert params.search_settings(IndexType.FLAT, [milvus_pb2.KeyValuePair(key="other", value="[")], 10)[0] == {}


def _coll(binary: bool) -> Collection:
    return Collection(id=1, name="c", dimension=64 if binary else DIM,
                      metric=MetricType.HAMMING if binary else MetricType.L2, index_file_size_mb=1024,
                      index_type=IndexType.FLAT, index_params="{}", id_mode=IdMode.USER, created_us=0, flushed_lsn=0)


@pytest.mark.parametrize("binary", [False, True])
def test_one_query_decodes_like_the_message_decoder(binary: bool) -> None:
    coll = _coll(binary)
    rng = np.random.default_rng(3)
    vec = rng.integers(0, 256, (1, 8), dtype=np.uint8) if binary else rng.standard_normal((1, DIM)).astype(np.float32)
    raw = [r.SerializeToString() for r in rows(vec)]
    got = convert.vectors(raw, coll)
    assert got.dtype == vec.dtype and got.flags.writeable and np.array_equal(got, vec)
    assert np.array_equal(convert.vectors(rows(vec), coll), got)


def test_one_malformed_query_gets_the_same_errors() -> None:
    coll = _coll(False)
    short = milvus_pb2.RowRecord(float_data=[1.0] * (DIM - 1)).SerializeToString()
    with pytest.raises(IllegalDimension):
        convert.vectors([short], coll)
    bad_nan = milvus_pb2.RowRecord(float_data=[float("nan")] * DIM).SerializeToString()
    with pytest.raises(IllegalRowRecord, match="NaN or infinity"):
        convert.vectors([bad_nan], coll)
    with pytest.raises(IllegalRowRecord, match="Malformed vector record"):
        convert.vectors([b"\x0a\xff"], coll)


def _flushed_at_least(svc: MilvusService, coll_id: int, rows_count: int) -> bool:
    return sum(g.row_count for g in svc.engine.snapshot().segments_of(coll_id)) >= rows_count


def test_small_segments_of_timed_flushes_are_merged(tmp_path: Path) -> None:
    svc, close = _service(tmp_path, 2, auto_flush=0.2)
    try:
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1024,
                                             metric_type=L2)
        assert svc.CreateCollection(schema, None).error_code == 0
        rng = np.random.default_rng(1)
        x = rng.standard_normal((300, DIM)).astype(np.float32)
        ids = np.arange(300, dtype=np.int64)
        coll_id = svc.engine.collection("c").id
        for start in range(0, 300, 100):
            request = milvus_pb2.InsertParam(collection_name="c", row_record_array=rows(x[start:start + 100]),
                                             row_id_array=ids[start:start + 100].tolist())
            svc.Insert(request, None)
            # each batch waits for its timed flush: one small segment per batch (until merged)
            poll_for(functools.partial(_flushed_at_least, svc, coll_id, start + 100), timeout=30,
                     what="the timed flush")
        poll_for(lambda: len(svc.engine.snapshot().segments_of(coll_id)) == 1, timeout=30, what="one merged segment")
        queries = x[:4] + 0.001
        status, got_ids, got_dist = _search(svc, queries, 10)
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x, ids, queries, 10, L2)
    finally:
        close()


def test_a_remembered_scope_never_outlives_its_catalog_snapshot(tmp_path: Path) -> None:
    """The same request before and after a flush sees the new segment; after a drop it is told the collection is
    gone; a refused request is refused again."""
    svc, close = _service(tmp_path, 2)
    try:
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=DIM, index_file_size=1024, metric_type=L2)
        assert svc.CreateCollection(schema, None).error_code == 0
        rng = np.random.default_rng(2)
        x = rng.standard_normal((200, DIM)).astype(np.float32)
        ids = np.arange(200, dtype=np.int64)
        queries = x[150:152] + 0.001
        for upto in (100, 200):
            request = milvus_pb2.InsertParam(collection_name="c", row_record_array=rows(x[upto - 100:upto]),
                                             row_id_array=ids[upto - 100:upto].tolist())
            svc.Insert(request, None)
            assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=["c"]), None).error_code == 0
            for _ in range(2):  # the second time from the remembered scope
                status, got_ids, got_dist = _search(svc, queries, 5)
                assert status.error_code == 0, status.reason
                assert_search_exact(got_ids, got_dist, x[:upto], ids[:upto], queries, 5, L2)
        for _ in range(2):
            status, _, _ = _search(svc, queries, 5, ("no_such_tag",))
            assert status.error_code != 0 and "partition" in status.reason
        assert svc.DropCollection(milvus_pb2.CollectionName(collection_name="c"), None).error_code == 0
        status, _, _ = _search(svc, queries, 5)
        assert status.error_code != 0 and "c" in status.reason
    finally:
        close()


def _one_segment(engine: Engine, coll_id: int) -> bool:
    return len(engine.snapshot().segments_of(coll_id)) == 1


def test_a_merged_segment_is_loaded_before_searches_see_it(tmp_path: Path) -> None:
    """A merge replacing segments this node searched loads the merged segment into the cache before publishing it,
    so the first search after the merge finds it loaded; a merge of segments nobody searched loads nothing."""
    svc, close = _service(tmp_path, 1)
    try:
        rng = np.random.default_rng(3)
        x = rng.standard_normal((200, DIM)).astype(np.float32)
        ids = np.arange(200, dtype=np.int64)
        queries = x[[5, 150]] + 0.001
        for name in ("c", "d"):
            schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1024,
                                                 metric_type=L2)
            assert svc.CreateCollection(schema, None).error_code == 0
        for upto in (100, 200):
            for name in ("c", "d"):
                request = milvus_pb2.InsertParam(collection_name=name, row_record_array=rows(x[upto - 100:upto]),
                                                 row_id_array=ids[upto - 100:upto].tolist())
                svc.Insert(request, None)
                assert svc.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), None).error_code == 0
            status, got_ids, got_dist = _search(svc, queries, 5)  # "c" only
            assert status.error_code == 0, status.reason
            assert_search_exact(got_ids, got_dist, x[:upto], ids[:upto], queries, 5, L2)
        engine = svc.engine
        for name in ("c", "d"):  # or the background pass merged them already: the same code either way
            coll_id = engine.collection(name).id
            merges.merge_collection(engine, coll_id)
            poll_for(functools.partial(_one_segment, engine, coll_id), timeout=30, what=f"one merged segment of {name}")
        (merged_c,) = engine.snapshot().segments_of(engine.collection("c").id)
        (merged_d,) = engine.snapshot().segments_of(engine.collection("d").id)
        assert engine.cache.contains(merged_c.id)
        assert not engine.cache.contains(merged_d.id)
        misses = engine.cache.misses
        status, got_ids, got_dist = _search(svc, queries, 5)
        assert status.error_code == 0, status.reason
        assert_search_exact(got_ids, got_dist, x, ids, queries, 5, L2)
        assert engine.cache.misses == misses
    finally:
        close()
