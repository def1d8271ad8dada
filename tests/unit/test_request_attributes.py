"""What a node's server span says a request is about."""

from __future__ import annotations

from coordinator import tracing as spans
from milvus_wire import milvus_pb2
from node.server import request_attributes


def test_hybrid_searches_name_their_collection() -> None:
    param = milvus_pb2.HSearchParam(collection_name="shop")
    assert request_attributes("HybridSearch", param) == {spans.COLLECTION: "shop"}
    in_segments = milvus_pb2.HSearchInSegmentsParam(segment_id_array=["1"], search_param=param)
    assert request_attributes("HybridSearchInSegments", in_segments) == {spans.COLLECTION: "shop"}
    assert request_attributes("HybridSearchInSegments", milvus_pb2.HSearchInSegmentsParam()) == {}
