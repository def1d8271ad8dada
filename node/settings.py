"""The node's settings: defaults < YAML config file < values kept by Cmd set_config < environment
(MISHARDS_NODE_*) < command line."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from coordinator.auth.model import ANONYMOUS_ROLES
from coordinator.lifecycle import coerce_setting, settings_sources
from coordinator.limits import cpu_count
from coordinator.sizes import MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, parse_size
from coordinator.tls import ClusterTls, EdgeTls, check_tls_files, cluster_tls, edge_tls, listening_tls
from coordinator.workers import own_ports
from node import config_keys, config_store

ROLES = ("standalone", "rw", "ro")
ENV_PREFIX = "MISHARDS_NODE_"
DEFAULT_HTTP_PORT = 19121  # Milvus 1.1's web server port


@dataclass(frozen=True, slots=True)
class NodeSettings:
    role: str = "standalone"
    host: str = "127.0.0.1"
    port: int = 19530
    storage_path: str = "./data"
    meta_uri: str = ""  # empty: SQLite file ``<storage_path>/meta.sqlite``
    version: str = "1.1.1"
    auto_flush_interval: float = 1.0  # seconds; 0 disables timed flushes
    cache_size: str = "4GB"
    # Bytes of segment files a warm-up (a read node's share, a preload) reads into the page cache beyond mapping
    # them (node/page_in.py): '' = cache_size, 0 = none (the first searches read the pages they touch)
    warm_read_limit: str = ""
    insert_buffer_size: str = "1GB"
    file_cleanup_timeout: float = 10.0  # seconds before retired segment files are removed
    catalog_refresh_interval: float = 0.2  # read-only nodes: seconds between catalog revision polls
    wal_file_size: str = "64MB"
    search_threads: int = 2  # segments searched in parallel per request
    index_build_threads: int = 1  # index builds running at once
    omp_threads: int = 1  # faiss / OpenMP threads per search
    grpc_workers: int = 32
    # worker processes (node/workers.py): 1 = this process serves; N > 1 = a parent runs N workers sharing the
    # gRPC port; 0 = the CPUs this process may use (affinity, cgroup quota). Role rw always runs one.
    workers: int = 1
    # the first of the workers' own ports (each worker also listens on one, which a proxy sends searches to):
    # worker_ports .. worker_ports + workers - 1; 0 = a free port each, picked at start
    worker_ports: int = 0
    # Admission of heavy requests (node/admission.py): memory that searches and inserts in flight may hold,
    # estimated from their fields ('' = a quarter of the machine's memory or cgroup limit); searches running
    # heavy searches (estimated at 64 MB or more) running at once (0 = the CPUs, at least 2); seconds a request
    # may wait in the queue before "busy".
    request_memory: str = ""
    max_searches: int = 0
    queue_timeout: float = 10.0
    grpc_max_message_size: str = "512MB"  # largest request on the wire (1.1's largest insert fits)
    metrics_port: int = 0  # Prometheus /metrics on this port (0: off, -1: any free port)
    # Milvus 1.1's REST API on this port: -2 = the role's default (19121 standalone, off for rw / ro members),
    # 0 = off, -1 = any free port (written to the ready file)
    http_port: int = -2
    otlp_endpoint: str = ""  # OpenTelemetry traces exported over OTLP/gRPC here, e.g. http://jaeger:4317 ('' = off)
    membership: str = ""  # static://..., etcd://HOST:PORT/PREFIX or k8s://NAMESPACE?selector=... ('' = none)
    advertise: str = ""  # HOST:PORT other members use to reach this node ('' = host:bound port)
    node_id: str = ""  # this node's id in membership and placement ('' = the advertised address)
    replication: int = 0  # replicas per segment across read-only nodes (0 = 2 when >= 2 readers, else 1)
    # writer election: '' = through etcd when membership is etcd, else none (an rw node writes at once);
    # 'catalog' = rw nodes campaign for a lease in the catalog (no etcd needed)
    election: str = ""
    election_ttl: float = 5.0  # etcd lease TTL of the writer election and of membership records
    # seconds during which a retried insert (the same batch with explicit ids, or the proxy's retry of an
    # auto-id batch) is answered instead of applied twice; the log keeps its files that long (0 = off)
    idempotency_window: float = 60.0
    # where values accepted by Cmd set_config are kept for the next start ('' = <storage_path>/node-config/
    # <node_id, else 'standalone', else role-port>.yaml); read at start above the config file
    set_config_file: str = ""
    # token authentication (coordinator.auth): the role of a call without a token: readwrite (today's behaviour;
    # while the catalog holds no user it also runs admin calls), readonly or none
    allow_anonymous: str = "readwrite"
    # Edge TLS on the gRPC and REST ports (coordinator/tls.py): certificate and key files ('' = plaintext);
    # with tls_client_ca, clients must present a certificate signed by that CA
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Cluster mTLS: this node's port requires a client certificate signed by cluster_tls_ca, and the node presents
    # cluster_tls_cert when it dials other nodes; cluster_tls_server_name: the name a dialed node's certificate
    # must carry ('' = the host of the address dialed). Not together with edge TLS.
    cluster_tls_cert: str = ""
    cluster_tls_key: str = ""
    cluster_tls_ca: str = ""
    cluster_tls_server_name: str = ""
    health_port: int = 0  # plaintext gRPC health service only (for probes that cannot do TLS) on this port (0: off)
    ready_file: str = ""  # when set, the bound address is written here once serving
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if not 0 <= self.port <= 65535 or not -1 <= self.metrics_port <= 65535:
            raise ValueError(f"port out of range: {self.port} / metrics {self.metrics_port}")
        if not -2 <= self.http_port <= 65535:
            raise ValueError(f"http_port out of range: {self.http_port}")
        if not 0 <= self.auto_flush_interval <= threading.TIMEOUT_MAX:  # NaN / inf would kill maintenance
            raise ValueError(f"auto_flush_interval must be >= 0 and <= {threading.TIMEOUT_MAX:.0f} seconds")
        if not 0 < self.catalog_refresh_interval <= 60:
            raise ValueError("catalog_refresh_interval must be within (0, 60] seconds")
        for name in ("cache_size", "insert_buffer_size", "wal_file_size", "grpc_max_message_size"):
            parse_size(getattr(self, name))
        if self.warm_read_limit:
            parse_size(self.warm_read_limit)
        if self.request_memory and parse_size(self.request_memory) <= 0:
            raise ValueError("request_memory must be a positive size ('' = sized from the machine)")
        if self.max_searches < 0 or not 0 <= self.queue_timeout <= 3600:
            raise ValueError("max_searches must be >= 0 and queue_timeout within [0, 3600] seconds")
        if not MIN_MESSAGE_BYTES <= parse_size(self.grpc_max_message_size) <= MAX_MESSAGE_BYTES:
            raise ValueError("grpc_max_message_size must be within 4MB and 2047MB (gRPC's limit is 2 GiB)")
        if not 0 <= self.idempotency_window <= 86400:
            raise ValueError("idempotency_window must be within [0, 86400] seconds")
        if self.allow_anonymous not in ANONYMOUS_ROLES:
            raise ValueError(f"allow_anonymous must be one of {', '.join(ANONYMOUS_ROLES)}, "
                             f"not {self.allow_anonymous!r}")
        if self.election not in ("", "catalog"):
            raise ValueError(f"election must be '' or 'catalog', not {self.election!r}")
        if self.replication < 0:
            raise ValueError("replication must be >= 0")
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0: one per usable CPU)")
        if not 0 <= self.worker_ports <= 65535:
            raise ValueError(f"worker_ports out of range: {self.worker_ports}")
        if self.workers > 1:  # the range is known: refuse a bad one now (workers 0: once the CPUs are counted)
            own_ports(self.worker_ports, self.workers, (self.port, self.rest_port, self.metrics_port, self.health_port))
        if self.role == "rw" and self.workers > 1:
            raise ValueError("role rw (the cluster's writer) runs as one process: workers must be 1 "
                             "(add read-only nodes, or run ro nodes with several workers)")
        if min(self.search_threads, self.omp_threads, self.grpc_workers, self.index_build_threads) < 1:
            raise ValueError("thread counts must be >= 1")
        if not -1 <= self.health_port <= 65535:
            raise ValueError(f"health_port out of range: {self.health_port}")
        listening_tls(self.edge_tls, self.cluster_tls)  # refuses incomplete or conflicting TLS settings

    @property
    def edge_tls(self) -> EdgeTls | None:
        return edge_tls(self.tls_cert, self.tls_key, self.tls_client_ca)

    @property
    def cluster_tls(self) -> ClusterTls | None:
        return cluster_tls(self.cluster_tls_cert, self.cluster_tls_key, self.cluster_tls_ca,
                           self.cluster_tls_server_name)

    @property
    def rest_port(self) -> int:
        """The REST API's port: 0 off, -1 any free port (``http_port`` with the role's default applied)."""
        if self.http_port == -2:
            return DEFAULT_HTTP_PORT if self.role == "standalone" else 0
        return self.http_port

    @property
    def storage(self) -> Path:
        return Path(self.storage_path)

    @property
    def catalog_uri(self) -> str:
        if self.meta_uri:
            return self.meta_uri
        return f"sqlite:///{(self.storage / 'meta.sqlite').resolve()}"

    @property
    def cache_bytes(self) -> int:
        return parse_size(self.cache_size)

    @property
    def warm_read_bytes(self) -> int:
        """Bytes of segment files one warm-up reads in (``warm_read_limit``, '' = the cache's capacity)."""
        return parse_size(self.warm_read_limit) if self.warm_read_limit else self.cache_bytes

    @property
    def insert_buffer_bytes(self) -> int:
        return parse_size(self.insert_buffer_size)

    @property
    def wal_file_bytes(self) -> int:
        return parse_size(self.wal_file_size)

    @property
    def grpc_max_message_bytes(self) -> int:
        return parse_size(self.grpc_max_message_size)

    def request_memory_bytes(self, machine_memory: int) -> int:
        """The admission budget: the setting, else a quarter of ``machine_memory`` (at least 256 MB)."""
        if self.request_memory:
            return parse_size(self.request_memory)
        return max(256 << 20, machine_memory // 4)

    def max_searches_for(self, cpus: int) -> int:
        """Heavy searches running at once: the setting, else ``cpus`` (at least 2)."""
        return self.max_searches or max(2, cpus)

    @property
    def max_queued(self) -> int:
        """Heavy requests that may wait for admission (they hold gRPC workers): half of ``grpc_workers``."""
        return max(1, self.grpc_workers // 2)


def _coerce(name: str, raw: Any) -> Any:
    return coerce_setting(NodeSettings, name, raw)


def _field_names() -> set[str]:
    return {f.name for f in fields(NodeSettings)}


def from_mapping(base: NodeSettings, values: Mapping[str, Any], source: str) -> NodeSettings:
    known = _field_names()
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        name = key.replace("-", "_").lower()
        if name not in known:
            raise ValueError(f"unknown setting {key!r} in {source}")
        if raw is None:
            continue
        changes[name] = _coerce(name, raw)
    return replace(base, **changes)


def load(config_file: str | None, env: Mapping[str, str], overrides: Mapping[str, Any]) -> NodeSettings:
    """Build the settings from every source, in increasing precedence: defaults, the config file, the values
    Cmd set_config kept (``set_config_file``), the environment, the command line."""
    sources = settings_sources(config_file, "node", env, ENV_PREFIX, _field_names())
    without_kept = NodeSettings()
    for source, values in sources:
        without_kept = from_mapping(without_kept, values, source)
    without_kept = from_mapping(without_kept, overrides, "command line")
    path = without_kept.set_config_file or config_store.default_path(
        without_kept.storage_path, without_kept.role, without_kept.port, without_kept.node_id)
    kept = config_keys.settings_changes(config_store.read(path), without_kept.role, cpu_count())
    settings = NodeSettings()
    for source, values in sources:
        if source == "environment" and kept:
            settings = from_mapping(settings, kept, path)
        settings = from_mapping(settings, values, source)
    settings = from_mapping(settings, overrides, "command line")
    check_tls_files(settings.edge_tls, settings.cluster_tls)
    return replace(settings, set_config_file=path)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


__all__ = ["ENV_PREFIX", "ROLES", "NodeSettings", "env_name", "load", "parse_size"]
