"""Kubernetes pods as membership sees them: pure functions from API objects (``V1Pod``, ``ApiException``) to
members and to log lines, and the pod's own namespace.

A pod is a member while it is Running, its ``Ready`` condition is True, it has a pod IP, it is not being
deleted, and its role label is ``rw``, ``ro`` or ``standalone``; its node id is the pod name and its address
``podIP:port``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.members import ROLES, Member
from coordinator.membership_uri import join_host_port

HTTP_GONE = 410
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_is_ready(pod: Any) -> bool:
    """True when a pod (a ``V1Pod``) is Running, its Ready condition is True and it is not being deleted."""
    status = getattr(pod, "status", None)
    metadata = getattr(pod, "metadata", None)
    if status is None or status.phase != "Running":
        return False
    if metadata is not None and metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or ())


def pod_role(pod: Any, role_label: str) -> str | None:
    """The pod's role from its ``role_label`` label, or None when missing or not one of ``ROLES``."""
    metadata = getattr(pod, "metadata", None)
    labels = (metadata.labels if metadata is not None else None) or {}
    role = labels.get(role_label)
    return role if role in ROLES else None


def pod_member(pod: Any, port: int, role_label: str) -> Member | None:
    """The member a pod stands for, or None when it is not one (see the module docstring)."""
    if not pod_is_ready(pod) or not pod.status.pod_ip or not pod.metadata.name:
        return None
    role = pod_role(pod, role_label)
    if role is None:
        return None
    return Member(node_id=pod.metadata.name, address=join_host_port(pod.status.pod_ip, port), role=role)


def is_gone(exc: BaseException) -> bool:
    """True for the client's ``ApiException`` with status 410 (an expired resourceVersion)."""
    return getattr(exc, "status", None) == HTTP_GONE


def describe_error(exc: BaseException) -> str:
    """One line about a list/watch failure (``str(ApiException)`` spans several lines with all headers)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def own_namespace(path: Path | None = None) -> str:
    """The namespace of the pod this process runs in (from its service account's namespace file).

    Raises:
        ValueError: outside a pod, asking for an explicit namespace.
    """
    path = path or SERVICE_ACCOUNT_NAMESPACE
    try:
        namespace = path.read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    if not namespace:
        raise ValueError(f"no namespace in the k8s:// URI and {path} is not readable: name the namespace")
    return namespace
