"""A hybrid collection: scalar columns beside the vectors, and a filtered search with the DSL helper.

    python client/examples/hybrid_search.py [HOST] [PORT]
"""

from __future__ import annotations

import sys

import numpy as np

from mishards_client import Milvus
from mishards_client import hybrid as h


def main(host: str = "127.0.0.1", port: str = "19530") -> None:
    rng = np.random.default_rng(2)
    n = 5000
    vectors = rng.standard_normal((n, 32), dtype=np.float32)
    columns = {"age": rng.integers(18, 90, n), "price": rng.uniform(0, 200, n), "member": rng.integers(0, 2, n)}
    with Milvus(host, port) as client:
        client.drop_hybrid_collection("shop")
        status = client.create_hybrid_collection("shop", [
            h.scalar_field("age", h.DataType.INT32), h.scalar_field("price", h.DataType.DOUBLE),
            h.scalar_field("member", h.DataType.BOOL), h.vector_field("embedding", 32)])
        assert status.OK(), status
        status, ids = client.insert_entities("shop", columns, vectors)
        assert status.OK(), status
        print(len(ids), "entities inserted")
        client.flush(["shop"])
        dsl = h.bool_query(must=[h.range_query("age", GTE=30, LT=40), h.term("member", [1]),
                                 h.vector("embedding", 5, vectors[:2])],
                           must_not=[h.range_query("price", GT=150)])
        status, result = client.hybrid_search("shop", dsl)
        print(status, result.ids if result is not None else None, sep="\n")
        status, entities = client.get_entities_by_id("shop", result.ids[0, :2].tolist() if result else [])
        for entity in entities:
            print({k: v for k, v in (entity or {}).items() if k != "embedding"})
        client.drop_hybrid_collection("shop")


if __name__ == "__main__":
    main(*sys.argv[1:3])
