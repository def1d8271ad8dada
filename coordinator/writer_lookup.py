"""Who takes writes right now, as the proxy routes them and ``mishards status`` reports them.

In order: the etcd election's winner where membership is etcd; else the holder of a live catalog lease
(``election: catalog``, with static, Kubernetes or etcd membership); else what membership says (its ``rw``
member, or a ``standalone`` one) — except with etcd membership, where no record and no lease means no writer. The rules
are pure functions of what was read; ``current_writer`` does the reading.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.catalog import WriterLease
from coordinator.errors import MetaFailed
from coordinator.membership import Member, writer

log = logging.getLogger(__name__)

LeaseReader = Callable[[], WriterLease | None]
# Seconds one read of the etcd writer key may take: callers retry, and an unreachable etcd must not hold a
# write for the client's whole deadline.
LOOKUP_TIMEOUT = 1.0


def from_membership(members: Sequence[Member]) -> Member | None:
    """Membership's rw member, else a standalone member."""
    return writer(members) or next((m for m in members if m.role == "standalone"), None)


def from_election_record(members: Sequence[Member], record: dict[str, Any] | None) -> Member | None:
    """The member the etcd writer key names (a member of its own when membership does not list it yet)."""
    if record is None:
        return None
    return next((m for m in members if m.node_id == record.get("node_id")),
                Member(str(record.get("node_id")), str(record.get("address")), "rw"))


def from_lease(members: Sequence[Member], lease: WriterLease | None) -> Member | None:
    """The holder of a live lease. Without a lease row no election runs: membership decides. With an expired
    lease, the only rw member if there is one, else nobody until a standby takes the lease."""
    if lease is None:
        return from_membership(members)
    if lease.remaining > 0:
        return next((m for m in members if m.address == lease.address or m.node_id == lease.holder),
                    Member(lease.holder, lease.address, "rw"))
    rw = [m for m in members if m.role == "rw"]
    return rw[0] if len(rw) == 1 else None


def elects(provider: object, lease: LeaseReader | None) -> bool:
    """Whether finding the writer takes a read (etcd key or catalog lease) rather than membership alone."""
    return _etcd(provider) is not None or lease is not None


def current_writer(provider: object, members: Sequence[Member], lease: LeaseReader | None) -> Member | None:
    """Read the etcd writer key (etcd membership) or the catalog lease (``lease`` given), and apply the rules."""
    etcd = _etcd(provider)
    if etcd is not None:
        from coordinator.writer_key import parse_writer, writer_key

        client, prefix = etcd
        record = parse_writer(client.get(writer_key(prefix), timeout=LOOKUP_TIMEOUT))
        if record is not None or lease is None:
            return from_election_record(members, record)
        # No etcd election record: the rw nodes may elect through the catalog while membership is etcd.
        try:
            held = lease()
        except MetaFailed as exc:
            log.warning("reading the writer lease failed: %s", exc)
            return None
        return None if held is None else from_lease(members, held)
    if lease is None:
        return from_membership(members)
    try:
        held = lease()
    except MetaFailed as exc:  # the catalog is unreachable: fall back to what membership says
        log.warning("reading the writer lease failed: %s", exc)
        return from_membership(members)
    return from_lease(members, held)


def _etcd(provider: object) -> tuple[Any, str] | None:
    client = getattr(provider, "client", None)
    config = getattr(provider, "config", None)
    return None if client is None or config is None else (client, str(config.prefix))
