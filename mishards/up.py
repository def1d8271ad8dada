"""``mishards up``: an all-in-one local cluster on embedded defaults.

One writer and N read-only nodes (child processes) sharing a SQLite catalog and a storage folder, static
membership, and the proxy in front; logs in one folder; Ctrl-C (or SIGTERM) stops everything cleanly.

Every child serves Prometheus ``/metrics`` on a free port of its own (``--no-metrics`` turns that off); the
ports are printed once everything serves and recorded in each child's ready file under ``<data>/run``.
``--otlp-endpoint`` turns tracing on in every child.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from coordinator.lifecycle import write_ready_file


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path, name: str, timeout: float = 120.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see its log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not become ready in {timeout:.0f}s")
        time.sleep(0.05)
    return dict(json.loads(ready.read_text()))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mishards up", description="Run a local cluster: proxy, writer, readers.")
    p.add_argument("--host", default="127.0.0.1", help="address every process listens on")
    p.add_argument("--port", type=int, default=19530, help="the proxy's port (0 picks a free one)")
    p.add_argument("--data-dir", default="./mishards-data", help="catalog, storage and logs")
    p.add_argument("--readers", type=int, default=2, help="read-only nodes")
    p.add_argument("--ready-file", help="write the proxy address here once everything serves")
    p.add_argument("--metrics", action=argparse.BooleanOptionalAction, default=True,
                   help="every process serves Prometheus /metrics on a free port of its own (default: on)")
    p.add_argument("--otlp-endpoint", default="",
                   help="export OpenTelemetry traces of every process over OTLP/gRPC, e.g. http://127.0.0.1:4317")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = Path(args.data_dir).resolve()
    logs = data / "logs"
    run = data / "run"
    for folder in (data, logs, run):
        folder.mkdir(parents=True, exist_ok=True)
    meta = f"sqlite:///{data / 'meta.sqlite'}"
    ports = [_free_port(args.host) for _ in range(args.readers + 1)]
    addrs = [f"{args.host}:{p}" for p in ports]
    membership = "static://" + ",".join([f"{addrs[0]}=rw", *(f"{a}=ro" for a in addrs[1:])])
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def spawn(name: str, module: str, extra: list[str]) -> dict[str, object]:
        ready = run / f"{name}.ready"
        ready.unlink(missing_ok=True)
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        proc = subprocess.Popen([sys.executable, "-m", module, *extra, "--ready-file", str(ready)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                                start_new_session=True)
        children.append((name, proc))
        return _wait_ready(proc, ready, name)

    # Each child binds a free metrics port itself (-1) and reports it in its ready file: no port races.
    observe = [*(["--metrics-port", "-1"] if args.metrics else []),
               *(["--otlp-endpoint", args.otlp_endpoint] if args.otlp_endpoint else [])]
    metrics_ports: dict[str, int] = {}
    code = 0
    try:
        node_args = ["--host", args.host, "--storage-path", str(data / "storage"), "--meta-uri", meta,
                     "--membership", membership, *observe]
        started = spawn("writer", "node", ["--role", "rw", "--port", str(ports[0]), *node_args])
        metrics_ports["writer"] = int(str(started.get("metrics_port", 0)))
        for i in range(args.readers):
            started = spawn(f"reader-{i + 1}", "node", ["--role", "ro", "--port", str(ports[i + 1]), *node_args])
            metrics_ports[f"reader-{i + 1}"] = int(str(started.get("metrics_port", 0)))
        info = spawn("proxy", "mishards", ["--host", args.host, "--port", str(args.port), "--membership", membership,
                                           "--meta-uri", meta, *observe])
        metrics_ports["proxy"] = int(str(info.get("metrics_port", 0)))
        address = str(info["address"])
        print(f"mishards up: proxy on {address} (writer {addrs[0]}, readers {', '.join(addrs[1:]) or 'none'}); "
              f"data in {data}, logs in {logs}. Ctrl-C stops.", flush=True)
        if args.metrics:
            print("mishards up: metrics " + ", ".join(f"{name} http://{args.host}:{port}/metrics"
                                                      for name, port in metrics_ports.items()), flush=True)
        if args.ready_file:
            write_ready_file(args.ready_file, address, metrics_ports=metrics_ports)
        while not stop.wait(0.5):
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"mishards up: {name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stop.set()
                    code = 1
    except (RuntimeError, TimeoutError) as exc:
        print(f"mishards up: {exc} (logs in {logs})", file=sys.stderr)
        code = 1
    finally:
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(children):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        print("mishards up: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
