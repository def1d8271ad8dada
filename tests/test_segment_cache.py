"""The segment cache: bounded in bytes, LRU, filled by Preload and emptied by Release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _stats(stub: Any) -> dict[str, Any]:
    return dict(json.loads(stub.Cmd(milvus_pb2.Command(cmd="mishards_stats")).string_reply))


def _cmd(stub: Any, text: str) -> str:
    reply = stub.Cmd(milvus_pb2.Command(cmd=text))
    assert reply.status.error_code == 0, reply.status.reason
    return str(reply.string_reply)


def test_preload_release_and_a_byte_bounded_lru(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0"])
    with node:
        s = node.stub()
        coll = milvus_pb2.CollectionName(collection_name="c")
        schema = milvus_pb2.CollectionSchema(collection_name="c", dimension=64, index_file_size=1024, metric_type=1)
        assert s.CreateCollection(schema).error_code == 0
        rng = np.random.default_rng(1)
        # Four segments of 2,000 rows x 64 floats (~0.5 MB each), each in a partition of its own so that no
        # background merge (which works within a partition) joins them before the preload counts them.
        for i in range(4):
            tag = f"p{i}"
            assert s.CreatePartition(milvus_pb2.PartitionParam(collection_name="c", tag=tag)).error_code == 0
            s.Insert(milvus_pb2.InsertParam(collection_name="c", partition_tag=tag, row_record_array=_rows(
                rng.standard_normal((2000, 64)).astype(np.float32))))
            assert s.Flush(milvus_pb2.FlushParam()).error_code == 0
        assert _stats(s)["cache_segments"] == 0

        assert s.PreloadCollection(milvus_pb2.PreloadCollectionParam(collection_name="c")).error_code == 0
        info = _stats(s)
        assert info["cache_segments"] == 4 and info["cache_used_bytes"] > 4 * 2000 * 64 * 4
        query = milvus_pb2.SearchParam(collection_name="c", topk=5, query_record_array=_rows(
            rng.standard_normal((2, 64)).astype(np.float32)))
        assert s.Search(query).status.error_code == 0
        hits = _stats(s)["cache_hits"]
        assert hits >= 4  # the search found every segment loaded

        assert s.ReleaseCollection(milvus_pb2.PreloadCollectionParam(collection_name="c")).error_code == 0
        assert _stats(s)["cache_segments"] == 0 and _stats(s)["cache_used_bytes"] == 0

        # Room for about two segments: searches keep the cache within its bound by evicting.
        _cmd(s, "set_config cache.cache_size 1200KB")
        assert _cmd(s, "get_config cache.cache_size") == "1200KB"
        for _ in range(3):
            assert s.Search(query).status.error_code == 0
        info = _stats(s)
        assert info["cache_evictions"] > 0
        assert info["cache_used_bytes"] <= 1200 * 1024
        assert s.CountCollection(coll).collection_row_count == 8000
