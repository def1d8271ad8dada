"""Cluster membership: who is in the cluster, at which address, in which role.

One interface (``MembershipProvider``), several backends chosen by the scheme of a membership URI
(``coordinator/membership_uri.py`` parses it):

- ``static://HOST:PORT=ROLE,HOST:PORT=ROLE,...``: a fixed list from config (dev, docker-compose). The node id
  of each member is ``HOST:PORT``, its address is the same, and every member is ``ready``.
- ``k8s://NAMESPACE?selector=LABEL_SELECTOR&port=19530&role_label=mishards.io/role``: Ready pods matching the
  selector (``coordinator.membership_k8s``; the ``kubernetes`` client is imported only when it starts). An
  empty namespace (``k8s://?selector=...``) means the pod's own namespace.
- ``etcd://HOST:PORT[,HOST:PORT]/PREFIX``: nodes registered under ``PREFIX/nodes/<id>``
  (``coordinator.membership_etcd``).

``create_provider(uri, **kwargs)`` picks the implementation from a registry keyed by scheme. Providers call
their subscribers with the new view (a tuple of ``Member`` sorted by node id) on every change, from the
provider's own thread. The helpers ``writer`` and ``readers`` (``coordinator/members.py``) are pure functions
over such a view. This module is the public face of membership: ``Member``, the view helpers and
``parse_membership_uri`` are importable from here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from coordinator.members import Member, MembershipCallback, readers, sorted_members, writer
from coordinator.membership_uri import MembershipConfig, known_schemes, parse_membership_uri

__all__ = [
    "CallbackList",
    "Member",
    "MembershipCallback",
    "MembershipConfig",
    "MembershipProvider",
    "StaticMembership",
    "create_provider",
    "parse_membership_uri",
    "readers",
    "register_provider",
    "registered_schemes",
    "sorted_members",
    "writer",
]

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------------- registry

ProviderFactory = Callable[..., MembershipProvider]
"""``factory(config: MembershipConfig, **kwargs) -> MembershipProvider``."""

_REGISTRY: dict[str, ProviderFactory] = {}


def register_provider(scheme: str, factory: ProviderFactory) -> None:
    """Make ``create_provider`` build ``scheme`` URIs with ``factory(config, **kwargs)`` (replacing any other)."""
    if scheme not in known_schemes():
        raise ValueError(f"cannot register a provider for unknown scheme {scheme!r}; known: {known_schemes()}")
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
