"""The Kubernetes objects that tests.support.fake_k8s serves, built without a server: pods, ``Status``
objects, label selectors, and the watch event a selector makes of a stored change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class Request:
    """One request the fake received."""

    namespace: str
    watch: bool
    params: dict[str, str]


@dataclass
class StoredEvent:
    """A change of the stored pods, before any watcher's selector filters it."""

    version: int
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    old: dict[str, Any] | None
    new: dict[str, Any]


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    ip: str | None = "10.0.0.1",
    phase: str = "Running",
    ready: bool = True,
) -> dict[str, Any]:
    """A pod object as the API serves it (``metadata.resourceVersion`` is set when it is stored)."""
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": _CREATED},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": _CREATED},
        ],
        "startTime": _CREATED,
    }
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": dict(labels or {}),
            "creationTimestamp": _CREATED,
        },
        "spec": {
            "containers": [
                {"name": "node", "image": "mishards:test", "ports": [{"containerPort": 19530, "protocol": "TCP"}]}
            ]
        },
        "status": status,
    }


def status_object(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``Status`` object as the API returns for errors."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


GONE_STATUS = status_object(410, "Expired", "too old resource version")


def parse_selector(selector: str) -> list[tuple[str, str, str]]:
    """``k=v,k2!=v2,k3,!k4`` -> [(key, op, value)] with op in "=", "!=", "exists", "!exists".

    Raises:
        ValueError: for set-based terms (``in``, ``notin``) and malformed ones.
    """
    terms: list[tuple[str, str, str]] = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        if " " in term or "(" in term:
            raise ValueError(f"unsupported selector term {term!r}")
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key, "!=", value))
        elif "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            terms.append((key, "=", value))
        elif term.startswith("!"):
            terms.append((term[1:], "!exists", ""))
        else:
            terms.append((term, "exists", ""))
        if not terms[-1][0]:
            raise ValueError(f"selector term {term!r} has no key")
    return terms


def selector_matches(terms: list[tuple[str, str, str]], labels: dict[str, str]) -> bool:
    for key, op, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def translate_event(event: StoredEvent, terms: list[tuple[str, str, str]]) -> dict[str, Any] | None:
    """The event a watcher with this selector sees (or None), as the API server filters label changes."""
    was = event.old is not None and selector_matches(terms, event.old["metadata"]["labels"])
    now = selector_matches(terms, event.new["metadata"]["labels"])
    if event.type == "ADDED":
        return {"type": "ADDED", "object": event.new} if now else None
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.new} if was else None
    if was and now:
        return {"type": "MODIFIED", "object": event.new}
    if now:
        return {"type": "ADDED", "object": event.new}
    if was:
        return {"type": "DELETED", "object": event.new}
    return None
