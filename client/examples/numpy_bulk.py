"""Load a large float32 array in batches from several threads sharing one client, with explicit ids (so a
retried batch is recognised by the server), then search in batches and keep the results as arrays.

    python client/examples/numpy_bulk.py [HOST] [PORT]
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mishards_client import Milvus

ROWS, DIM, BATCH = 200_000, 128, 10_000


def main(host: str = "127.0.0.1", port: str = "19530") -> None:
    data = np.random.default_rng(1).standard_normal((ROWS, DIM), dtype=np.float32)
    client = Milvus(host, port, pool_size=4, retries=5, timeout=120)
    client.drop_collection("bulk")
    client.create_collection({"collection_name": "bulk", "dimension": DIM})

    def load(start: int) -> int:
        stop = min(start + BATCH, ROWS)
        status, ids = client.insert("bulk", data[start:stop], ids=list(range(start, stop)))
        if not status.OK():
            raise RuntimeError(status)
        return len(ids)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = sum(pool.map(load, range(0, ROWS, BATCH)))
    print(f"{loaded} rows in {time.perf_counter() - started:.2f} s")
    client.flush(["bulk"])
    status, result = client.search("bulk", 10, data[:1000])
    ids, distances = result.ids, result.distances  # (1000, 10) int64 / float32
    print(status, ids.shape, float(distances[:, 0].max()))
    client.drop_collection("bulk")
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
