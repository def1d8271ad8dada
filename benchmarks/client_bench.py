"""mishards-client against pymilvus 1.1.2 on the same node, in one run: insert rate and search latency.

    flock /tmp/mishards-bench.lock .venv/bin/python -m benchmarks.client_bench [--rows 50000] [--dim 128]

Starts one node, then runs each client in its own process (pymilvus 1.1.2 with the pure-Python protobuf
runtime, as it has to run on current Pythons; mishards-client with the default upb runtime): create a
collection, insert ``--rows`` float32 vectors with explicit ids in batches of ``--batch`` (pymilvus gets
Python lists, built before the clock starts, as its users pass them; mishards-client the numpy array),
flush, then ``--nq1`` searches of one query (latency median / p99) and ``--batches`` searches of 100 queries
(top 10, FLAT). Prints a table and the ratios mishards-client / pymilvus.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def run_client(kind: str, host: str, port: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    base = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    queries = rng.standard_normal((100, args.dim)).astype(np.float32)
    if kind == "pymilvus":
        from milvus import MetricType, Milvus  # type: ignore[import-untyped]
    else:
        from mishards_client import MetricType, Milvus
    client = Milvus(host=host, port=str(port))
    name = f"bench_{kind}"
    client.drop_collection(name)
    status = client.create_collection({"collection_name": name, "dimension": args.dim, "index_file_size": 1024,
                                       "metric_type": MetricType.L2})
    assert status.OK(), status
    spans = [(a, min(a + args.batch, args.rows)) for a in range(0, args.rows, args.batch)]
    if kind == "pymilvus":
        batches: list[tuple[Any, list[int]]] = [(base[a:b].tolist(), list(range(a, b))) for a, b in spans]
        q1: list[Any] = [queries[i:i + 1].tolist() for i in range(100)]
        q100: Any = queries.tolist()
    else:
        batches = [(base[a:b], list(range(a, b))) for a, b in spans]
        q1 = [queries[i:i + 1] for i in range(100)]
        q100 = queries
    started = time.perf_counter()
    for rows, ids in batches:
        status, got = client.insert(name, rows, ids=ids)
        assert status.OK() and len(got) == len(ids), status
    insert_s = time.perf_counter() - started
    assert client.flush([name]).OK()
    for q in q1[:5]:
        client.search(name, 10, q)
    lat = []
    for i in range(args.nq1):
        t = time.perf_counter()
        status, _ = client.search(name, 10, q1[i % 100])
        lat.append(time.perf_counter() - t)
        assert status.OK(), status
    batch_lat = []
    for _ in range(args.batches):
        t = time.perf_counter()
        status, result = client.search(name, 10, q100)
        batch_lat.append(time.perf_counter() - t)
        assert status.OK() and len(result) == 100, status
    client.drop_collection(name)
    lat.sort()
    return {"client": kind, "insert_rows_per_s": args.rows / insert_s,
            "nq1_median_ms": statistics.median(lat) * 1e3, "nq1_p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
            "nq100_median_ms": statistics.median(batch_lat) * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--nq1", type=int, default=300)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--client", choices=["pymilvus", "mishards"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        host, _, port = args.address.rpartition(":")
        print(json.dumps(run_client(args.client, host, int(port), args)))
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.support.nodeproc import NodeProcess

    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        node = NodeProcess(Path(tmp), ["--auto-flush-interval", "0"]).start()
        try:
            results = {}
            for kind in ("pymilvus", "mishards"):
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                if kind == "pymilvus":
                    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
                cmd = [sys.executable, "-m", "benchmarks.client_bench", "--client", kind, "--address", node.address,
                       "--rows", str(args.rows), "--dim", str(args.dim), "--batch", str(args.batch),
                       "--nq1", str(args.nq1), "--batches", str(args.batches)]
                out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            node.stop()
    print(f"{args.rows} x {args.dim} float32, batches of {args.batch}, top 10, FLAT, one node on loopback")
    print(f"{'client':<16}{'insert rows/s':>16}{'nq=1 median ms':>16}{'nq=1 p99 ms':>14}{'nq=100 median ms':>18}")
    for kind, r in results.items():
        print(f"{kind:<16}{r['insert_rows_per_s']:>16,.0f}{r['nq1_median_ms']:>16.2f}{r['nq1_p99_ms']:>14.2f}"
              f"{r['nq100_median_ms']:>18.2f}")
    p, m = results["pymilvus"], results["mishards"]
    print(f"ratios mishards-client / pymilvus: insert rate {m['insert_rows_per_s'] / p['insert_rows_per_s']:.2f}x, "
          f"nq=1 latency {m['nq1_median_ms'] / p['nq1_median_ms']:.2f}x, "
          f"nq=100 latency {m['nq100_median_ms'] / p['nq100_median_ms']:.2f}x")
    insert_ratio = m["insert_rows_per_s"] / p["insert_rows_per_s"]
    nq1_ratio = m["nq1_median_ms"] / p["nq1_median_ms"]
    print(f"target insert rate >= 3x pymilvus': {insert_ratio:.2f}x {'PASS' if insert_ratio >= 3 else 'MISS'}")
    print(f"target nq=1 latency no worse than pymilvus': {nq1_ratio:.2f}x {'PASS' if nq1_ratio <= 1 else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
