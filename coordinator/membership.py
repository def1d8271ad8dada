"""Cluster membership: who is in the cluster, at which address, in which role.

One interface (``MembershipProvider``), several backends chosen by the scheme of a membership URI:

- ``static://HOST:PORT=ROLE,HOST:PORT=ROLE,...``: a fixed list from config (dev, docker-compose). The node id
  of each member is ``HOST:PORT``, its address is the same, and every member is ``ready``.
- ``k8s://NAMESPACE?selector=LABEL_SELECTOR&port=19530&role_label=mishards.io/role``: Ready pods matching the
  selector (``coordinator.membership_k8s``; the ``kubernetes`` client is imported only when it starts). An
  empty namespace (``k8s://?selector=...``) means the pod's own namespace.
- ``etcd://HOST:PORT[,HOST:PORT]/PREFIX``: nodes registered under ``PREFIX/nodes/<id>``. The URI is parsed
  here; the provider is registered by the etcd module (``register_provider("etcd", factory)``).

``create_provider(uri, **kwargs)`` picks the implementation from a registry keyed by scheme. Providers call
their subscribers with the new view (a tuple of ``Member`` sorted by node id) on every change, from the
provider's own thread. The helpers ``writer`` and ``readers`` are pure functions over such a view.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from coordinator.tls import EtcdTls, TlsConfigError, etcd_tls

log = logging.getLogger(__name__)

ROLES = ("rw", "ro", "standalone")
STATES = ("warming", "ready")

DEFAULT_K8S_PORT = 19530
DEFAULT_ROLE_LABEL = "mishards.io/role"
DEFAULT_ETCD_PORT = 2379
DEFAULT_ETCD_PREFIX = "/mishards"


@dataclass(frozen=True, slots=True)
class Member:
    """One cluster member as membership sees it."""

    node_id: str
    address: str  # host:port of MilvusService
    role: str  # "rw" | "ro" | "standalone"
    state: str = "ready"  # "warming" | "ready"


MembershipCallback = Callable[[tuple[Member, ...]], None]


class MembershipProvider(Protocol):
    """A live view of the cluster's members.

    ``start`` begins tracking (and may block briefly until a first view is known), ``stop`` ends it and is
    idempotent. ``members`` is the current view, sorted by node id. ``subscribe`` registers a callback that
    receives the new view on every change (not the current one at subscription time), called from the
    provider's thread, so callbacks must be quick and thread-safe. ``register``/``unregister`` announce this
    process as a member for backends where nodes announce themselves (etcd); they are no-ops for backends
    that learn the members from config or from an API (static, Kubernetes).
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def members(self) -> tuple[Member, ...]: ...

    def subscribe(self, callback: MembershipCallback) -> None: ...

    def register(self, member: Member) -> None: ...

    def unregister(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """A parsed membership URI. Which fields matter depends on ``scheme``.

    - static: ``members``.
    - k8s: ``namespace`` ("" = the pod's own namespace), ``selector``, ``port``, ``role_label``.
    - etcd: ``endpoints`` (host, port) pairs and ``prefix`` (starts with "/", no trailing "/"); ``etcd_tls``
      from the query parameters ``tls_ca``, ``tls_cert``, ``tls_key``, ``tls_server_name`` (None: plaintext).
    """

    scheme: str
    uri: str
    members: tuple[Member, ...] = ()
    namespace: str = ""
    selector: str = ""
    port: int = DEFAULT_K8S_PORT
    role_label: str = DEFAULT_ROLE_LABEL
    endpoints: tuple[tuple[str, int], ...] = ()
    prefix: str = DEFAULT_ETCD_PREFIX
    etcd_tls: EtcdTls | None = None


# ---------------------------------------------------------------------------------------------- URI parsing

_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOST_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ETCD_PREFIX_RE = re.compile(r"^[A-Za-z0-9_./-]*$")


def _parse_port(text: str, where: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid port {text!r} in {where}: expected a number 1-65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid port {port} in {where}: expected 1-65535")
    return port


def split_host_port(text: str, where: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[IPv6]:PORT``) -> (host, port); the port may be omitted if ``default_port`` is set.

    Raises:
        ValueError: naming ``where`` and what is wrong.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"invalid address {text!r} in {where}: unterminated '['")
        host, rest = text[1:end], text[end + 1 :]
        if not host or not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            raise ValueError(f"invalid IPv6 address {text!r} in {where}")
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid address {text!r} in {where}: expected ':' after ']'")
        port_text = rest[1:] if rest else ""
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
        if not host or not _HOST_RE.match(host):
            raise ValueError(f"invalid host in address {text!r} in {where}: expected HOST:PORT")
    if port_text == "" and default_port is None:
        raise ValueError(f"missing port in address {text!r} in {where}: expected HOST:PORT")
    port = default_port if port_text == "" and default_port is not None else _parse_port(port_text, where)
    return host, port


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_static(uri: str, rest: str) -> MembershipConfig:
    entries = [e.strip() for e in rest.split(",")]
    if not any(entries):
        raise ValueError(f"static membership URI {uri!r} lists no members; expected static://HOST:PORT=ROLE,...")
    members: dict[str, Member] = {}
    for entry in entries:
        if not entry:
            raise ValueError(f"empty member entry in {uri!r} (stray ',')")
        address, sep, role = entry.rpartition("=")
        if not sep:
            raise ValueError(f"member {entry!r} in {uri!r} has no role; expected HOST:PORT=ROLE with ROLE in {ROLES}")
        role = role.strip()
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} for member {entry!r} in {uri!r}; expected one of {ROLES}")
        host, port = split_host_port(address.strip(), f"member {entry!r} of {uri!r}")
        node_id = join_host_port(host, port)
        if node_id in members:
            raise ValueError(f"member {node_id} is listed twice in {uri!r}")
        members[node_id] = Member(node_id=node_id, address=node_id, role=role)
    return MembershipConfig(scheme="static", uri=uri, members=tuple(members[k] for k in sorted(members)))


def _check_label_key(key: str, uri: str) -> None:
    prefix, sep, name = key.rpartition("/")
    prefix_ok = not sep or (len(prefix) <= 253 and bool(_DNS_SUBDOMAIN_RE.match(prefix)))
    if not (prefix_ok and _LABEL_NAME_RE.match(name)):
        raise ValueError(f"invalid role_label {key!r} in {uri!r}: expected a label key like {DEFAULT_ROLE_LABEL}")


def _parse_k8s(uri: str, rest: str) -> MembershipConfig:
    namespace, _, query = rest.partition("?")
    namespace = unquote(namespace).rstrip("/")
    if namespace and not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"invalid Kubernetes namespace {namespace!r} in {uri!r}: expected a DNS-1123 label")
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"malformed query string in {uri!r}: {exc}") from None
    allowed = {"selector", "port", "role_label"}
    seen: dict[str, str] = {}
    for key, value in params:
        if key not in allowed:
            raise ValueError(f"unknown parameter {key!r} in {uri!r}; expected {sorted(allowed)}")
        if key in seen:
            raise ValueError(f"parameter {key!r} given twice in {uri!r}")
        seen[key] = value.strip()
    selector = seen.get("selector", "")
    if not selector:
        raise ValueError(f"k8s membership URI {uri!r} needs a label selector: k8s://NAMESPACE?selector=app=mishards")
    port = _parse_port(seen["port"], uri) if "port" in seen else DEFAULT_K8S_PORT
    role_label = seen.get("role_label", DEFAULT_ROLE_LABEL)
    _check_label_key(role_label, uri)
    return MembershipConfig(
        scheme="k8s", uri=uri, namespace=namespace, selector=selector, port=port, role_label=role_label
    )


ETCD_TLS_PARAMETERS = ("tls_ca", "tls_cert", "tls_key", "tls_server_name")


def _parse_etcd_query(uri: str, query: str) -> EtcdTls | None:
    """TLS to etcd from the URI's query: ``tls_ca`` (required for TLS), ``tls_cert`` and ``tls_key`` (a client
    certificate, for etcd's ``--client-cert-auth``), ``tls_server_name``."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"malformed query string in {uri!r}: {exc}") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in ETCD_TLS_PARAMETERS:
            raise ValueError(f"unknown parameter {key!r} in {uri!r}; expected {list(ETCD_TLS_PARAMETERS)}")
        if key in seen:
            raise ValueError(f"parameter {key!r} given twice in {uri!r}")
        seen[key] = value
    try:
        return etcd_tls(seen.get("tls_ca", ""), seen.get("tls_cert", ""), seen.get("tls_key", ""),
                        seen.get("tls_server_name", ""))
    except TlsConfigError as exc:
        raise ValueError(f"{exc} (in {uri!r})") from None


def _parse_etcd(uri: str, rest: str) -> MembershipConfig:
    rest, _, query = rest.partition("?")
    tls = _parse_etcd_query(uri, query)
    hosts, slash, path = rest.partition("/")
    if not hosts:
        raise ValueError(f"etcd membership URI {uri!r} names no endpoint; expected etcd://HOST:PORT[,HOST:PORT]/PREFIX")
    endpoints: list[tuple[str, int]] = []
    for item in hosts.split(","):
        if not item.strip():
            raise ValueError(f"empty endpoint in {uri!r} (stray ',')")
        endpoint = split_host_port(item.strip(), f"{uri!r}", default_port=DEFAULT_ETCD_PORT)
        if endpoint in endpoints:
            raise ValueError(f"endpoint {join_host_port(*endpoint)} is listed twice in {uri!r}")
        endpoints.append(endpoint)
    prefix = "/" + path.strip("/") if slash and path.strip("/") else DEFAULT_ETCD_PREFIX
    if not _ETCD_PREFIX_RE.match(prefix) or "//" in prefix:
        raise ValueError(f"invalid etcd key prefix {prefix!r} in {uri!r}: use letters, digits, '_', '.', '-', '/'")
    return MembershipConfig(scheme="etcd", uri=uri, endpoints=tuple(endpoints), prefix=prefix, etcd_tls=tls)


_PARSERS: dict[str, Callable[[str, str], MembershipConfig]] = {
    "static": _parse_static,
    "k8s": _parse_k8s,
    "etcd": _parse_etcd,
}


def parse_membership_uri(uri: str) -> MembershipConfig:
    """Parse a membership URI (see the module docstring for the forms).

    Raises:
        ValueError: with a message naming the URI and what is wrong with it.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"empty membership URI; expected one of {_uri_forms()}")
    uri = uri.strip()
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError(f"membership URI {uri!r} has no scheme; expected one of {_uri_forms()}")
    parser = _PARSERS.get(scheme.lower())
    if parser is None:
        raise ValueError(f"unknown membership scheme {scheme!r} in {uri!r}; known schemes: {sorted(_PARSERS)}")
    if "#" in rest:
        raise ValueError(f"membership URI {uri!r} must not contain '#'")
    return parser(uri, rest)


def _uri_forms() -> str:
    return "static://HOST:PORT=ROLE,..., k8s://NAMESPACE?selector=..., etcd://HOST:PORT/PREFIX"


# ------------------------------------------------------------------------------------------------- registry

ProviderFactory = Callable[..., MembershipProvider]
"""``factory(config: MembershipConfig, **kwargs) -> MembershipProvider``."""

_REGISTRY: dict[str, ProviderFactory] = {}


def register_provider(scheme: str, factory: ProviderFactory) -> None:
    """Make ``create_provider`` build ``scheme`` URIs with ``factory(config, **kwargs)`` (replacing any other)."""
    if scheme not in _PARSERS:
        raise ValueError(f"cannot register a provider for unknown scheme {scheme!r}; known: {sorted(_PARSERS)}")
    _REGISTRY[scheme] = factory


def registered_schemes() -> tuple[str, ...]:
    """The schemes ``create_provider`` can build right now, sorted."""
    return tuple(sorted(_REGISTRY))


def create_provider(uri: str, **kwargs: Any) -> MembershipProvider:
    """Parse ``uri`` and build (not start) its provider; ``kwargs`` go to the provider's factory.

    Raises:
        ValueError: for a malformed URI, or a scheme whose provider is not registered (listing those that are).
    """
    config = parse_membership_uri(uri)
    factory = _REGISTRY.get(config.scheme)
    if factory is None:
        raise ValueError(
            f"no membership provider is registered for scheme {config.scheme!r} (URI {uri!r}); "
            f"available: {list(registered_schemes())}"
        )
    return factory(config, **kwargs)


# ------------------------------------------------------------------------------------------------ providers


class StaticMembership:
    """Members fixed by a ``static://`` URI, all ``ready``. Never changes, so subscribers are never called."""

    def __init__(self, config: MembershipConfig) -> None:
        if config.scheme != "static":
            raise ValueError(f"StaticMembership needs a static:// config, got {config.scheme}://")
        self._members = config.members
        self._callbacks: list[MembershipCallback] = []

    def start(self) -> None:
        log.info("static membership: %s", ", ".join(f"{m.node_id}={m.role}" for m in self._members))

    def stop(self) -> None:
        pass

    def members(self) -> tuple[Member, ...]:
        return self._members

    def subscribe(self, callback: MembershipCallback) -> None:
        self._callbacks.append(callback)

    def register(self, member: Member) -> None:
        pass

    def unregister(self) -> None:
        pass


def _create_k8s(config: MembershipConfig, **kwargs: Any) -> MembershipProvider:
    from coordinator.membership_k8s import KubernetesMembership

    return KubernetesMembership(config, **kwargs)


def _create_etcd(config: MembershipConfig, **kwargs: Any) -> MembershipProvider:
    from coordinator.membership_etcd import EtcdMembership  # imported on use: it loads the etcd client

    return EtcdMembership(config, **kwargs)


register_provider("static", StaticMembership)
register_provider("k8s", _create_k8s)
register_provider("etcd", _create_etcd)


# ------------------------------------------------------------------------------------------------- helpers


def sorted_members(members: Iterable[Member]) -> tuple[Member, ...]:
    """``members`` as a view: sorted by node id."""
    return tuple(sorted(members, key=lambda m: m.node_id))


def writer(members: Iterable[Member]) -> Member | None:
    """The writable (``rw``) member, or None when there is none.

    Membership alone elects nobody: with several ``rw`` members (standbys, or a static list naming more than
    one) this returns the first by node id, a deterministic choice every process agrees on. Where a writer
    election runs (etcd), its winner, not this helper, decides who writes. ``standalone`` members do not count.
    """
    rw = [m for m in members if m.role == "rw"]
    return min(rw, key=lambda m: m.node_id) if rw else None


def readers(members: Iterable[Member]) -> tuple[Member, ...]:
    """The read-only members that are ``ready`` (warming ones get no traffic yet), sorted by node id."""
    return sorted_members(m for m in members if m.role == "ro" and m.state == "ready")


class CallbackList:
    """Subscribers of a provider: thread-safe registration, and calls that survive a failing callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[MembershipCallback] = []

    def add(self, callback: MembershipCallback) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def notify(self, view: tuple[Member, ...]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(view)
            except Exception:
                log.exception("membership subscriber %r failed", callback)
