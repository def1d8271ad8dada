"""Membership URIs: :func:`parse_membership_uri` turns one into a :class:`MembershipConfig`, refusing a
malformed one with a message that names the URI and what is wrong.

- ``static://HOST:PORT=ROLE,HOST:PORT=ROLE,...``: a fixed list of members.
- ``k8s://NAMESPACE?selector=LABEL_SELECTOR&port=19530&role_label=mishards.io/role``: Ready pods matching the
  selector; an empty namespace means the pod's own namespace.
- ``etcd://HOST:PORT[,HOST:PORT]/PREFIX[?tls_ca=...&tls_cert=...&tls_key=...&tls_server_name=...]``: nodes
  registered under ``PREFIX/nodes/<id>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from coordinator.members import ROLES, Member
from coordinator.tls import EtcdTls, TlsConfigError, etcd_tls

DEFAULT_K8S_PORT = 19530
DEFAULT_ROLE_LABEL = "mishards.io/role"
DEFAULT_ETCD_PORT = 2379
DEFAULT_ETCD_PREFIX = "/mishards"


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


def _query_params(uri: str, query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The URI's query parameters by name; refuses a malformed query, unknown names and repeated ones."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"malformed query string in {uri!r}: {exc}") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise ValueError(f"unknown parameter {key!r} in {uri!r}; expected {list(allowed)}")
        if key in seen:
            raise ValueError(f"parameter {key!r} given twice in {uri!r}")
        seen[key] = value
    return seen


K8S_PARAMETERS = ("port", "role_label", "selector")


def _parse_k8s(uri: str, rest: str) -> MembershipConfig:
    namespace, _, query = rest.partition("?")
    namespace = unquote(namespace).rstrip("/")
    if namespace and not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"invalid Kubernetes namespace {namespace!r} in {uri!r}: expected a DNS-1123 label")
    seen = {key: value.strip() for key, value in _query_params(uri, query, K8S_PARAMETERS).items()}
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
    seen = _query_params(uri, query, ETCD_TLS_PARAMETERS)
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


def known_schemes() -> list[str]:
    """The schemes a membership URI may have, sorted."""
    return sorted(_PARSERS)
