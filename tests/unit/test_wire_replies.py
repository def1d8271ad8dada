"""Replies built directly in the wire format are byte-identical to protobuf's own encoding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.topk import TopK
from coordinator.wire import VARINT_BLOCK, encode_topk, varints
from milvus_wire import milvus_pb2, status_pb2
from node.convert import topk_result, vector_ids, vectors_data

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(INT64, min_size=1, max_size=60), st.integers(min_value=1, max_value=4))
def test_topk_reply_matches_protobuf(ids: list[int], nq: int) -> None:
    k = len(ids)
    ids_arr = np.array([ids] * nq, dtype=np.int64)
    dist = np.linspace(-3.5, 7.25, nq * k, dtype=np.float32).reshape(nq, k)
    reference = milvus_pb2.TopKQueryResult(status=status_pb2.Status(reason="OK"), row_num=nq,
                                           ids=ids_arr.ravel().tolist(), distances=dist.ravel().tolist())
    encoded = topk_result(TopK(ids_arr, dist))
    assert encoded == reference.SerializeToString()
    assert milvus_pb2.TopKQueryResult.FromString(encoded).HasField("status")


def test_varints_edges_and_empty_results() -> None:
    edges = np.array([0, 1, 127, 128, 16383, 16384, -1, 2**63 - 1, -(2**63)], dtype=np.int64)
    parsed = milvus_pb2.TopKQueryResult.FromString(b"\x1a" + bytes([len(varints(edges))]) + varints(edges))
    assert list(parsed.ids) == edges.tolist()
    assert varints(np.zeros(0, dtype=np.int64)) == b""
    empty = milvus_pb2.TopKQueryResult.FromString(topk_result(TopK.empty(3, 0, False)))
    assert empty.row_num == 0 and empty.status.error_code == 0 and len(empty.ids) == 0
    assert empty.HasField("status"), "an empty result still sends its status (clients may read absent as null)"
    no_queries = milvus_pb2.TopKQueryResult.FromString(topk_result(TopK.empty(0, 5, False)))
    assert no_queries.HasField("status") and no_queries.row_num == 0


def test_a_topk_reply_over_several_varint_blocks_matches_protobuf() -> None:
    """Ids are encoded a block at a time (bounded temporaries): the blocks join up exactly."""
    rng = np.random.default_rng(3)
    nq, k = 3, VARINT_BLOCK // 2 + 7  # 1.5 blocks and a remainder
    ids = rng.integers(-(2**63), 2**63 - 1, size=(nq, k), dtype=np.int64)
    ids[:, ::5] = -1
    ids[:, 1::7] = rng.integers(0, 300, size=ids[:, 1::7].shape)
    dist = rng.random((nq, k), dtype=np.float32)
    reference = milvus_pb2.TopKQueryResult(status=status_pb2.Status(reason="OK"), row_num=nq, ids=ids.ravel(),
                                           distances=dist.ravel())
    assert encode_topk(TopK(ids, dist)) == reference.SerializeToString()
    packed = milvus_pb2.TopKQueryResult(ids=ids.ravel()).SerializeToString()
    assert packed.endswith(varints(ids)) and len(packed) - len(varints(ids)) <= 6  # tag and length before it


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(INT64, max_size=80))
def test_vector_ids_reply_matches_protobuf(ids: list[int]) -> None:
    reference = milvus_pb2.VectorIds(status=status_pb2.Status(reason="OK"), vector_id_array=ids)
    assert vector_ids(np.array(ids, dtype=np.int64)) == reference.SerializeToString()


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.booleans(), max_size=12), st.integers(min_value=1, max_value=5), st.booleans())
def test_vectors_data_reply_matches_protobuf(present: list[bool], width: int, binary: bool) -> None:
    rng = np.random.default_rng(len(present) * 10 + width)
    found: list[np.ndarray | None] = []
    records = []
    for here in present:
        if not here:
            found.append(None)
            records.append(milvus_pb2.RowRecord())
        elif binary:
            v = rng.integers(0, 256, width, dtype=np.uint8)
            found.append(v)
            records.append(milvus_pb2.RowRecord(binary_data=v.tobytes()))
        else:
            f = rng.standard_normal(width).astype(np.float32)
            found.append(f)
            records.append(milvus_pb2.RowRecord(float_data=f.tolist()))
    reference = milvus_pb2.VectorsData(status=status_pb2.Status(reason="OK"), vectors_data=records)
    assert vectors_data(found, binary) == reference.SerializeToString()
