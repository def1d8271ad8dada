"""One writer and two read-only nodes sharing a catalog (SQLite file or MariaDB) and a storage folder."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.errors import ErrorCode
from coordinator.placement import Placement
from milvus_wire import milvus_pb2
from tests.support.mariadb import MariaDBServer
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for

DIM = 16


@dataclass
class Cluster:
    writer: NodeProcess
    readers: list[NodeProcess]


@pytest.fixture(params=["sqlite", "mariadb"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    storage = tmp_path / "shared"
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    else:
        server: MariaDBServer = request.getfixturevalue("mariadb")
        uri = server.fresh_database(f"ro_{uuid.uuid4().hex[:12]}")
    writer = NodeProcess(tmp_path / "w", ["--role", "rw", "--auto-flush-interval", "0.2"], meta_uri=uri,
                         storage=storage)
    readers = [
        NodeProcess(tmp_path / f"r{i}", ["--role", "ro", "--catalog-refresh-interval", "0.1"], meta_uri=uri,
                    storage=storage)
        for i in range(2)
    ]
    try:
        writer.start()
        for r in readers:
            r.start()
        yield Cluster(writer, readers)
    finally:
        for proc in [*readers, writer]:
            proc.stop()


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _count(stub: Any, name: str) -> int:
    reply = stub.CountCollection(milvus_pb2.CollectionName(collection_name=name))
    return int(reply.collection_row_count) if reply.status.error_code == 0 else -1


def _search(stub: Any, name: str, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    res = stub.Search(milvus_pb2.SearchParam(collection_name=name, topk=k, query_record_array=_rows(q)))
    assert res.status.error_code == 0, res.status.reason
    return np.array(res.ids).reshape(len(q), -1), np.array(res.distances).reshape(len(q), -1)


def _in_files(stub: Any, name: str, files: list[int], q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sp = milvus_pb2.SearchParam(collection_name=name, topk=k, query_record_array=_rows(q))
    res = stub.SearchInFiles(milvus_pb2.SearchInFilesParam(file_id_array=[str(f) for f in files], search_param=sp))
    assert res.status.error_code == 0, res.status.reason
    return np.array(res.ids).reshape(len(q), -1), np.array(res.distances).reshape(len(q), -1)


def test_readers_follow_the_writer(cluster: Cluster) -> None:
    w = cluster.writer.stub()
    readers = [r.stub() for r in cluster.readers]
    name = "shared"
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1, metric_type=1)
    assert w.CreateCollection(schema).error_code == 0
    def has(stub: Any) -> bool:
        return bool(stub.HasCollection(milvus_pb2.CollectionName(collection_name=name)).bool_reply)

    for r in readers:
        poll_for(lambda: has(r), 10, what="the collection to appear on a reader")  # noqa: B023

    rng = np.random.default_rng(9)
    base = rng.standard_normal((3000, DIM)).astype(np.float32)
    ids: list[int] = []
    for part in np.array_split(base, 3):  # three flushes: three segments
        ids += list(w.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(part)))
                    .vector_id_array)
        assert w.Flush(milvus_pb2.FlushParam(collection_name_array=[name])).error_code == 0
    # Data inserted through the writer becomes searchable on every reader (flush + catalog refresh).
    for r in readers:
        poll_for(lambda: _count(r, name) == 3000, 10, what="rows to reach a reader")  # noqa: B023
    q = base[:20]
    ref_ids, ref_dist = _search(w, name, q, 10)
    for r in readers:
        got_ids, got_dist = _search(r, name, q, 10)
        # Segments may differ in layout between snapshots (merges): distances agree to float rounding.
        assert np.array_equal(got_ids, ref_ids) and np.allclose(got_dist, ref_dist, rtol=1e-5, atol=1e-4)

    # Each reader searches its share of the segments; merged, the shares equal the writer's answer.
    segment_ids = _segment_ids(cluster, name)
    placement = Placement.of([p.address for p in cluster.readers], r=1)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for proc, stub in zip(cluster.readers, readers, strict=True):
        share = placement.share(proc.address, segment_ids)
        if share:
            parts.append(_in_files(stub, name, share, q, 10))
    merged_ids, merged_dist = _merge(parts, 10)
    assert np.array_equal(merged_ids, ref_ids) and np.allclose(merged_dist, ref_dist, rtol=1e-5, atol=1e-4)

    # Deletes disappear on the readers the same way.
    gone = [int(i) for i in ref_ids[:, 0]]
    assert w.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=name, id_array=gone)).error_code == 0
    assert w.Flush(milvus_pb2.FlushParam()).error_code == 0
    for r in readers:
        poll_for(lambda: _count(r, name) == 3000 - len(set(gone)), 10, what="deletes to reach a reader")  # noqa: B023
        got_ids, _ = _search(r, name, q, 10)
        assert not np.isin(got_ids, gone).any()

    # A reader refuses writes with a status naming its role.
    st = readers[0].Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(base[:1])))
    assert st.status.error_code == ErrorCode.PERMISSION_DENIED and "read-only (ro)" in st.status.reason
    st2 = readers[0].Flush(milvus_pb2.FlushParam())
    assert st2.error_code == ErrorCode.PERMISSION_DENIED
    st3 = readers[1].CreateCollection(schema)
    assert st3.error_code == ErrorCode.PERMISSION_DENIED

    # Dropping the collection on the writer removes it from the readers.
    assert w.DropCollection(milvus_pb2.CollectionName(collection_name=name)).error_code == 0
    for r in readers:
        poll_for(lambda: not has(r), 10, what="the drop to reach a reader")  # noqa: B023


def _segment_ids(cluster: Cluster, name: str) -> list[int]:
    """Numeric segment ids, read from the shared catalog as any member would."""
    from coordinator.catalog import Catalog

    uri = cluster.writer.meta_uri or ""
    catalog = Catalog(uri)
    try:
        snap = catalog.snapshot()
        coll = snap.collections[name]
        return [s.id for s in snap.segments_of(coll.id)]
    finally:
        catalog.close()


def _merge(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([p[0] for p in parts], axis=1)
    dist = np.concatenate([p[1] for p in parts], axis=1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(dist, order, axis=1)
