"""``mishards bench FILE.hdf5 --uri HOST:PORT [...]``: ann-benchmarks-style recall/QPS runs against any Milvus 1.1
endpoint (see README, "Import and benchmark tools")."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mishards_tools.bench import BenchSettings, run_bench
from mishards_tools.bench_plan import parse_pairs
from mishards_tools.bench_report import plot, read_run, table, write_json
from mishards_tools.connection import Endpoint, ToolError
from mishards_tools.dataset_types import DatasetError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mishards bench",
        description="Load an ann-benchmarks .hdf5 file into a fresh collection, build each index, sweep its "
                    "search parameter and measure recall@k and QPS (nq=1 with several client threads, and "
                    "batched). Prints a table, writes results.json and plot.png.")
    p.add_argument("file", type=Path)
    p.add_argument("--uri", default="127.0.0.1:19530", help="HOST:PORT of a node or proxy (default %(default)s)")
    p.add_argument("--index", default="IVF_FLAT,HNSW", help="indexes, comma separated (default %(default)s)")
    p.add_argument("--params", default="", help='swept values, e.g. "nprobe=1,8,32 ef=16,64 search_k=100,1000"')
    p.add_argument("--build", default="", help='build parameters, e.g. "nlist=256 M=16 efConstruction=100"')
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default %(default)s)")
    p.add_argument("--threads", default="1,4", help="client threads of the nq=1 runs (default %(default)s)")
    p.add_argument("--queries", type=int, default=1000, help="test queries used, at most (default %(default)s)")
    p.add_argument("--batch-nq", type=int, default=100, help="queries per batched call (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder (default %(default)s)")
    p.add_argument("--compare", type=Path, action="append", default=[],
                   help="another run's results.json to overlay on the plot (repeatable)")
    p.add_argument("--label", default="", help="this run's name in the plot (default: the endpoint)")
    p.add_argument("--collection", default="", help="collection name (default bench_<pid>_<time>)")
    p.add_argument("--keep", action="store_true", help="keep the collection afterwards")
    p.add_argument("--index-file-size", type=int, default=1024, help="of the collection, MB (%(default)s)")
    p.add_argument("--token", help="bearer token of an endpoint with authentication")
    p.add_argument("--tls", action="store_true", help="TLS with the system's CA certificates")
    p.add_argument("--tls-ca", type=Path, help="TLS, trusting this CA certificate (PEM)")
    p.add_argument("--timeout", type=float, help="deadline of each call, seconds")
    return p


def settings_of(args: argparse.Namespace) -> BenchSettings:
    try:
        threads = tuple(int(t) for t in args.threads.split(",") if t)
    except ValueError as exc:
        raise ToolError(f"--threads {args.threads!r}: expected numbers such as 1,4") from exc
    if not threads or min(threads) < 1 or args.k < 1 or args.queries < 1 or args.batch_nq < 1:
        raise ToolError("--threads, --k, --queries and --batch-nq must be positive")
    return BenchSettings(args.file, Endpoint(args.uri, args.token, bool(args.tls), args.tls_ca, args.timeout),
                         tuple(i for i in args.index.split(",") if i), parse_pairs(args.params, "--params"),
                         parse_pairs(args.build, "--build"), args.k, threads, args.queries, args.batch_nq,
                         args.collection, args.keep, args.label, args.index_file_size)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = settings_of(args)
        others = [read_run(path) for path in args.compare]
        run = run_bench(settings, sys.stderr)
        print(table(run))
        for other in others:
            print()
            print(table(other))
        json_path = write_json(run, args.out)
        png_path = plot([run, *others], args.out)
    except (ToolError, DatasetError) as exc:
        print(f"mishards bench: {exc}", file=sys.stderr)
        return 1
    print(f"\nwrote {json_path} and {png_path}")
    return 1 if run["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
