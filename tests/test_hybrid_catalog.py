"""The catalog keeps a hybrid collection's schema, and a database created before that column existed is upgraded
in place (SQLite and MariaDB)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from coordinator.catalog import Catalog
from coordinator.catalog_schema import ADDED_COLUMNS, collections, make_engine, metadata, missing_columns
from coordinator.hybrid.schema import collection_schema, schema_to_json
from coordinator.model import MetricType
from milvus_wire import milvus_pb2
from tests.support import hybrid
from tests.support.nodeproc import NodeProcess


def _old_metadata() -> sa.MetaData:
    """The tables as they were before the added columns (same names, types and options)."""
    old = sa.MetaData()
    added = {(t.name, c) for t, c in ADDED_COLUMNS}
    for table in metadata.tables.values():
        columns = [c._copy() for c in table.columns if (table.name, c.name) not in added]
        sa.Table(table.name, old, *columns, **table.kwargs)
    return old


def _old_database(uri: str) -> None:
    """A catalog as an older version left it: its tables, the state row, and a plain collection."""
    engine = make_engine(uri)
    try:
        _old_metadata().create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO cluster_state (id, revision, writer_epoch, writer_id) "
                                 "VALUES (1, 3, 1, 'old')"))
            conn.execute(sa.text(
                "INSERT INTO collections (name, state, dimension, metric_type, index_file_size_mb, index_type, "
                "index_params, id_mode, created_us, flushed_lsn) VALUES ('old', 0, 8, 1, 1024, 1, '{}', 0, 1, 0)"))
            cid = conn.execute(sa.text("SELECT id FROM collections WHERE name = 'old'")).scalar_one()
            conn.execute(sa.text("INSERT INTO partitions (collection_id, tag, state, created_us) "
                                 f"VALUES ({cid}, '_default', 0, 1)"))
    finally:
        engine.dispose()


def _columns(uri: str) -> set[str]:
    engine = make_engine(uri)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns("collections")}
    finally:
        engine.dispose()


def test_missing_columns_is_decided_from_what_each_table_has() -> None:
    names = {c.name for c in collections.columns if c.name != "hybrid_schema"}
    assert missing_columns({"collections": names}) == [(collections, "hybrid_schema")]
    assert missing_columns({"collections": names | {"hybrid_schema"}}) == []
    assert missing_columns({}) == []  # a table not created yet gets every column from CREATE TABLE


def test_an_old_catalog_is_upgraded_in_place_and_keeps_its_collections(catalog_uri: str) -> None:
    _old_database(catalog_uri)
    assert "hybrid_schema" not in _columns(catalog_uri)
    # Two processes opening the old database at once: both succeed, the column is added once.
    catalogs = [Catalog(catalog_uri) for _ in range(2)]
    errors: list[BaseException] = []

    def open_one(cat: Catalog) -> None:
        try:
            cat.ensure_schema()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(c,)) for c in catalogs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert "hybrid_schema" in _columns(catalog_uri)
        cat = catalogs[0]
        cat.ensure_schema()  # again: nothing to do
        old = cat.snapshot().collections["old"]
        assert (old.dimension, old.hybrid_schema, old.is_hybrid) == (8, "", False)
        assert collection_schema(old) is None

        epoch = cat.claim_writer("new")
        schema = hybrid.schema(name="shop")
        text = schema_to_json(schema)
        cat.create_collection(epoch, "shop", schema.dimension, schema.metric, schema.index_file_size, text)
        cat.create_collection(epoch, "plain", 8, MetricType.IP, 16)
        snap = cat.snapshot()
        assert snap.collections["shop"].hybrid_schema == text
        assert collection_schema(snap.collections["shop"]) == schema
        assert snap.collections["plain"].hybrid_schema == ""

        # A process of the older version inserts rows without the column: they read as plain collections.
        engine = make_engine(catalog_uri)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO collections (name, state, dimension, metric_type, index_file_size_mb, index_type, "
                    "index_params, id_mode, created_us, flushed_lsn) VALUES ('older', 0, 4, 1, 16, 1, '{}', 0, 1, 0)"))
        finally:
            engine.dispose()
        assert cat.snapshot().collections["older"].hybrid_schema == ""
    finally:
        for c in catalogs:
            c.close()



def test_a_node_serves_an_upgraded_catalog(catalog_uri: str, tmp_path: Path) -> None:
    _old_database(catalog_uri)
    x = np.random.default_rng(3).standard_normal((20, 8)).astype(np.float32)
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"], meta_uri=catalog_uri) as node:
        stub = node.stub()
        assert stub.HasCollection(milvus_pb2.CollectionName(collection_name="old")).bool_reply
        reply = stub.Insert(milvus_pb2.InsertParam(
            collection_name="old", row_record_array=[milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]))
        assert reply.status.error_code == 0, reply.status.reason
        assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=["old"])).error_code == 0
        count = stub.CountCollection(milvus_pb2.CollectionName(collection_name="old"))
        assert count.collection_row_count == 20
        shop = hybrid.mapping(name="shop")
        assert stub.CreateHybridCollection(shop).error_code == 0
        described = stub.DescribeHybridCollection(milvus_pb2.CollectionName(collection_name="shop"))
        assert described.status.error_code == 0, described.status.reason
        assert [f.name for f in described.fields] == [f.name for f in shop.fields]
