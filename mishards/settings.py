"""The proxy's settings: defaults < YAML config file < environment (MISHARDS_PROXY_*) < command line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from coordinator.auth.model import ANONYMOUS_ROLES
from coordinator.lifecycle import coerce_setting, settings_sources
from coordinator.sizes import MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, parse_size
from coordinator.tls import ClusterTls, EdgeTls, check_tls_files, cluster_tls, edge_tls
from coordinator.workers import own_ports

ENV_PREFIX = "MISHARDS_PROXY_"
CONSISTENCY = ("strong", "session")


@dataclass(frozen=True, slots=True)
class ProxySettings:
    host: str = "127.0.0.1"
    port: int = 19530
    membership: str = ""  # static://HOST:PORT=ROLE,..., etcd://HOST:PORT/PREFIX or k8s://NAMESPACE?selector=...
    meta_uri: str = ""  # the cluster's catalog (answers metadata reads while the writer is down)
    version: str = "1.1.1"  # answer to Cmd("version")
    request_timeout: float = 30.0  # seconds for one forwarded call (CreateIndex / Flush may take longer: 0 = none)
    replication: int = 0  # replicas per segment across read nodes, as the nodes use (0 = automatic)
    # strong: every search first checks the catalog revision (sees what any proxy flushed); session: searches use
    # the view polled every catalog_refresh_interval (sees this proxy's own changes at once, others' within it)
    consistency: str = "strong"
    catalog_refresh_interval: float = 0.2
    # seconds a write that did not reach a writer (or was refused by a deposed one), or a repeatable one whose
    # outcome is unknown, is sent again to the current writer, waiting for one to be elected (0: no retries)
    write_retry_timeout: float = 15.0
    # seconds one read node may take for its part of a search before its segments go to another replica
    # (0: the whole request_timeout)
    subrequest_timeout: float = 5.0
    # seconds before a slow sub-request's segments are also sent to another replica (hedged request); 0: adaptive
    # (the p95 of recent sub-requests, within [0.05 s, subrequest_timeout / 2]); negative: never hedge
    hedge_after: float = 0.0
    # seconds a request after which 2 read nodes died or timed out stays refused (query-of-death protection; 0: off)
    query_of_death_ttl: float = 120.0
    grpc_workers: int = 64
    # proxy processes sharing the gRPC and REST ports (SO_REUSEPORT; coordinator/worker_pool.py): 1 = this
    # process serves; 0 = one per CPU this process may use (affinity, cgroup quota)
    workers: int = 1
    worker_ports: int = 0  # the first of the workers' own ports (as the nodes'); 0 = a free port each
    grpc_max_message_size: str = "512MB"  # largest client request the proxy takes (as the nodes' setting)
    metrics_port: int = 0  # Prometheus /metrics on this port (0: off, -1: any free port)
    http_port: int = 19121  # Milvus 1.1's REST API on this port (0: off, -1: any free port)
    otlp_endpoint: str = ""  # OpenTelemetry traces exported over OTLP/gRPC here, e.g. http://jaeger:4317 ('' = off)
    # token authentication (coordinator.auth): the role of a call without a token: readwrite (today's behaviour;
    # while the catalog holds no user it also runs admin calls), readonly or none
    allow_anonymous: str = "readwrite"
    # Edge TLS on the gRPC and REST ports (coordinator/tls.py): certificate and key files ('' = plaintext);
    # with tls_client_ca, clients must present a certificate signed by that CA
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Cluster mTLS: the certificate the proxy presents to nodes, its key, the CA the nodes' certificates are
    # checked against, and the name they must carry ('' = the host of the address dialed)
    cluster_tls_cert: str = ""
    cluster_tls_key: str = ""
    cluster_tls_ca: str = ""
    cluster_tls_server_name: str = ""
    health_port: int = 0  # plaintext gRPC health service only (for probes that cannot do TLS) on this port (0: off)
    ready_file: str = ""
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535 or not -1 <= self.metrics_port <= 65535:
            raise ValueError(f"port out of range: {self.port} / metrics {self.metrics_port}")
        if not -1 <= self.http_port <= 65535:
            raise ValueError(f"http_port out of range: {self.http_port}")
        if not self.membership:
            raise ValueError("the proxy needs --membership (where are the nodes?)")
        if self.allow_anonymous not in ANONYMOUS_ROLES:
            raise ValueError(f"allow_anonymous must be one of {', '.join(ANONYMOUS_ROLES)}, "
                             f"not {self.allow_anonymous!r}")
        if self.consistency not in CONSISTENCY:
            raise ValueError(f"consistency must be one of {', '.join(CONSISTENCY)}, not {self.consistency!r}")
        if not 0 < self.catalog_refresh_interval <= 60:
            raise ValueError("catalog_refresh_interval must be within (0, 60] seconds")
        if self.subrequest_timeout < 0 or self.query_of_death_ttl < 0:
            raise ValueError("subrequest_timeout and query_of_death_ttl must be >= 0")
        if not 0 <= self.write_retry_timeout <= 3600:
            raise ValueError("write_retry_timeout must be within [0, 3600] seconds")
        if not MIN_MESSAGE_BYTES <= parse_size(self.grpc_max_message_size) <= MAX_MESSAGE_BYTES:
            raise ValueError("grpc_max_message_size must be within 4MB and 2047MB (gRPC's limit is 2 GiB)")
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0: one per usable CPU)")
        if not 0 <= self.worker_ports <= 65535:
            raise ValueError(f"worker_ports out of range: {self.worker_ports}")
        if self.workers > 1:  # the range is known: refuse a bad one now (workers 0: once the CPUs are counted)
            own_ports(self.worker_ports, self.workers, (self.port, self.http_port, self.metrics_port, self.health_port))
        if self.request_timeout < 0 or self.grpc_workers < 1:
            raise ValueError("request_timeout must be >= 0 and grpc_workers >= 1")
        if not -1 <= self.health_port <= 65535:
            raise ValueError(f"health_port out of range: {self.health_port}")
        edge_tls(self.tls_cert, self.tls_key, self.tls_client_ca)  # refuse incomplete TLS settings
        cluster_tls(self.cluster_tls_cert, self.cluster_tls_key, self.cluster_tls_ca, self.cluster_tls_server_name)

    @property
    def edge_tls(self) -> EdgeTls | None:
        return edge_tls(self.tls_cert, self.tls_key, self.tls_client_ca)

    @property
    def cluster_tls(self) -> ClusterTls | None:
        return cluster_tls(self.cluster_tls_cert, self.cluster_tls_key, self.cluster_tls_ca,
                           self.cluster_tls_server_name)


def _coerce(name: str, raw: Any) -> Any:
    return coerce_setting(ProxySettings, name, raw)


def load(config_file: str | None, env: Mapping[str, str], overrides: Mapping[str, Any]) -> ProxySettings:
    known = {f.name for f in fields(ProxySettings)}
    values: dict[str, Any] = {}
    for _source, found in settings_sources(config_file, "proxy", env, ENV_PREFIX, known):
        values.update(found)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown proxy settings: {', '.join(sorted(unknown))}")
    settings = ProxySettings(**{k: _coerce(k, v) for k, v in values.items()})
    check_tls_files(settings.edge_tls, settings.cluster_tls)
    return settings
