"""mishards-client's three transports against the same node, side by side: gRPC (``Milvus``), REST
(``Milvus(..., handler="HTTP")``) and asyncio (``AsyncMilvus``).

    flock /tmp/mishards-bench.lock .venv/bin/python -m benchmarks.client_transports_bench [--rows 20000] [--dim 128]

Starts one node with its REST port, then for each transport in turn, ``--repeats`` times: create a collection,
insert ``--rows`` float32 vectors with explicit ids in batches of ``--batch``, flush, ``--nq1`` searches of one
query (median latency) and one search of 100 queries (top 10, FLAT). Prints a table (medians over the repeats)
and each transport's ratios to gRPC. The transports alternate within each repeat, so a change of machine load
touches all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

Figures = dict[str, float]


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return (rng.standard_normal((args.rows, args.dim)).astype(np.float32),
            rng.standard_normal((100, args.dim)).astype(np.float32))


def run_sync(client: Any, name: str, args: argparse.Namespace) -> Figures:
    base, queries = _data(args)
    assert client.create_collection({"collection_name": name, "dimension": args.dim}).OK()
    started = time.perf_counter()
    for a in range(0, args.rows, args.batch):
        b = min(a + args.batch, args.rows)
        status, _ = client.insert(name, base[a:b], ids=list(range(a, b)))
        assert status.OK(), status
    insert_s = time.perf_counter() - started
    assert client.flush([name]).OK()
    latencies = []
    for i in range(args.nq1):
        started = time.perf_counter()
        status, _ = client.search(name, 10, queries[i % 100:i % 100 + 1])
        latencies.append(time.perf_counter() - started)
        assert status.OK(), status
    started = time.perf_counter()
    assert client.search(name, 10, queries)[0].OK()
    nq100 = time.perf_counter() - started
    assert client.drop_collection(name).OK()
    return {"insert_rows_s": args.rows / insert_s, "nq1_ms": statistics.median(latencies) * 1e3,
            "nq100_ms": nq100 * 1e3}


async def run_async(address: str, name: str, args: argparse.Namespace) -> Figures:
    from mishards_client.aio import AsyncMilvus

    base, queries = _data(args)
    async with AsyncMilvus(uri=f"tcp://{address}") as client:
        assert (await client.create_collection({"collection_name": name, "dimension": args.dim})).OK()
        started = time.perf_counter()
        for a in range(0, args.rows, args.batch):
            b = min(a + args.batch, args.rows)
            status, _ = await client.insert(name, base[a:b], ids=list(range(a, b)))
            assert status.OK(), status
        insert_s = time.perf_counter() - started
        assert (await client.flush([name])).OK()
        latencies = []
        for i in range(args.nq1):
            started = time.perf_counter()
            status, _ = await client.search(name, 10, queries[i % 100:i % 100 + 1])
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert (await client.search(name, 10, queries))[0].OK()
        nq100 = time.perf_counter() - started
        assert (await client.drop_collection(name)).OK()
    return {"insert_rows_s": args.rows / insert_s, "nq1_ms": statistics.median(latencies) * 1e3,
            "nq100_ms": nq100 * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--nq1", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from mishards_client import Milvus

    from tests.support.nodeproc import NodeProcess

    results: dict[str, list[Figures]] = {"grpc": [], "rest": [], "asyncio": []}
    with tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp), ["--auto-flush-interval", "0", "--metrics-port", "-1"], http=True).start()
        try:
            with Milvus(uri=f"tcp://{node.address}") as grpc_client, \
                    Milvus("127.0.0.1", node.http_port, handler="HTTP") as rest_client:
                for repeat in range(args.repeats):
                    results["grpc"].append(run_sync(grpc_client, f"tb_grpc_{repeat}", args))
                    results["rest"].append(run_sync(rest_client, f"tb_rest_{repeat}", args))
                    results["asyncio"].append(asyncio.run(run_async(node.address, f"tb_aio_{repeat}", args)))
        finally:
            node.stop()

    medians = {kind: {key: statistics.median(f[key] for f in runs) for key in runs[0]}
               for kind, runs in results.items()}
    print(f"{args.rows} x {args.dim} float32 rows in batches of {args.batch}, top 10 FLAT, "
          f"medians of {args.repeats} runs")
    print(f"{'transport':<10} {'insert rows/s':>14} {'nq=1 median ms':>15} {'nq=100 ms':>10}")
    for kind, m in medians.items():
        print(f"{kind:<10} {m['insert_rows_s']:>14,.0f} {m['nq1_ms']:>15.2f} {m['nq100_ms']:>10.1f}")
    g = medians["grpc"]
    for kind in ("rest", "asyncio"):
        m = medians[kind]
        print(f"{kind} / grpc: insert rate {m['insert_rows_s'] / g['insert_rows_s']:.2f}x, "
              f"nq=1 latency {m['nq1_ms'] / g['nq1_ms']:.2f}x, nq=100 latency {m['nq100_ms'] / g['nq100_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
