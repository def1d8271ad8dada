"""A stand-in for the REST layer's backend (a node's servicer or the proxy's forwarder) in tests."""

from __future__ import annotations

from milvus_wire import milvus_pb2, status_pb2, wire_fastpath_pb2


class FakeBackend:
    """Records the calls; Insert answers one id per row, DescribeCollection a float or binary schema."""

    def __init__(self, binary: bool | None = False, metric: int = 1) -> None:
        self.binary = binary
        self.metric = metric
        self.calls: list[tuple[str, bytes]] = []

    def known_binary(self, collection: str) -> bool | None:
        return self.binary

    def call(self, method: str, request: bytes) -> bytes:
        self.calls.append((method, request))
        ok = status_pb2.Status(reason="OK")
        if method == "DescribeCollection":
            return bytes(milvus_pb2.CollectionSchema(status=ok, collection_name="c", dimension=4,
                                                     metric_type=self.metric).SerializeToString())
        assert method == "Insert", method
        rows = len(wire_fastpath_pb2.InsertParamRaw.FromString(request).row_record_array)
        return bytes(milvus_pb2.VectorIds(status=ok, vector_id_array=range(rows)).SerializeToString())
