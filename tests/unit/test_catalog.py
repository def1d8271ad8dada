"""The catalog on a SQLite file: schema, writer epochs and fencing, revisions, snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.catalog import Catalog, DeleteUpdate, Fenced, NewSegment
from coordinator.errors import ErrorCode, MetaFailed
from coordinator.model import DEFAULT_PARTITION, IdMode, IndexType, MetricType, SegmentState


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    cat.ensure_schema()
    try:
        yield cat
    finally:
        cat.close()


def seg(name: str, partition_id: int, rows: int = 10) -> NewSegment:
    return NewSegment(name, partition_id, rows, 0, rows * 16, 0)


def test_ensure_schema_is_idempotent(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    first = Catalog(uri)
    first.ensure_schema()
    epoch = first.claim_writer("a")
    first.create_collection(epoch, "c", 4, MetricType.L2, 16)
    rev = first.revision()
    first.ensure_schema()
    second = Catalog(uri)
    second.ensure_schema()
    try:
        assert second.revision() == rev
        assert set(second.snapshot().collections) == {"c"}
    finally:
        first.close()
        second.close()


def test_fresh_catalog(catalog: Catalog) -> None:
    assert catalog.revision() == 0
    snap = catalog.snapshot()
    assert snap.revision == 0
    assert dict(snap.collections) == {}
    assert snap.collection("x") is None
    assert snap.partitions_of(1) == () and snap.segments_of(1) == ()


def test_claim_writer_bumps_epoch_and_fences_the_old_writer(catalog: Catalog) -> None:
    e1 = catalog.claim_writer("node-a")
    assert e1 == 1
    cid = catalog.create_collection(e1, "c1", 8, MetricType.L2, 16)
    e2 = catalog.claim_writer("node-b")
    assert e2 == e1 + 1
    rev = catalog.revision()
    stale_writes = [
        lambda: catalog.create_collection(e1, "c2", 8, MetricType.L2, 16),
        lambda: catalog.create_partition(e1, cid, "p"),
        lambda: catalog.commit_segments(e1, cid, IndexType.FLAT, added=[seg("s", 1)]),
        lambda: catalog.set_index(e1, cid, IndexType.IVF_FLAT, {"nlist": 4}),
        lambda: catalog.set_id_mode(e1, cid, IdMode.AUTO),
        lambda: catalog.set_flushed_lsn(e1, [cid], 5),
        lambda: catalog.drop_collection(e1, cid),
        lambda: catalog.purge(e1, [], []),
    ]
    for write in stale_writes:
        with pytest.raises(Fenced) as info:
            write()
        assert isinstance(info.value, MetaFailed)
        assert info.value.code == ErrorCode.META_FAILED
    # nothing of the refused writes is visible, and they did not move the revision
    assert catalog.revision() == rev
    snap = catalog.snapshot()
    assert set(snap.collections) == {"c1"}
    assert [p.tag for p in snap.partitions_of(cid)] == [DEFAULT_PARTITION]
    assert snap.segments_of(cid) == ()
    assert snap.collections["c1"].index_type is IndexType.FLAT
    # the new writer can write
    catalog.create_partition(e2, cid, "p")
    assert catalog.revision() == rev + 1


def test_only_the_current_epoch_may_write(catalog: Catalog) -> None:
    epoch = catalog.claim_writer("w")
    for wrong in (0, epoch - 1, epoch + 1, -5):
        with pytest.raises(Fenced, match=f"Writer epoch {wrong} is no longer current"):
            catalog.create_collection(wrong, "c", 8, MetricType.L2, 16)
    assert catalog.snapshot().collections == {}


def test_revision_increases_on_every_commit(catalog: Catalog) -> None:
    revisions = [catalog.revision()]

    def step() -> None:
        rev = catalog.revision()
        assert rev > revisions[-1]
        assert catalog.snapshot().revision == rev
        revisions.append(rev)

    epoch = catalog.claim_writer("w")
    step()
    cid = catalog.create_collection(epoch, "c", 8, MetricType.IP, 16)
    step()
    pid = catalog.create_partition(epoch, cid, "p1")
    step()
    catalog.set_id_mode(epoch, cid, IdMode.USER)
    step()
    catalog.set_index(epoch, cid, IndexType.HNSW, {"M": 16, "efConstruction": 100})
    step()
    (sid,) = catalog.commit_segments(epoch, cid, IndexType.HNSW, added=[seg("s1", pid)])
    step()
    catalog.commit_segments(epoch, cid, IndexType.HNSW, delete_updates=[DeleteUpdate(sid, 2, 1)])
    step()
    catalog.set_flushed_lsn(epoch, [cid], 9)
    step()
    catalog.drop_partition(epoch, pid)
    step()
    catalog.drop_collection(epoch, cid)
    step()
    catalog.purge(epoch, [sid], [cid])
    step()
    # a refused change (duplicate name) is rolled back with its revision bump
    catalog.create_collection(epoch, "d", 8, MetricType.L2, 16)
    step()
    with pytest.raises(ValueError):
        catalog.create_collection(epoch, "d", 8, MetricType.L2, 16)
    assert catalog.revision() == revisions[-1]


def test_snapshot_contents(catalog: Catalog) -> None:
    epoch = catalog.claim_writer("w")
    cid = catalog.create_collection(epoch, "vecs", 16, MetricType.HAMMING, 32)
    other = catalog.create_collection(epoch, "other", 4, MetricType.L2, 1)
    assert cid != other

    snap = catalog.snapshot()
    coll = snap.collections["vecs"]
    assert snap.collections_by_id[cid] == coll
    assert (coll.id, coll.name, coll.dimension, coll.metric) == (cid, "vecs", 16, MetricType.HAMMING)
    assert (coll.index_file_size_mb, coll.index_type, coll.index_params) == (32, IndexType.FLAT, "{}")
    assert (coll.id_mode, coll.flushed_lsn) == (IdMode.UNSET, 0)
    assert coll.row_bytes == 2
    (default,) = snap.partitions_of(cid)
    assert default.tag == DEFAULT_PARTITION and default.collection_id == cid

    p1 = catalog.create_partition(epoch, cid, "p1")
    p2 = catalog.create_partition(epoch, cid, "p2")
    catalog.set_index(epoch, cid, IndexType.IVF_FLAT, {"nlist": 8, "a": 1})
    catalog.set_id_mode(epoch, cid, IdMode.AUTO)
    s1, s2, s3 = catalog.commit_segments(
        epoch,
        cid,
        IndexType.IVF_FLAT,
        added=[seg("seg-a", default.id), seg("seg-b", p1, 5), seg("seg-c", p2, 7)],
        flushed_lsn=12,
    )
    snap = catalog.snapshot()
    coll = snap.collections["vecs"]
    assert coll.index_type is IndexType.IVF_FLAT
    assert coll.index_params == '{"a":1,"nlist":8}'
    assert coll.id_mode is IdMode.AUTO
    assert coll.flushed_lsn == 12
    assert [p.tag for p in snap.partitions_of(cid)] == [DEFAULT_PARTITION, "p1", "p2"]
    found = snap.partition(cid, "p2")
    assert found is not None and found.id == p2
    assert snap.partition(cid, "p3") is None
    segs = {s.name: s for s in snap.segments_of(cid)}
    assert set(segs) == {"seg-a", "seg-b", "seg-c"}
    b = segs["seg-b"]
    assert (b.id, b.partition_id, b.row_count, b.data_size, b.state) == (s2, p1, 5, 80, SegmentState.RAW)
    assert b.index_type is IndexType.IVF_FLAT and b.live_count == 5
    assert snap.segments_of(other) == ()

    # merge-like commit: one new segment replaces two; delete log of another moves on
    catalog.commit_segments(
        epoch,
        cid,
        IndexType.IVF_FLAT,
        added=[seg("seg-ab", default.id, 15)],
        removed=[s1, s2],
        delete_updates=[DeleteUpdate(s3, 3, 1)],
        flushed_lsn=7,  # older than the stored one: ignored
    )
    snap = catalog.snapshot()
    assert {s.name for s in snap.segments_of(cid)} == {"seg-c", "seg-ab"}
    assert snap.segments_by_id[s1].state is SegmentState.TO_DELETE  # retired rows stay visible by id
    c = snap.segments_by_id[s3]
    assert (c.deleted_count, c.delete_version, c.live_count) == (3, 1, 4)
    assert snap.collections["vecs"].flushed_lsn == 12

    # dropping a partition retires its segments
    catalog.drop_partition(epoch, p2)
    snap = catalog.snapshot()
    assert [p.tag for p in snap.partitions_of(cid)] == [DEFAULT_PARTITION, "p1"]
    assert {s.name for s in snap.segments_of(cid)} == {"seg-ab"}
    assert snap.segments_by_id[s3].state is SegmentState.TO_DELETE

    # dropping the collection hides it and everything in it
    catalog.drop_collection(epoch, cid)
    snap = catalog.snapshot()
    assert set(snap.collections) == {"other"}
    assert cid not in snap.collections_by_id
    assert snap.partitions_of(cid) == () and snap.segments_of(cid) == ()
    segs_gone, colls_gone = catalog.garbage(older_than_us=2**62)
    assert {name for _, _, name in segs_gone} == {"seg-a", "seg-b", "seg-c", "seg-ab"}
    assert colls_gone == [cid]
    # the name can be used again
    again = catalog.create_collection(epoch, "vecs", 8, MetricType.L2, 16)
    assert again != cid and catalog.snapshot().collections["vecs"].id == again


def test_purge_forgets_collections_only_when_their_segments_are_gone(catalog: Catalog) -> None:
    epoch = catalog.claim_writer("w")
    cid = catalog.create_collection(epoch, "c", 8, MetricType.L2, 16)
    default = catalog.snapshot().partitions_of(cid)[0].id
    sa, sb = catalog.commit_segments(epoch, cid, IndexType.FLAT, added=[seg("a", default), seg("b", default)])
    catalog.drop_collection(epoch, cid)
    assert catalog.garbage(0) == ([], [cid])  # nothing old enough yet
    assert catalog.purge(epoch, [sa], [cid]) == []
    assert catalog.purge(epoch, [sb], [cid]) == [cid]
    assert catalog.garbage(2**62) == ([], [])
    assert catalog.snapshot().segments_by_id == {}


def test_ids_of_purged_rows_are_never_given_again(catalog: Catalog) -> None:
    """SQLite reuses the largest rowid once its row is deleted unless told not to: a collection dropped and
    purged, then created again, must get new collection, partition and segment ids (retry keys, logs and
    caches name them by id)."""
    epoch = catalog.claim_writer("w")
    cid = catalog.create_collection(epoch, "c", 8, MetricType.L2, 16)
    pid = catalog.create_partition(epoch, cid, "p")
    (sid,) = catalog.commit_segments(epoch, cid, IndexType.FLAT, added=[seg("a", pid)])
    catalog.drop_collection(epoch, cid)
    assert catalog.purge(epoch, [sid], [cid]) == [cid]
    again = catalog.create_collection(epoch, "c", 8, MetricType.L2, 16)
    pid_again = catalog.create_partition(epoch, again, "p")
    (sid_again,) = catalog.commit_segments(epoch, again, IndexType.FLAT, added=[seg("a", pid_again)])
    assert again > cid and pid_again > pid and sid_again > sid
    default = {p.tag: p.id for p in catalog.snapshot().partitions_of(again)}[DEFAULT_PARTITION]
    assert default > pid


def test_unreachable_database_is_meta_failed(tmp_path: Path) -> None:
    cat = Catalog(f"sqlite:///{tmp_path / 'missing-dir' / 'meta.sqlite'}")
    try:
        with pytest.raises(MetaFailed) as info:
            cat.ensure_schema()
        assert info.value.code == ErrorCode.META_FAILED
    finally:
        cat.close()
