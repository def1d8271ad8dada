"""Transport security: edge TLS (clients to a proxy or standalone node, optionally mutual) and cluster mTLS
(proxy to node, node to node, worker to primary).

- :class:`EdgeTls` / :class:`ClusterTls`: the settings, as values (files on disk, checked at start).
- :func:`server_credentials`: gRPC server credentials whose certificate, key and client CA are read again
  from disk when the files change (``grpc.dynamic_ssl_server_credentials``: gRPC asks on each new connection),
  so a certificate rotated on disk is served to the next connection without a restart.
- :class:`ClusterDialer`: channels to nodes with the cluster certificate as client certificate and the cluster
  CA as the only root; new channels (and channels replaced after the files change) use the files' current
  contents.
- :class:`ReloadingSSLContext` (``coordinator/tls_watch.py``, with :class:`PemFiles`, the files followed on
  disk): the REST server's ``ssl.SSLContext``, whose certificate chain is loaded again when the files change.
- :func:`is_internal_peer` / :func:`peer_name`: what a call's peer proved with its certificate.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from coordinator.tls_watch import CHECK_SECONDS, PemFiles, pair_valid

log = logging.getLogger(__name__)


class TlsConfigError(ValueError):
    """TLS settings that cannot work (a missing file, a certificate without its key, ...)."""


@dataclass(frozen=True, slots=True)
class EdgeTls:
    """TLS on the ports clients use: this server's certificate and key; with ``client_ca``, clients must
    present a certificate signed by it (mutual TLS at the edge)."""

    cert: str
    key: str
    client_ca: str = ""

    @property
    def mutual(self) -> bool:
        return bool(self.client_ca)


@dataclass(frozen=True, slots=True)
class ClusterTls:
    """Mutual TLS inside the cluster: the certificate presented both as a server (a node's port) and as a
    client (when dialing a node), its key, and the CA every peer's certificate must be signed by.
    ``server_name``: the name a node's certificate is checked against when dialing it ('' = the host of the
    address dialed; set it when nodes are dialed at addresses their certificates cannot name, such as pod IPs)."""

    cert: str
    key: str
    ca: str
    server_name: str = ""


def edge_tls(cert: str, key: str, client_ca: str = "") -> EdgeTls | None:
    """The edge TLS settings from their three values (None when off); refuses incomplete ones."""
    if not (cert or key or client_ca):
        return None
    if not (cert and key):
        raise TlsConfigError("edge TLS needs both --tls-cert and --tls-key (--tls-client-ca is optional)")
    return EdgeTls(cert, key, client_ca)


def cluster_tls(cert: str, key: str, ca: str, server_name: str = "") -> ClusterTls | None:
    """The cluster mTLS settings from their values (None when off); refuses incomplete ones."""
    if not (cert or key or ca):
        if server_name:
            raise TlsConfigError("--cluster-tls-server-name needs --cluster-tls-cert, --cluster-tls-key and "
                                 "--cluster-tls-ca")
        return None
    if not (cert and key and ca):
        raise TlsConfigError("cluster mTLS needs all of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca")
    return ClusterTls(cert, key, ca, server_name)


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """TLS to etcd: the CA its server certificate is checked against, and (for etcd's
    ``--client-cert-auth``) a client certificate and key; ``server_name``: the name etcd's certificate must
    carry ('' = the endpoint's host)."""

    ca: str
    cert: str = ""
    key: str = ""
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials of the files' contents now (read at each new connection to etcd)."""
        def read(path: str) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as fh:
                return fh.read()

        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))

    def channel_options(self) -> dict[str, str]:
        return {"grpc.ssl_target_name_override": self.server_name} if self.server_name else {}


def etcd_tls(ca: str, cert: str = "", key: str = "", server_name: str = "") -> EtcdTls | None:
    """The etcd TLS settings (None when off); refuses incomplete ones."""
    if not (ca or cert or key or server_name):
        return None
    if not ca:
        raise TlsConfigError("TLS to etcd needs tls_ca (the CA of etcd's certificate)")
    if bool(cert) != bool(key):
        raise TlsConfigError("TLS to etcd: tls_cert and tls_key go together")
    return EtcdTls(ca, cert, key, server_name)


@dataclass(frozen=True, slots=True)
class ServerTls:
    """What a listening port asks of TLS: certificate, key, the CA of client certificates ('' = none asked),
    and whether a client certificate is required."""

    cert: str
    key: str
    client_ca: str = ""
    require_client: bool = False


def listening_tls(edge: EdgeTls | None, cluster: ClusterTls | None) -> ServerTls | None:
    """The TLS of a node's (or proxy's) own ports: the edge's, or the cluster's (client certificate from the
    cluster CA required); never both (one port cannot tell a client from a peer), None for plaintext."""
    if edge is not None and cluster is not None:
        raise TlsConfigError(
            "edge TLS (--tls-cert) and cluster mTLS (--cluster-tls-cert) cannot both be set on a node: its port "
            "serves either clients (edge) or the proxies and other nodes of a cluster (cluster mTLS); "
            "put clients behind a proxy with edge TLS")
    if edge is not None:
        return ServerTls(edge.cert, edge.key, edge.client_ca, edge.mutual)
    if cluster is not None:
        return ServerTls(cluster.cert, cluster.key, cluster.ca, True)
    return None


def check_readable(paths: Sequence[str], what: str) -> None:
    """Refuse to start with a TLS file that cannot be read (a clear message instead of a handshake failure)."""
    for path in paths:
        if path and not os.access(path, os.R_OK):
            raise TlsConfigError(f"{what}: cannot read {path!r}")


def check_server_tls(tls: ServerTls) -> None:
    """The files exist, and the certificate and key belong together (checked with ``ssl`` at start)."""
    check_readable((tls.cert, tls.key, tls.client_ca), "TLS")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca:
            context.load_verify_locations(cafile=tls.client_ca)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TlsConfigError(f"TLS certificate {tls.cert!r} / key {tls.key!r} / CA {tls.client_ca or '-'}: "
                             f"{exc}") from None


def add_tls_arguments(parser: Any, cluster: bool = True) -> None:
    """The TLS flags of the node's and the proxy's command line (``argparse``)."""
    parser.add_argument("--tls-cert", help="edge TLS: certificate (PEM) of the gRPC and REST ports ('' = plaintext)")
    parser.add_argument("--tls-key", help="edge TLS: the certificate's private key (PEM)")
    parser.add_argument("--tls-client-ca", help="edge mTLS: clients must present a certificate signed by this CA")
    if cluster:
        parser.add_argument("--cluster-tls-cert", help="cluster mTLS: this process's cluster certificate (PEM)")
        parser.add_argument("--cluster-tls-key", help="cluster mTLS: its private key (PEM)")
        parser.add_argument("--cluster-tls-ca", help="cluster mTLS: the CA every cluster certificate is signed by")
        parser.add_argument("--cluster-tls-server-name",
                            help="cluster mTLS: the name a node's certificate must carry ('' = the host dialed)")
    parser.add_argument("--health-port", type=int,
                        help="plaintext gRPC health service (only) on this port, for probes (0: off, -1: any free)")


def check_tls_files(edge: EdgeTls | None, cluster: ClusterTls | None) -> None:
    """At start (settings load: a bad file exits 2 with this message): every TLS file given can be read, each
    certificate matches its key, each CA file holds certificates."""
    if edge is not None:
        check_server_tls(ServerTls(edge.cert, edge.key, edge.client_ca))
    if cluster is not None:
        check_server_tls(ServerTls(cluster.cert, cluster.key, cluster.ca))


# -- gRPC --------------------------------------------------------------------------------------------------


def _certificate_configuration(contents: Sequence[bytes]) -> Any:
    cert, key = contents[0], contents[1]
    roots = contents[2] if len(contents) > 2 else None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """gRPC server credentials for ``tls`` that follow the files: gRPC asks on each new connection, and gets
    a new configuration when the files changed since."""
    files = PemFiles([p for p in (tls.cert, tls.key, tls.client_ca) if p], pair_valid)

    def fetch() -> Any:
        try:
            return _certificate_configuration(files.contents) if files.poll() else None
        except Exception:  # never into gRPC's handshake: keep the configuration in use
            log.exception("reading the TLS files again failed")
            return None

    return grpc.dynamic_ssl_server_credentials(_certificate_configuration(files.contents), fetch,
                                               require_client_authentication=tls.require_client)


def add_port(server: grpc.Server, address: str, tls: ServerTls | None) -> int:
    """Listen on ``address``: with TLS when ``tls`` is given (each port gets credentials of its own, reading
    the same files), else plaintext. Returns the bound port (0: could not bind)."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, server_credentials(tls))


def serve_health(servicer: Any, host: str, port: int) -> tuple[grpc.Server, int]:
    """A plaintext gRPC server with only the health service (``servicer``, shared with the main port: the
    same statuses), for probes that cannot do TLS (Kubernetes' gRPC probes). Returns it started, and its port
    (``port`` -1 or 0: any free one)."""
    from concurrent.futures import ThreadPoolExecutor

    from grpc_health.v1 import health_pb2_grpc

    server = grpc.server(ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"[{host}]:{max(0, port)}" if ":" in host else f"{host}:{max(0, port)}")
    if bound == 0:
        raise OSError(f"cannot listen for health checks on {host}:{port}")
    server.start()
    return server, bound


class ClusterDialer:
    """Channels to nodes: plaintext without cluster TLS, else TLS with the cluster certificate as client
    certificate and the cluster CA as the only root (checked against ``server_name`` when set).
    ``stale(generation)`` tells a holder of long-lived channels that the files changed since it built its
    channel (it then builds a new one: new connections present the new certificate)."""

    def __init__(self, tls: ClusterTls | None, check_seconds: float = CHECK_SECONDS) -> None:
        self.tls = tls
        self._files = None if tls is None else PemFiles((tls.cert, tls.key, tls.ca), pair_valid, check_seconds)

    @property
    def secure(self) -> bool:
        return self.tls is not None

    @property
    def generation(self) -> int:
        return 0 if self._files is None else self._files.generation

    def stale(self, generation: int) -> bool:
        """Whether a channel built at ``generation`` should be replaced (the files changed since)."""
        if self._files is None:
            return False
        self._files.poll()
        return self._files.generation != generation

    def credentials(self) -> grpc.ChannelCredentials | None:
        if self._files is None:
            return None
        cert, key, ca = self._files.contents
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def channel(self, address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
        credentials = self.credentials()
        if credentials is None:
            return grpc.insecure_channel(address, options=list(options))
        assert self.tls is not None
        extra = [("grpc.ssl_target_name_override", self.tls.server_name)] if self.tls.server_name else []
        return grpc.secure_channel(address, credentials, options=[*options, *extra])


# A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with its terminating NUL).
MAX_SOCKET_PATH = 100


def forward_socket(storage_path: str, shared_port: int) -> str:
    """Where a standalone node's primary worker takes its secondaries' forwards when its ports use TLS (its
    port asks for a certificate a worker does not hold as a client, or names no loopback address): a Unix
    socket in the node's storage folder, as private as the data (a folder of its own under the temporary
    directory, mode 0700, when that path is too long), as a gRPC target ``unix:PATH``."""
    storage = os.path.abspath(storage_path)
    path = os.path.join(storage, f".forward-{shared_port}.sock")
    if len(path) > MAX_SOCKET_PATH:
        digest = hashlib.sha256(storage.encode()).hexdigest()[:16]
        folder = os.path.join(tempfile.gettempdir(), f"mishards-{digest}")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        path = os.path.join(folder, f"forward-{shared_port}.sock")
    return f"unix:{path}"


# -- peers -------------------------------------------------------------------------------------------------


def _auth_context(context: Any) -> dict[str, list[bytes]]:
    try:
        found = context.auth_context()
    except Exception:  # a context without one (e.g. an in-process call)
        return {}
    return found if isinstance(found, dict) else {}


def is_internal_peer(context: Any) -> bool:
    """Whether the call's peer presented a certificate that this server verified. A node with cluster mTLS
    verifies client certificates against the cluster CA only (and a node cannot also run edge TLS), so there
    this means "a proxy or another node of the cluster". On a port with edge mTLS (``--tls-client-ca``) the
    certificate was verified against the edge client CA instead: such a server must not treat it as internal
    (:class:`PeerTrust` makes that choice from the server's settings)."""
    auth = _auth_context(context)
    if auth.get("transport_security_type") != [b"ssl"]:
        return False
    return bool(auth.get("x509_pem_cert") or auth.get("x509_common_name") or auth.get("x509_subject_alternative_name"))


def peer_name(context: Any) -> str:
    """The peer's identity for audit: the certificate's first SAN (else its CN) when it presented one, else
    the transport address (``ipv4:127.0.0.1:54321``)."""
    auth = _auth_context(context)
    for key in ("x509_subject_alternative_name", "x509_common_name"):
        values = auth.get(key)
        if values:
            return values[0].decode("utf-8", "replace")
    try:
        return str(context.peer())
    except Exception:
        return ""


@dataclass(frozen=True, slots=True)
class PeerTrust:
    """Which verified peers count as internal on this server: only where the port verifies client
    certificates against the cluster CA (a node with cluster mTLS)."""

    cluster: bool

    def is_internal(self, context: Any) -> bool:
        return self.cluster and is_internal_peer(context)


def peer_trust(edge: EdgeTls | None, cluster: ClusterTls | None) -> PeerTrust:
    """A node with cluster mTLS trusts its verified peers as internal; an edge port (proxy, standalone) never."""
    return PeerTrust(cluster is not None and edge is None)
