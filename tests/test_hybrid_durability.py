"""Scalar columns of hybrid collections through merges, kill -9 and replay, and on a read node sharing storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from coordinator.errors import ErrorCode
from milvus_wire import milvus_pb2
from mishards import hybrid_client as hc
from tests.support import hybrid
from tests.support import hybrid_rows as hr
from tests.support.nodeproc import NodeProcess
from tests.support.requests import SUCCESS, ok
from tests.support.waiting import poll_for


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def flush(api: Any, name: str) -> None:
    ok(api.Flush(milvus_pb2.FlushParam(collection_name_array=[name])))


def segment_names(api: Any, name: str) -> list[str]:
    info = json.loads(ok(api.ShowHybridCollectionInfo(cname(name))).json_info)
    return [s["name"] for p in info["partitions"] for s in (p["segments"] or [])]


def delete(api: Any, name: str, ids: list[int]) -> None:
    ok(api.DeleteEntitiesByID(milvus_pb2.HDeleteByIDParam(collection_name=name, id_array=ids)))


def test_merges_keep_attributes_aligned_with_their_rows(tmp_path: Path) -> None:
    with NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"]) as node:
        api = node.stub()
        ok(api.CreateHybridCollection(hybrid.mapping(name="merged")))
        schema = hr.describe(api, "merged")
        n = 120
        cols = hr.columns(schema, n, seed=11)
        vecs = hr.vectors(schema, n, seed=11)
        ids = np.arange(n, dtype=np.int64) * 3 + 5
        for part in np.array_split(np.arange(n), 4):  # four flushes: four small segments, merged in background
            hr.insert(api, schema, {f: c[part] for f, c in cols.items()}, vecs[part], ids=ids[part])
            flush(api, "merged")
        gone = ids[[0, 31, 62, 119]].tolist()
        delete(api, "merged", gone)
        flush(api, "merged")  # delete logs on the segments; the merge leaves those rows out
        poll_for(lambda: len(segment_names(api, "merged")) == 1, timeout=60, what="the small segments to merge")
        assert ok(api.CountHybridCollection(cname("merged"))).collection_row_count == n - len(gone)
        keep = ~np.isin(ids, gone)
        hr.assert_rows_read_back(api, "merged", schema, ids[keep], {f: c[keep] for f, c in cols.items()},
                                 vecs[keep])
        hr.assert_absent(api, "merged", gone)
        [segment] = segment_names(api, "merged")
        listed = ok(api.GetEntityIDs(milvus_pb2.HGetEntityIDsParam(collection_name="merged", segment_name=segment)))
        assert sorted(listed.entity_id_array) == sorted(ids[keep].tolist())
        files = sorted(p.name for p in (node.storage / "collections").glob(f"*/{segment}/*.npy"))
        assert files == sorted(["ids.npy", "vectors.npy", *(f"scalar.{i}.npy" for i in range(len(schema.scalars)))])


def test_acknowledged_entities_survive_kill_9(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"])
    with node:
        api = node.stub()
        ok(api.CreateHybridCollection(hybrid.mapping(name="durable")))
        ok(api.CreatePartition(milvus_pb2.PartitionParam(collection_name="durable", tag="p")))
        schema = hr.describe(api, "durable")
        n = 60
        cols = hr.columns(schema, n, seed=21)
        vecs = hr.vectors(schema, n, seed=21)
        ids = np.arange(100, 100 + n, dtype=np.int64)
        hr.insert(api, schema, {f: c[:20] for f, c in cols.items()}, vecs[:20], ids=ids[:20])
        flush(api, "durable")  # a flushed segment, then rows only in the log, a delete of both kinds, a partition
        hr.insert(api, schema, {f: c[20:40] for f, c in cols.items()}, vecs[20:40], ids=ids[20:40])
        hr.insert(api, schema, {f: c[40:] for f, c in cols.items()}, vecs[40:], ids=ids[40:], tag="p")
        delete(api, "durable", [100, 125])
        node.kill()
        node.start()
        api = node.stub()
        # A retry of an acknowledged batch (none of its rows deleted since), after the restart: answered with its
        # ids, not applied twice; the replayed log taught the new process its key, attributes included.
        again = hr.insert(api, schema, {f: c[40:] for f, c in cols.items()}, vecs[40:], ids=ids[40:], tag="p")
        assert again.tolist() == ids[40:].tolist()
        flush(api, "durable")
        assert ok(api.CountHybridCollection(cname("durable"))).collection_row_count == n - 2
        keep = ~np.isin(ids, [100, 125])
        hr.assert_rows_read_back(api, "durable", schema, ids[keep], {f: c[keep] for f, c in cols.items()},
                                 vecs[keep])
        hr.assert_absent(api, "durable", [100, 125])
        assert hr.describe(api, "durable") == schema


def test_a_read_node_serves_the_writers_entities(tmp_path: Path) -> None:
    storage = tmp_path / "shared"
    uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    writer = NodeProcess(tmp_path / "w", ["--role", "rw", "--auto-flush-interval", "0"], meta_uri=uri,
                         storage=storage)
    reader = NodeProcess(tmp_path / "r", ["--role", "ro", "--catalog-refresh-interval", "0.1"], meta_uri=uri,
                         storage=storage)
    with writer, reader:
        w, r = writer.stub(), reader.stub()
        ok(w.CreateHybridCollection(hybrid.mapping(name="shared", dim=8)))
        schema = hr.describe(w, "shared")
        cols = hr.columns(schema, 30, seed=31)
        vecs = hr.vectors(schema, 30, seed=31)
        ids = hr.insert(w, schema, cols, vecs)
        flush(w, "shared")
        poll_for(lambda: r.CountHybridCollection(cname("shared")).collection_row_count == 30, timeout=30,
                 what="the read node to see the flushed entities")
        assert hr.describe(r, "shared") == schema
        ok(r.PreloadHybridCollection(cname("shared")))
        hr.assert_rows_read_back(r, "shared", schema, ids, cols, vecs)
        refused = r.InsertEntity(hc.insert_param(schema, cols, vecs))
        assert refused.status.error_code == ErrorCode.PERMISSION_DENIED, refused.status
        for rpc in ("DropHybridCollection", "CreateHybridCollection"):
            request = hybrid.mapping(name="other") if rpc == "CreateHybridCollection" else cname("shared")
            assert getattr(r, rpc)(request).error_code == ErrorCode.PERMISSION_DENIED, rpc
        delete(w, "shared", ids[:3].tolist())
        flush(w, "shared")
        poll_for(lambda: r.CountHybridCollection(cname("shared")).collection_row_count == 27, timeout=30,
                 what="the read node to see the deletes")
        hr.assert_absent(r, "shared", ids[:3].tolist())
        hr.assert_rows_read_back(r, "shared", schema, ids[3:], {f: c[3:] for f, c in cols.items()}, vecs[3:])
        assert r.HasHybridCollection(cname("shared")).status.error_code == SUCCESS
