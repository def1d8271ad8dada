"""``python -m node``: run one node (roles standalone, rw, ro)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coordinator.lifecycle import run_command
from coordinator.tls import add_tls_arguments
from coordinator.workers import take_spec
from node import settings as node_settings
from node import workers


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mishards node", description="Run a Mishards node.")
    p.add_argument("--config", help="YAML config file (keys as in NodeSettings, optionally under 'node:')")
    p.add_argument("--role", choices=node_settings.ROLES)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (default 19530; 0 picks a free one)")
    p.add_argument("--storage-path", help="storage folder (default ./data)")
    p.add_argument("--meta-uri", help="catalog URI (default sqlite:///<storage>/meta.sqlite)")
    p.add_argument("--version-string", dest="version", help="version answered to Cmd('version')")
    p.add_argument("--auto-flush-interval", type=float, help="seconds between automatic flushes")
    p.add_argument("--cache-size", help="segment cache capacity, e.g. 4GB")
    p.add_argument("--warm-read-limit",
                   help="bytes of segment files a warm-up (share, preload) reads into memory, e.g. 8GB "
                        "(default: the cache size; 0: map only)")
    p.add_argument("--insert-buffer-size", help="insert buffer limit before a flush, e.g. 1GB")
    p.add_argument("--file-cleanup-timeout", type=float, help="seconds before retired files are deleted")
    p.add_argument("--catalog-refresh-interval", type=float,
                   help="read-only nodes: seconds between polls of the catalog revision (default 0.2)")
    p.add_argument("--search-threads", type=int, help="segments searched in parallel per request")
    p.add_argument("--omp-threads", type=int, help="faiss OpenMP threads")
    p.add_argument("--grpc-workers", type=int, help="gRPC worker threads")
    p.add_argument("--workers", type=int,
                   help="worker processes sharing the gRPC port (default 1; 0: one per usable CPU; ro and "
                        "standalone roles)")
    p.add_argument("--worker-ports", type=int,
                   help="with several workers: the first of their own ports, one each from here (default 0: free "
                        "ports picked at start)")
    p.add_argument("--request-memory",
                   help="memory heavy requests in flight may hold, e.g. 4GB (default: a quarter of the machine's)")
    p.add_argument("--max-searches", type=int,
                   help="heavy searches (estimated at 64MB or more) running at once (0: the CPUs, at least 2)")
    p.add_argument("--queue-timeout", type=float,
                   help="seconds a heavy request may wait for memory or a search slot before 'busy' (default 10)")
    p.add_argument("--grpc-max-message-size", help="largest request on the wire (default 512MB)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port (0: off, -1: any free)")
    p.add_argument("--http-port", type=int,
                   help="Milvus 1.1 REST API port (default 19121 standalone, off for rw/ro; 0: off, -1: any free)")
    p.add_argument("--otlp-endpoint", help="export OpenTelemetry traces over OTLP/gRPC to this URL ('' = off)")
    p.add_argument("--election", choices=["", "catalog"],
                   help="writer election: '' = through etcd with etcd membership; 'catalog' = a lease in the catalog")
    p.add_argument("--membership", help="static://HOST:PORT=ROLE,..., etcd://HOST:PORT/PREFIX or "
                   "k8s://NAMESPACE?selector=LABELS")
    p.add_argument("--advertise", help="HOST:PORT other members use to reach this node")
    p.add_argument("--node-id", help="this node's id in membership (default: the advertised address)")
    p.add_argument("--allow-anonymous", choices=["readwrite", "readonly", "none"],
                   help="role of a call without a token (default readwrite: as without authentication)")
    p.add_argument("--replication", type=int, help="replicas per segment across read-only nodes (0: automatic)")
    p.add_argument("--election-ttl", type=float, help="lease TTL of the writer election, etcd or catalog (seconds)")
    p.add_argument("--idempotency-window", type=float,
                   help="seconds during which a retried insert is answered instead of applied twice (0: off)")
    add_tls_arguments(p)
    p.add_argument("--ready-file", help="write the bound address here once serving")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    spec, rest = take_spec(sys.argv[1:] if argv is None else argv)
    return run_command("mishards node", rest, parse_args, node_settings.load,
                       lambda settings: workers.run(settings, spec, rest))


if __name__ == "__main__":
    sys.exit(main())
