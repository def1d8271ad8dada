"""Create a collection, insert, index, search, read back, drop: the pymilvus 1.1 API with numpy.

    python client/examples/quickstart.py [HOST] [PORT]
"""

from __future__ import annotations

import sys

import numpy as np

from mishards_client import IndexType, MetricType, Milvus


def main(host: str = "127.0.0.1", port: str = "19530") -> None:
    rng = np.random.default_rng(0)
    vectors = rng.random((2000, 64), dtype=np.float32)
    with Milvus(host, port, timeout=60) as client:
        print(client.server_version())
        client.drop_collection("quickstart")
        status = client.create_collection({"collection_name": "quickstart", "dimension": 64,
                                           "metric_type": MetricType.L2})
        assert status.OK(), status
        status, ids = client.insert("quickstart", vectors)
        assert status.OK(), status
        client.flush(["quickstart"])
        print(client.count_entities("quickstart"))
        client.create_index("quickstart", IndexType.IVF_FLAT, {"nlist": 64})
        status, result = client.search("quickstart", 5, vectors[:3], params={"nprobe": 8})
        print(status, result.ids, result.distances, sep="\n")
        status, rows = client.get_entity_by_id("quickstart", ids[:2])
        assert np.array_equal(np.array(rows, dtype=np.float32), vectors[:2])
        client.drop_collection("quickstart")


if __name__ == "__main__":
    main(*sys.argv[1:3])
