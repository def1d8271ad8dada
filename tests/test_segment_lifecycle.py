"""Background upkeep on a real node: small segments merge, retired files are collected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _segments(stub: Any, name: str) -> list[dict[str, Any]]:
    info = json.loads(stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=name)).json_info)
    return [seg for part in info["partitions"] for seg in (part["segments"] or [])]


def _segment_dirs(storage: Path) -> list[Path]:
    return [p for p in (storage / "collections").glob("*/*") if p.is_dir()]


def test_small_segments_merge_and_retired_files_are_removed(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0.2", "--file-cleanup-timeout", "0.5"])
    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    with node:
        s = node.stub()
        schema = milvus_pb2.CollectionSchema(collection_name="m", dimension=8, index_file_size=1, metric_type=1)
        assert s.CreateCollection(schema).error_code == 0
        ids: list[int] = []
        for part in np.array_split(x, 5):
            ids += list(s.Insert(milvus_pb2.InsertParam(collection_name="m", row_record_array=_rows(part)))
                        .vector_id_array)
            assert s.Flush(milvus_pb2.FlushParam(collection_name_array=["m"])).error_code == 0
        s.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name="m", id_array=ids[:50]))
        assert s.Flush(milvus_pb2.FlushParam()).error_code == 0

        # Five flushed batches become one segment holding the 450 live rows.
        poll_for(lambda: len(_segments(s, "m")) == 1, 30, what="segments to merge")
        [seg] = _segments(s, "m")
        assert seg["row_count"] == 450
        count = s.CountCollection(milvus_pb2.CollectionName(collection_name="m")).collection_row_count
        assert count == 450
        got = s.GetVectorIDs(milvus_pb2.GetVectorIDsParam(collection_name="m", segment_name=seg["name"]))
        assert sorted(got.vector_id_array) == sorted(ids[50:])

        # The merged-away folders disappear after the cleanup timeout.
        poll_for(lambda: len(_segment_dirs(node.storage)) == 1, 30, what="retired segment folders to go")
        res = s.Search(milvus_pb2.SearchParam(collection_name="m", topk=1, query_record_array=_rows(x[50:60])))
        assert list(res.ids) == ids[50:60]

        # Dropping the collection removes its folder as well.
        assert s.DropCollection(milvus_pb2.CollectionName(collection_name="m")).error_code == 0
        poll_for(lambda: not list((node.storage / "collections").iterdir()), 30, what="collection folder to go")
