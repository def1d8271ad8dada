"""Index lifecycle on a real node: CreateIndex blocks until built, background builds, restart, DropIndex."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from node.index_builds import BUILD_INDEX_THRESHOLD
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for

DIM = 16
IVF_FLAT = 2


def _rows(x: np.ndarray) -> list[Any]:
    return [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (32, DIM))
    return (centers[rng.integers(0, 32, n)] + rng.normal(0, 1, (n, DIM))).astype(np.float32)


def _info(stub: Any, name: str) -> dict[str, Any]:
    return dict(json.loads(stub.ShowCollectionInfo(milvus_pb2.CollectionName(collection_name=name)).json_info))


def _stats(stub: Any) -> dict[str, Any]:
    return dict(json.loads(stub.Cmd(milvus_pb2.Command(cmd="mishards_stats")).string_reply))


def _search(stub: Any, name: str, q: np.ndarray, k: int, params: dict[str, Any] | None) -> tuple[Any, np.ndarray]:
    extra = [milvus_pb2.KeyValuePair(key="params", value=json.dumps(params))] if params is not None else []
    res = stub.Search(milvus_pb2.SearchParam(collection_name=name, topk=k, query_record_array=_rows(q),
                                             extra_params=extra))
    ids = np.array(res.ids, dtype=np.int64).reshape(len(q), -1) if res.row_num else np.zeros((0, 0), np.int64)
    return res.status, ids


def _recall(got: np.ndarray, base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> float:
    d = ((q[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    truth = ids[np.argsort(d, axis=1)[:, :k]]
    return float(np.mean([len(set(g) & set(t)) / k for g, t in zip(got, truth, strict=True)]))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path / "n", ["--auto-flush-interval", "0.2", "--file-cleanup-timeout", "0.5"])
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_create_index_builds_searches_survives_restart_and_drops(node: NodeProcess) -> None:
    s = node.stub()
    name = "ivf"
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1, metric_type=1)
    assert s.CreateCollection(schema).error_code == 0
    base = _data(20000, 1)
    ids: list[int] = []
    for part in np.array_split(base, 4):
        ids += list(s.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(part)))
                    .vector_id_array)
    id_arr = np.array(ids)
    q = _data(50, 2)

    params = milvus_pb2.KeyValuePair(key="params", value=json.dumps({"nlist": 64}))
    st = s.CreateIndex(milvus_pb2.IndexParam(collection_name=name, index_type=IVF_FLAT, extra_params=[params]))
    assert st.error_code == 0, st.reason
    # CreateIndex returned only after the builds: the full segment is indexed now.
    assert _stats(s)["index_builds_done"] >= 1
    desc = s.DescribeIndex(milvus_pb2.CollectionName(collection_name=name))
    assert desc.index_type == IVF_FLAT and json.loads(desc.extra_params[0].value) == {"nlist": 64}
    segs = [seg for p in _info(s, name)["partitions"] for seg in p["segments"] or []]
    # Every segment big enough to index is indexed. A remainder under the threshold stays raw (it appears when
    # all rows arrive within one auto-flush: 16,384 rows fill a 1 MB segment, the other 3,616 stay exact); its
    # index name is the collection's type at the time it was flushed, as in Milvus.
    assert {seg["index_name"] for seg in segs if seg["row_count"] >= BUILD_INDEX_THRESHOLD} == {"IVFFLAT"}

    st, _ = _search(s, name, q, 10, None)
    assert st.error_code == 5 and st.reason == "Parameter list must contain: nprobe"
    st, low = _search(s, name, q, 10, {"nprobe": 1})
    assert st.error_code == 0
    st, full = _search(s, name, q, 10, {"nprobe": 64})
    assert st.error_code == 0
    assert _recall(full, base, id_arr, q, 10) == 1.0  # every list probed: exact
    assert _recall(low, base, id_arr, q, 10) < 1.0  # one list: an approximation, so the index is used

    # Deleted rows never come back from the index either.
    gone = full[:, 0]
    assert s.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=name, id_array=gone.tolist())).error_code == 0
    assert s.Flush(milvus_pb2.FlushParam(collection_name_array=[name])).error_code == 0
    st, after = _search(s, name, q, 10, {"nprobe": 64})
    assert st.error_code == 0 and not np.isin(after, gone).any() and (after != -1).all()
    st, low_after = _search(s, name, q, 10, {"nprobe": 1})
    assert st.error_code == 0

    node.stop()
    node.start()
    s = node.stub()
    st, again = _search(s, name, q, 10, {"nprobe": 64})
    assert st.error_code == 0 and np.array_equal(again, after)
    st, low_again = _search(s, name, q, 10, {"nprobe": 1})
    assert st.error_code == 0 and np.array_equal(low_again, low_after)  # the same index file, reloaded

    assert s.DropIndex(milvus_pb2.CollectionName(collection_name=name)).error_code == 0
    desc = s.DescribeIndex(milvus_pb2.CollectionName(collection_name=name))
    assert desc.index_type == 1 and desc.extra_params[0].value == "{}"
    st, exact = _search(s, name, q, 10, None)
    assert st.error_code == 0
    keep = ~np.isin(id_arr, gone)
    assert _recall(exact, base[keep], id_arr[keep], q, 10) == 1.0
    # The dropped index files are removed after the cleanup timeout.
    poll_for(lambda: not list(node.storage.glob("collections/*/*/index-*")), 30, what="index files to go")


def test_segments_reaching_full_size_are_indexed_in_the_background(node: NodeProcess) -> None:
    s = node.stub()
    name = "bg"
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1, metric_type=2)
    assert s.CreateCollection(schema).error_code == 0
    params = milvus_pb2.KeyValuePair(key="params", value=json.dumps({"M": 8, "efConstruction": 40}))
    st = s.CreateIndex(milvus_pb2.IndexParam(collection_name=name, index_type=11, extra_params=[params]))
    assert st.error_code == 0, st.reason  # empty collection: returns at once
    before = _stats(s)["index_builds_done"]
    base = _data(17000, 3)  # 1 MB of 16-d float rows is 16,384 rows: one full segment
    s.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=_rows(base)))
    poll_for(lambda: _stats(s)["index_builds_done"] > before, 60, what="a background index build")
    st, got = _search(s, name, _data(5, 4), 10, {"ef": 64})
    assert st.error_code == 0 and got.shape == (5, 10)
    st, _ = _search(s, name, _data(5, 4), 10, {"ef": 5})
    assert st.error_code == 5 and "Invalid ef value: 5" in st.reason
