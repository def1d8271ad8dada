"""``python -m mishards``: run the proxy."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coordinator.lifecycle import run_command
from coordinator.tls import add_tls_arguments
from coordinator.workers import take_spec
from mishards import settings as proxy_settings
from mishards import workers


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mishards proxy", description="Run the Mishards proxy.")
    p.add_argument("--config", help="YAML config file (keys as in ProxySettings, optionally under 'proxy:')")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (default 19530; 0 picks a free one)")
    p.add_argument("--membership", help="static://HOST:PORT=ROLE,..., etcd://HOST:PORT/PREFIX or k8s://NS?selector=")
    p.add_argument("--meta-uri", help="the cluster's catalog URI")
    p.add_argument("--version-string", dest="version", help="version answered to Cmd('version')")
    p.add_argument("--request-timeout", type=float, help="seconds for one forwarded call (0: none)")
    p.add_argument("--write-retry-timeout", type=float,
                   help="seconds a write that did not reach a writer is sent again, waiting for a new one (0: none)")
    p.add_argument("--subrequest-timeout", type=float,
                   help="seconds one read node may take for its part of a search (default 5; 0: request timeout)")
    p.add_argument("--hedge-after", type=float,
                   help="seconds before a slow sub-request is also sent to another replica (0: adaptive, <0: never)")
    p.add_argument("--query-of-death-ttl", type=float,
                   help="seconds a request that 2 read nodes died or timed out on stays refused (0: off)")
    p.add_argument("--grpc-workers", type=int, help="gRPC worker threads")
    p.add_argument("--workers", type=int,
                   help="proxy processes sharing the gRPC and REST ports (default 1; 0: one per usable CPU)")
    p.add_argument("--worker-ports", type=int,
                   help="with several workers: the first of their own ports, one each from here (default 0: free "
                        "ports picked at start)")
    p.add_argument("--grpc-max-message-size", help="largest client request the proxy takes (default 512MB)")
    p.add_argument("--allow-anonymous", choices=["readwrite", "readonly", "none"],
                   help="role of a call without a token (default readwrite: as without authentication)")
    p.add_argument("--replication", type=int, help="replicas per segment across read nodes (0: automatic)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port (0: off, -1: any free)")
    p.add_argument("--http-port", type=int, help="Milvus 1.1 REST API port (default 19121; 0: off, -1: any free)")
    p.add_argument("--otlp-endpoint", help="export OpenTelemetry traces over OTLP/gRPC to this URL ('' = off)")
    p.add_argument("--consistency", choices=["strong", "session"],
                   help="strong: each search checks the catalog revision first (default); session: a polled view")
    p.add_argument("--catalog-refresh-interval", type=float, help="seconds between polls of the catalog revision")
    add_tls_arguments(p)
    p.add_argument("--ready-file", help="write the bound address here once serving")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    spec, rest = take_spec(sys.argv[1:] if argv is None else argv)
    return run_command("mishards proxy", rest, parse_args, proxy_settings.load,
                       lambda settings: workers.run(settings, spec, rest))


if __name__ == "__main__":
    sys.exit(main())
