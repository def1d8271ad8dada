"""Through the proxy (1 writer + 2 read nodes, one replica per segment), every search equals the writer's own
exact answer on the same data: every metric (float and binary), nq > 1, partitions, rows shorter than k,
SearchByID; what is flushed through the proxy is searched at once (the read nodes poll the catalog only
every 30 s here, so only the proxy's revision header can make them catch up); Preload warms each read
node's share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog
from coordinator.model import SEARCHABLE_STATES
from coordinator.placement import Placement
from milvus_wire import milvus_pb2
from tests.support.cluster import LocalCluster

DIM_FLOAT = 16
DIM_BINARY = 512  # bits: 64 bytes a row
ROWS = 9000  # per segment: 576 KB, so two segments never merge under index_file_size 1 MB
METRICS = {"L2": 1, "IP": 2, "HAMMING": 3, "JACCARD": 4, "TANIMOTO": 5, "SUBSTRUCTURE": 6, "SUPERSTRUCTURE": 7}
BINARY = {"HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE"}


def _records(x: np.ndarray) -> list[Any]:
    if x.dtype == np.uint8:
        return [milvus_pb2.RowRecord(binary_data=row.tobytes()) for row in x]
    return [milvus_pb2.RowRecord(float_data=row) for row in x.tolist()]


def _data(rng: np.random.Generator, metric: str, n: int) -> np.ndarray:
    if metric in BINARY:
        # Sparse bits make sub/superstructure matches (and Hamming ties) common, as in real fingerprints.
        return np.packbits(rng.random((n, DIM_BINARY)) < 0.08, axis=1)
    return rng.standard_normal((n, DIM_FLOAT)).astype(np.float32)


def _result(res: Any) -> tuple[np.ndarray, np.ndarray]:
    assert res.status.error_code == 0, res.status.reason
    nq = res.row_num
    ids = np.array(res.ids, dtype=np.int64)
    dist = np.array(res.distances, dtype=np.float32)
    if nq == 0:
        assert ids.size == 0
        return ids.reshape(0, 0), dist.reshape(0, 0)
    assert ids.size % nq == 0 and ids.size == dist.size
    return ids.reshape(nq, -1), dist.reshape(nq, -1)


def assert_same_answer(got: Any, ref: Any) -> None:
    """Same shape and distances; the same ids except where distances tie at a row's last kept distance."""
    g_ids, g_dist = _result(got)
    r_ids, r_dist = _result(ref)
    assert g_ids.shape == r_ids.shape
    np.testing.assert_allclose(g_dist, r_dist, rtol=1e-5, atol=1e-5)
    for row in range(g_ids.shape[0]):
        real = g_ids[row][g_ids[row] != -1]
        assert len(set(real.tolist())) == real.size, "an id twice in one row"
        if g_ids.shape[1] == 0:
            continue
        boundary = r_dist[row, -1]
        strict = ~np.isclose(r_dist[row], boundary, rtol=1e-5, atol=1e-5)
        assert set(g_ids[row][strict].tolist()) == set(r_ids[row][strict].tolist())
        assert (g_ids[row] == -1).sum() == (r_ids[row] == -1).sum()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("merge"), readers=2, replication=1,
                      reader_args=["--catalog-refresh-interval", "30"]) as c:
        yield c


@pytest.fixture(scope="module")
def loaded(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    """One collection per metric: a segment in the default partition and one in each of p1 and p2."""
    s = cluster.stub()
    rng = np.random.default_rng(7)
    out: dict[str, dict[str, Any]] = {}
    for metric, code in METRICS.items():
        name = f"m_{metric.lower()}"
        dim = DIM_BINARY if metric in BINARY else DIM_FLOAT
        schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=dim, index_file_size=1,
                                             metric_type=code)
        assert s.CreateCollection(schema).error_code == 0
        ids: dict[str, list[int]] = {}
        vectors: dict[str, np.ndarray] = {}
        for tag in ("", "p1", "p2"):
            if tag:
                assert s.CreatePartition(milvus_pb2.PartitionParam(collection_name=name, tag=tag)).error_code == 0
            x = _data(rng, metric, ROWS)
            reply = s.Insert(milvus_pb2.InsertParam(collection_name=name, partition_tag=tag,
                                                    row_record_array=_records(x)))
            assert reply.status.error_code == 0
            ids[tag], vectors[tag] = list(reply.vector_id_array), x
            assert s.Flush(milvus_pb2.FlushParam(collection_name_array=[name])).error_code == 0
        out[metric] = {"name": name, "ids": ids, "vectors": vectors, "queries": _data(rng, metric, 6)}
    return out


@pytest.mark.parametrize("metric", list(METRICS))
def test_search_through_the_proxy_equals_the_writers_answer(
    cluster: LocalCluster, loaded: dict[str, dict[str, Any]], metric: str
) -> None:
    info = loaded[metric]
    # Queries: fresh vectors, plus stored ones (exact matches and, for binary, many ties).
    queries = np.concatenate([info["queries"], info["vectors"]["p1"][:2], info["vectors"][""][:1]])
    proxy, writer = cluster.stub(), cluster.writer.stub()
    for tags in ([], ["p1"], ["p.*"], ["p2", "nomatch.*"]):
        for k in (1, 10, 64):
            param = milvus_pb2.SearchParam(collection_name=info["name"], topk=k, partition_tag_array=tags,
                                           query_record_array=_records(queries))
            got, ref = proxy.Search(param, timeout=60), writer.Search(param, timeout=60)
            assert_same_answer(got, ref)
            assert got.row_num == len(queries)


def test_search_by_id_through_the_proxy_equals_the_writers_answer(
    cluster: LocalCluster, loaded: dict[str, dict[str, Any]]
) -> None:
    proxy, writer = cluster.stub(), cluster.writer.stub()
    for metric in ("L2", "IP", "JACCARD"):
        info = loaded[metric]
        wanted = [info["ids"]["p1"][3], 987654321, info["ids"][""][5], info["ids"]["p2"][0]]
        for tags in ([], ["p1"], ["p2"]):
            for k in (1, 16):
                param = milvus_pb2.SearchByIDParam(collection_name=info["name"], topk=k, id_array=wanted,
                                                   partition_tag_array=tags)
                got, ref = proxy.SearchByID(param, timeout=60), writer.SearchByID(param, timeout=60)
                assert_same_answer(got, ref)
                ids, _ = _result(got)
                assert ids.shape[0] == len(wanted)
                assert (ids[1] == -1).all()  # an unknown id keeps its row, all holes
                if not tags and metric != "IP":  # (under IP a longer vector can beat the query itself)
                    assert ids[0, 0] == wanted[0]  # a stored vector finds itself first
    # Errors keep the single-server wording.
    bad = proxy.SearchByID(milvus_pb2.SearchByIDParam(collection_name="m_l2", topk=5, id_array=[]))
    assert bad.status.error_code == 5 and bad.status.reason == "No vector id specified"
    missing = proxy.SearchByID(milvus_pb2.SearchByIDParam(collection_name="nope", topk=5, id_array=[1]))
    assert missing.status.error_code == 4


def test_rows_shorter_than_k_and_empty_scopes(cluster: LocalCluster) -> None:
    s, w = cluster.stub(), cluster.writer.stub()
    schema = milvus_pb2.CollectionSchema(collection_name="tiny", dimension=4, index_file_size=1, metric_type=2)
    assert s.CreateCollection(schema).error_code == 0
    assert s.CreatePartition(milvus_pb2.PartitionParam(collection_name="tiny", tag="empty")).error_code == 0
    rng = np.random.default_rng(3)
    for n in (3, 4):
        s.Insert(milvus_pb2.InsertParam(collection_name="tiny", row_record_array=_records(
            rng.standard_normal((n, 4)).astype(np.float32))))
        assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["tiny"])).error_code == 0
    q = _records(rng.standard_normal((3, 4)).astype(np.float32))
    param = milvus_pb2.SearchParam(collection_name="tiny", topk=50, query_record_array=q)
    got = s.Search(param, timeout=30)
    assert_same_answer(got, w.Search(param, timeout=30))
    ids, dist = _result(got)
    assert ids.shape == (3, 7)  # min(topk, live rows): no padding beyond the rows that exist
    assert (np.diff(dist, axis=1) <= 0).all()  # IP: best (largest) first
    empty = milvus_pb2.SearchParam(collection_name="tiny", topk=5, partition_tag_array=["empty"],
                                   query_record_array=q)
    got = s.Search(empty, timeout=30)
    assert got.status.error_code == 0 and got.row_num == 0 and not got.ids


def test_what_is_flushed_through_the_proxy_is_searched_at_once(cluster: LocalCluster) -> None:
    """Read nodes poll the catalog every 30 s in this cluster: only the proxy's revision header can tell them."""
    s = cluster.stub()
    schema = milvus_pb2.CollectionSchema(collection_name="fresh", dimension=8, index_file_size=1, metric_type=1)
    assert s.CreateCollection(schema).error_code == 0
    rng = np.random.default_rng(9)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    ids = list(s.Insert(milvus_pb2.InsertParam(collection_name="fresh", row_record_array=_records(x))).vector_id_array)
    assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["fresh"])).error_code == 0
    param = milvus_pb2.SearchParam(collection_name="fresh", topk=1, query_record_array=_records(x[:20]))
    before = [_lookups(n) for n in cluster.nodes]
    found, _ = _result(s.Search(param, timeout=30))
    assert found[:, 0].tolist() == ids[:20]
    after = [_lookups(n) for n in cluster.nodes]
    # The read nodes answered. (The writer's own lookups are not compared: a background merge of another
    # collection publishing meanwhile loads its new segment on the writer.)
    assert sum(after[1:]) > sum(before[1:])
    # Deletes flushed through the proxy vanish at once too (no new segment: only the delete log moves).
    assert s.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="fresh", id_array=ids[:10])).error_code == 0
    assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["fresh"])).error_code == 0
    found, _ = _result(s.Search(param, timeout=30))
    assert not set(found.ravel().tolist()) & set(ids[:10])
    assert found[10:, 0].tolist() == ids[10:20]


def _stats(node: Any) -> dict[str, Any]:
    return dict(json.loads(node.stub().Cmd(milvus_pb2.Command(cmd="mishards_stats")).string_reply))


def _lookups(node: Any) -> int:
    info = _stats(node)
    return int(info["cache_hits"]) + int(info["cache_misses"])


def test_preload_warms_each_read_nodes_share_and_release_empties_them(
    cluster: LocalCluster, loaded: dict[str, dict[str, Any]]
) -> None:
    """Counts m_l2's segments in each reader's cache: other collections' merges and warm-ups may land meanwhile."""
    s = cluster.stub()
    catalog = Catalog(cluster.meta_uri)
    try:
        snap = catalog.snapshot()
        seg_ids = {seg.id for seg in snap.segments_of(snap.collections["m_l2"].id) if seg.state in SEARCHABLE_STATES}
    finally:
        catalog.close()

    def held() -> list[int]:
        return [len(seg_ids & set(_stats(r)["cache_segment_ids"])) for r in cluster.readers]

    names = list(s.ShowCollections(milvus_pb2.Command()).collection_names)
    for name in names:
        assert s.ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name=name)).error_code == 0
    assert held() == [0, 0]
    assert s.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name="m_l2")).error_code == 0
    placement = Placement.of(sorted(cluster.addresses[1:]), r=1)
    shares = [len(placement.share(addr, sorted(seg_ids))) for addr in cluster.addresses[1:]]
    assert held() == shares
    assert sum(shares) == 3
    # Release through the proxy empties the readers too.
    assert s.ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name="m_l2")).error_code == 0
    assert held() == [0, 0]
    # Unknown collections keep the single-server status.
    assert s.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name="nope")).error_code == 4
