"""Whether a call comes from a cluster member (a peer that presented a certificate signed by the cluster CA),
and its name for the audit log. The transport decides (``coordinator.tls``); without it no call is internal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def internal_check(edge: Any = None, cluster: Any = None) -> Callable[[Any], bool]:
    """The transport's check for a server with these edge and cluster TLS settings (``coordinator.tls``'s
    ``peer_trust``: only a port that verifies client certificates against the cluster CA has internal peers);
    a check that says no when the transport offers none."""
    try:
        from coordinator import tls
    except ImportError:
        return _never
    trust = getattr(tls, "peer_trust", None)
    if trust is not None:
        check: Callable[[Any], bool] = trust(edge, cluster).is_internal
        return check
    return getattr(tls, "is_internal_peer", _never)


def _never(_context: Any) -> bool:
    return False


def peer_name(context: Any) -> str:
    """The common name of the peer's certificate, else its address."""
    try:
        names = context.auth_context().get("x509_common_name") or ()
    except Exception:  # a context without TLS (or the REST adapter's) has no auth context worth reading
        names = ()
    if names:
        first = names[0]
        return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return peer_address(context)


def peer_address(context: Any) -> str:
    try:
        return str(context.peer())
    except Exception:  # never let a log field fail a call
        return ""
