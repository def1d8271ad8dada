"""Replies built directly in the wire format are byte-identical to protobuf's own encoding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.topk import TopK
from coordinator.wire import varints
from milvus_wire import milvus_pb2
from node.convert import topk_result

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(INT64, min_size=1, max_size=60), st.integers(min_value=1, max_value=4))
def test_topk_reply_matches_protobuf(ids: list[int], nq: int) -> None:
    k = len(ids)
    ids_arr = np.array([ids] * nq, dtype=np.int64)
    dist = np.linspace(-3.5, 7.25, nq * k, dtype=np.float32).reshape(nq, k)
    reference = milvus_pb2.TopKQueryResult(row_num=nq, ids=ids_arr.ravel().tolist(), distances=dist.ravel().tolist())
    assert topk_result(TopK(ids_arr, dist)) == reference.SerializeToString()


def test_varints_edges_and_empty_results() -> None:
    edges = np.array([0, 1, 127, 128, 16383, 16384, -1, 2**63 - 1, -(2**63)], dtype=np.int64)
    parsed = milvus_pb2.TopKQueryResult.FromString(b"\x1a" + bytes([len(varints(edges))]) + varints(edges))
    assert list(parsed.ids) == edges.tolist()
    assert varints(np.zeros(0, dtype=np.int64)) == b""
    empty = milvus_pb2.TopKQueryResult.FromString(topk_result(TopK.empty(3, 0, False)))
    assert empty.row_num == 0 and empty.status.error_code == 0 and len(empty.ids) == 0
