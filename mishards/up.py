"""``mishards up``: an all-in-one local cluster on embedded defaults.

One writer and N read-only nodes (child processes) sharing a SQLite catalog and a storage folder, static
membership, and the proxy in front; logs in one folder. A child that dies is restarted with backoff, on the same
port and data (``coordinator/supervisor.py``), and the event is printed and logged (``logs/up.log``); only Ctrl-C
(or SIGTERM) stops everything, cleanly. The children never outlive ``mishards up``, even when it is killed.

Every child serves Prometheus ``/metrics`` on a free port of its own (``--no-metrics`` turns that off); the
ports are printed once everything serves and recorded in each child's ready file under ``<data>/run``.
``--otlp-endpoint`` turns tracing on in every child. ``--workers N`` runs each read node and the proxy as N
processes sharing their ports (the writer stays one).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from coordinator.lifecycle import write_ready_file
from coordinator.supervisor import Child, Supervisor
from coordinator.tls import edge_tls
from coordinator.tls_files import CLUSTER_NAME, ensure_cluster_files

log = logging.getLogger("mishards.up")  # also when run as __main__


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mishards up", description="Run a local cluster: proxy, writer, readers.")
    p.add_argument("--host", default="127.0.0.1", help="address every process listens on")
    p.add_argument("--port", type=int, default=19530, help="the proxy's port (0 picks a free one)")
    p.add_argument("--http-port", type=int, default=19121,
                   help="the proxy's Milvus 1.1 REST API port (default 19121; 0: off, -1: a free one)")
    p.add_argument("--data-dir", default="./mishards-data", help="catalog, storage and logs")
    p.add_argument("--readers", type=int, default=2, help="read-only nodes")
    p.add_argument("--workers", type=int, default=1,
                   help="processes per read node and for the proxy, sharing their ports (0: one per CPU)")
    p.add_argument("--allow-anonymous", choices=["readwrite", "readonly", "none"], default="readwrite",
                   help="role of a call without a token, on the proxy and every node (mishards user add ...)")
    p.add_argument("--tls-cert", help="edge TLS on the proxy's gRPC and REST ports: its certificate (PEM)")
    p.add_argument("--tls-key", help="edge TLS: the certificate's private key (PEM)")
    p.add_argument("--tls-client-ca", help="edge mTLS: clients must present a certificate signed by this CA")
    p.add_argument("--cluster-tls-dir",
                   help="cluster mTLS between the proxy and the nodes with ca.crt, tls.crt and tls.key of this folder "
                        "(made there, with a new CA, when the folder holds none of them)")
    p.add_argument("--ready-file", help="write the proxy address here once everything serves")
    p.add_argument("--metrics", action=argparse.BooleanOptionalAction, default=True,
                   help="every process serves Prometheus /metrics on a free port of its own (default: on)")
    p.add_argument("--otlp-endpoint", default="",
                   help="export OpenTelemetry traces of every process over OTLP/gRPC, e.g. http://127.0.0.1:4317")
    return p.parse_args(argv)


def tls_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The proxy's edge TLS flags, and the cluster mTLS flags of every process (``--cluster-tls-dir``)."""
    edge_tls(args.tls_cert or "", args.tls_key or "", args.tls_client_ca or "")  # refuses incomplete ones
    edge = [item for flag, value in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                                     ("--tls-client-ca", args.tls_client_ca)) if value
            for item in (flag, str(Path(value).resolve()))]
    if not args.cluster_tls_dir:
        return edge, []
    folder = Path(args.cluster_tls_dir).resolve()
    files, made = ensure_cluster_files(folder, (args.host,))
    cluster = ["--cluster-tls-cert", str(files.cert), "--cluster-tls-key", str(files.key), "--cluster-tls-ca",
               str(files.ca)]
    if made:  # the certificate names mishards-cluster whatever address the nodes are dialed at
        print(f"mishards up: cluster certificates (a new CA) generated in {folder}", flush=True)
        cluster += ["--cluster-tls-server-name", CLUSTER_NAME]
    return edge, cluster


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = Path(args.data_dir).resolve()
    logs = data / "logs"
    run = data / "run"
    for folder in (data, logs, run):
        folder.mkdir(parents=True, exist_ok=True)
    _log_to(logs / "up.log")
    meta = f"sqlite:///{data / 'meta.sqlite'}"
    ports = [_free_port(args.host) for _ in range(args.readers + 1)]
    addrs = [f"{args.host}:{p}" for p in ports]
    membership = "static://" + ",".join([f"{addrs[0]}=rw", *(f"{a}=ro" for a in addrs[1:])])
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def report(line: str) -> None:
        print(line, flush=True)
        log.info("%s", line)

    supervisor = Supervisor({**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, report=report)

    def spawn(name: str, module: str, extra: list[str]) -> Child:
        child = supervisor.add(name, module, extra, run / f"{name}.ready", logs / f"{name}.log")
        supervisor.start(child)
        supervisor.wait_ready(child)
        return child

    # Each child binds a free metrics port itself (-1) and reports it in its ready file: no port races.
    observe = [*(["--metrics-port", "-1"] if args.metrics else []),
               *(["--otlp-endpoint", args.otlp_endpoint] if args.otlp_endpoint else [])]
    workers = ["--workers", str(args.workers)] if args.workers != 1 else []
    access = ["--allow-anonymous", args.allow_anonymous] if args.allow_anonymous != "readwrite" else []
    try:
        edge, cluster = tls_args(args)
    except ValueError as exc:
        print(f"mishards up: {exc}", file=sys.stderr)
        return 2
    code = 0
    try:
        node_args = ["--host", args.host, "--storage-path", str(data / "storage"), "--meta-uri", meta,
                     "--membership", membership, *observe, *access, *cluster]
        spawn("writer", "node", ["--role", "rw", "--port", str(ports[0]), *node_args])
        for i in range(args.readers):
            spawn(f"reader-{i + 1}", "node", ["--role", "ro", "--port", str(ports[i + 1]), *workers, *node_args])
        proxy = spawn("proxy", "mishards", ["--host", args.host, "--port", str(args.port), "--membership",
                                            membership, "--meta-uri", meta, "--http-port", str(args.http_port),
                                            *workers, *observe, *access, *cluster, *edge])
        address = str(proxy.info["address"])
        http_port = int(str(proxy.info.get("http_port", 0)))
        # A restarted proxy comes back on the ports it got (clients keep their address).
        proxy.args[proxy.args.index("--port") + 1] = address.rpartition(":")[2]
        proxy.args[proxy.args.index("--http-port") + 1] = str(http_port)
        metrics_ports = {c.name: int(str(c.info.get("metrics_port", 0))) for c in supervisor.children}
        print(f"mishards up: proxy on {address} (writer {addrs[0]}, readers {', '.join(addrs[1:]) or 'none'}); "
              f"data in {data}, logs in {logs}. Ctrl-C stops.", flush=True)
        if http_port:
            scheme = "https" if edge else "http"
            print(f"mishards up: REST API {scheme}://{args.host}:{http_port} (Milvus 1.1 RESTful API; "
                  f"docs at {scheme}://{args.host}:{http_port}/docs)", flush=True)
        if args.metrics:
            print("mishards up: metrics " + ", ".join(f"{name} http://{args.host}:{port}/metrics"
                                                      for name, port in metrics_ports.items()), flush=True)
        if args.ready_file:
            write_ready_file(args.ready_file, address, metrics_ports=metrics_ports, http_port=http_port)
        while not stop.wait(0.2):
            supervisor.tend()  # a child that died is restarted (with backoff); only a signal stops everything
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"mishards up: {exc} (logs in {logs})", file=sys.stderr)
        code = 1
    finally:
        supervisor.stop()
        print("mishards up: stopped", flush=True)
    return code


def _log_to(path: Path) -> None:
    """Supervision events (children exiting, restarting) go to ``logs/up.log`` as well as to the terminal."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("mishards.up", "coordinator.supervisor"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
