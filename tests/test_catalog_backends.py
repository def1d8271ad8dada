"""The same node and catalog behaviour on SQLite and on a real MariaDB started by the fixture."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.catalog import Catalog, Fenced, NewSegment
from coordinator.model import IndexType, MetricType
from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for


@pytest.fixture
def catalog(catalog_uri: str) -> Iterator[Catalog]:
    cat = Catalog(catalog_uri)
    cat.ensure_schema()
    try:
        yield cat
    finally:
        cat.close()


def test_revision_moves_on_every_commit_and_old_epochs_are_fenced(catalog: Catalog, catalog_uri: str) -> None:
    epoch = catalog.claim_writer("a")
    r0 = catalog.revision()
    cid = catalog.create_collection(epoch, "c", 8, MetricType.L2, 1024)
    r1 = catalog.revision()
    assert r1 > r0
    [sid] = catalog.commit_segments(epoch, cid, IndexType.FLAT, added=[NewSegment("123", 0, 10, 0, 100, 0)])
    assert catalog.revision() > r1
    snap = catalog.snapshot()
    assert snap.revision == catalog.revision()
    assert snap.collections["c"].dimension == 8
    assert [p.tag for p in snap.partitions_of(cid)] == ["_default"]
    assert snap.segments_by_id[sid].row_count == 10

    # A second writer (another process would do the same through its own engine) deposes the first.
    other = Catalog(catalog_uri)
    try:
        new_epoch = other.claim_writer("b")
        assert new_epoch == epoch + 1
        with pytest.raises(Fenced):
            catalog.create_collection(epoch, "d", 8, MetricType.L2, 1024)
        assert "d" not in other.snapshot().collections
        other.create_collection(new_epoch, "d", 8, MetricType.L2, 1024)
        assert "d" in catalog.snapshot().collections
    finally:
        other.close()


def test_unicode_partition_tags_round_trip(catalog: Catalog) -> None:
    epoch = catalog.claim_writer("a")
    cid = catalog.create_collection(epoch, "c", 8, MetricType.L2, 1024)
    catalog.create_partition(epoch, cid, "标签-ü ✓")
    catalog.create_partition(epoch, cid, "Tag")
    catalog.create_partition(epoch, cid, "tag")
    tags = [p.tag for p in catalog.snapshot().partitions_of(cid)]
    assert tags == ["_default", "标签-ü ✓", "Tag", "tag"]


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def test_node_serves_and_restarts_on_the_catalog(catalog_uri: str, tmp_path: Path) -> None:
    x = np.random.default_rng(7).standard_normal((300, 16)).astype(np.float32)
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"], meta_uri=catalog_uri)
    with node:
        s = node.stub()
        st = s.CreateCollection(milvus_pb2.CollectionSchema(collection_name="c", dimension=16, index_file_size=1,
                                                            metric_type=1))
        assert st.error_code == 0, st.reason
        ids = s.Insert(milvus_pb2.InsertParam(collection_name="c", row_record_array=_rows(x))).vector_id_array
        assert len(ids) == 300
        assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["c"])).error_code == 0
        assert s.CountCollection(milvus_pb2.CollectionName(collection_name="c")).collection_row_count == 300
    with node:  # starts it again on the same storage and catalog
        s = node.stub()
        assert s.CountCollection(milvus_pb2.CollectionName(collection_name="c")).collection_row_count == 300
        res = s.Search(milvus_pb2.SearchParam(collection_name="c", topk=1, query_record_array=_rows(x[:5])))
        assert res.status.error_code == 0, res.status.reason
        assert list(res.ids) == list(ids[:5])


def test_many_processes_prepare_a_new_catalog_at_once(catalog_uri: str) -> None:
    """A new cluster starts every node together: all of them prepare the empty catalog at the same moment."""
    script = ("import sys; from coordinator.catalog import Catalog; c = Catalog(sys.argv[1]); c.ensure_schema(); "
              "print(c.revision()); c.close()")
    procs = [subprocess.Popen([sys.executable, "-c", script, catalog_uri], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outcomes]
    assert {out.strip() for out, _ in outcomes} == {"0"}
    cat = Catalog(catalog_uri)
    try:
        assert cat.writer_state() == (0, 0, "")  # one state row, untouched
    finally:
        cat.close()


def test_writer_lease_is_exclusive_expires_on_the_database_clock_and_can_be_released(catalog: Catalog) -> None:
    assert catalog.writer_lease() is None
    assert catalog.acquire_writer_lease("a", "10.0.0.1:19530", ttl=0.5)
    assert not catalog.acquire_writer_lease("b", "10.0.0.2:19530", ttl=0.5)  # held by a
    assert catalog.acquire_writer_lease("a", "10.0.0.1:19530", ttl=0.5)  # a may take it again
    lease = catalog.writer_lease()
    assert lease is not None and (lease.holder, lease.address) == ("a", "10.0.0.1:19530")
    assert 0 < lease.remaining <= 0.5
    assert catalog.renew_writer_lease("a", ttl=0.5)
    assert not catalog.renew_writer_lease("b", ttl=0.5)
    # Not renewed: it runs out on the database's clock and b takes it; a can no longer renew.
    poll_for(lambda: catalog.acquire_writer_lease("b", "10.0.0.2:19530", ttl=30), 10, what="a's lease to expire")
    assert not catalog.renew_writer_lease("a", ttl=0.5)
    lease = catalog.writer_lease()
    assert lease is not None and lease.holder == "b" and lease.remaining > 25
    # A clean stop hands it over at once.
    catalog.release_writer_lease("b")
    assert catalog.acquire_writer_lease("a", "10.0.0.1:19530", ttl=30)


def test_a_writer_whose_lease_was_taken_over_is_deposed(catalog: Catalog) -> None:
    from coordinator.catalog_election import CatalogElection

    claimed: list[str] = []
    deposed: list[str] = []

    def claim(who: str) -> int:
        claimed.append(who)
        return len(claimed)

    first = CatalogElection(catalog, "a", "10.0.0.1:19530", ttl=0.6, claim=lambda: claim("a"),
                            on_deposed=deposed.append)
    second = CatalogElection(catalog, "b", "10.0.0.2:19530", ttl=0.6, claim=lambda: claim("b"),
                             on_deposed=deposed.append)
    first.start()
    try:
        poll_for(lambda: claimed == ["a"] and first.is_leader, 10, what="a to win")
        second.start()
        assert not second.is_leader
        # Someone expires a's lease behind its back (as a stalled writer would find): b wins, a is deposed.
        with catalog.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE writer_lease SET expires_at = 0")
        poll_for(lambda: claimed == ["a", "b"] and second.is_leader, 10, what="b to win")
        poll_for(lambda: deposed != [], 10, what="a to be deposed")
        assert not first.is_leader and "taken over" in deposed[0]
    finally:
        first.stop()
        second.stop()
