"""What the harness may ask a process from outside: its Prometheus /metrics and its gRPC health status."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "milvus.grpc.MilvusService"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition, keyed by ``name{labels}`` exactly as written."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        try:
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        except ValueError:
            continue
    return samples


def scrape(port: int, timeout: float = 1.0) -> dict[str, float] | None:
    """The samples of ``http://127.0.0.1:<port>/metrics``, or None when it does not answer."""
    if port <= 0:
        return None
    try:
        with _DIRECT.open(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
            return parse_metrics(resp.read().decode("utf-8", "replace"))
    except (OSError, urllib.error.URLError, ValueError):
        return None


def is_writable(metrics_port: int) -> bool:
    """True when a node's /metrics says it holds the writer epoch (``mishards_node_writable 1``)."""
    samples = scrape(metrics_port)
    return bool(samples and samples.get("mishards_node_writable", 0.0) >= 1.0)


def serving(address: str, service: str = SERVICE, timeout: float = 1.0) -> bool:
    """True when the gRPC health check of ``service`` answers SERVING (the proxy reports only ``""``)."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
