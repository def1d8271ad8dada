"""Kubernetes NetworkPolicy semantics, evaluated in Python over rendered manifests: which pod may open a TCP/UDP
connection to which pod (or outside address) on which port. Follows the networking.k8s.io/v1 rules: a pod selected
by no policy of a direction is open in that direction; once selected, only what some rule allows passes; a
connection needs both the source's egress and the destination's ingress to allow it.

Not modelled: named ports, ipBlock ranges (an ipBlock peer matches outside addresses only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels in a namespace) or, with ``labels`` None, an address outside the cluster's pods."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] | None = None
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.labels is not None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return not other.is_pod
    if not other.is_pod:
        return False
    assert other.labels is not None
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def rule_allows(rule: Mapping[str, Any], peers_key: str, policy_namespace: str, other: Endpoint, port: int,
                protocol: str) -> bool:
    ports = rule.get("ports") or []
    if ports and not any(int(p["port"]) <= port <= int(p.get("endPort", p["port"]))
                         and p.get("protocol", "TCP") == protocol for p in ports if "port" in p):
        return False
    peers = rule.get(peers_key) or []
    return not peers or any(peer_matches(p, policy_namespace, other) for p in peers)


def _policies_for(policies: Iterable[Manifest], pod: Endpoint, direction: str) -> list[Manifest]:
    if not pod.is_pod:
        return []
    assert pod.labels is not None
    return [p for p in policies
            if p["metadata"].get("namespace", pod.namespace) == pod.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and selector_matches(p["spec"]["podSelector"], pod.labels)]


def ingress_allowed(policies: Iterable[Manifest], src: Endpoint, dst: Endpoint, port: int,
                    protocol: str = "TCP") -> bool:
    selecting = _policies_for(policies, dst, "Ingress")
    return not selecting or any(
        rule_allows(rule, "from", dst.namespace, src, port, protocol)
        for p in selecting for rule in p["spec"].get("ingress") or [])


def egress_allowed(policies: Iterable[Manifest], src: Endpoint, dst: Endpoint, port: int,
                   protocol: str = "TCP") -> bool:
    selecting = _policies_for(policies, src, "Egress")
    return not selecting or any(
        rule_allows(rule, "to", src.namespace, dst, port, protocol)
        for p in selecting for rule in p["spec"].get("egress") or [])


def allowed(policies: list[Manifest], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether ``src`` may connect to ``dst`` on ``port``: egress at the source and ingress at the destination."""
    return (egress_allowed(policies, src, dst, port, protocol)
            and ingress_allowed(policies, src, dst, port, protocol))


__all__ = ["Endpoint", "allowed", "egress_allowed", "ingress_allowed", "peer_matches", "selector_matches"]
