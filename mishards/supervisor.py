"""The supervisor of ``mishards up`` lives in :mod:`coordinator.supervisor` (also used by multi-process nodes
and proxies); the names stay importable from here."""

from __future__ import annotations

from coordinator.supervisor import Child, RestartPolicy, Supervisor, next_backoff

__all__ = ["Child", "RestartPolicy", "Supervisor", "next_backoff"]
