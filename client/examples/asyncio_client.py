"""The same API as coroutines: many searches in flight at once from one event loop.

    python client/examples/asyncio_client.py [HOST] [PORT]
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from mishards_client.aio import AsyncMilvus


async def main(host: str = "127.0.0.1", port: str = "19530") -> None:
    vectors = np.random.default_rng(3).standard_normal((1000, 16), dtype=np.float32)
    async with AsyncMilvus(host, port) as client:
        await client.drop_collection("aio_example")
        await client.create_collection({"collection_name": "aio_example", "dimension": 16})
        await client.insert("aio_example", vectors)
        await client.flush(["aio_example"])
        replies = await asyncio.gather(*(client.search("aio_example", 3, vectors[i:i + 1]) for i in range(50)))
        print(sum(status.OK() for status, _ in replies), "searches answered")
        await client.drop_collection("aio_example")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
