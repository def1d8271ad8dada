"""A node standing for the writer role: through membership (etcd) or through a lease in the catalog. The winner
claims the epoch and replays the log; a deposed writer stops its process at once (fail-stop), so that it never
writes again; a supervisor restarts it as a standby."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from coordinator.fencing import WriterFence
from coordinator.membership import Member
from node.engine import Engine

log = logging.getLogger(__name__)

DEPOSED_EXIT = 75


def writer_fence(valid_until: Callable[[], float], ttl: float) -> WriterFence:
    """The fence of an elected writer: its lease's provable deadline, less a margin for clock rate differences
    between this machine and the one that keeps the lease (etcd or the catalog database)."""
    return WriterFence(valid_until, margin=min(0.25, ttl * 0.05))


def campaign(engine: Engine, client: Any, membership_uri: str, me: Member, ttl: float,
             stopped: threading.Event) -> Any:
    """Stand for writer through membership (``client``: the presence's etcd client); the started election."""
    from coordinator.election import WriterElection
    from coordinator.membership import parse_membership_uri

    def deposed() -> None:
        if stopped.is_set():
            return  # a clean stop hands the role over; it is not a deposition
        # This node may have acknowledged nothing that a successor cannot replay, and must not write again.
        log.critical("lost the writer role; stopping so that a deposed writer never writes")
        os._exit(DEPOSED_EXIT)

    election = WriterElection(client, parse_membership_uri(membership_uri).prefix, me.node_id, me.address,
                              ttl=ttl, claim=engine.become_writer, on_deposed=deposed)
    engine.fence = writer_fence(election.valid_until, ttl)
    election.start()
    return election


def campaign_in_catalog(engine: Engine, catalog_uri: str, node_id: str, address: str, ttl: float,
                        stopped: threading.Event) -> tuple[Any, Any]:
    """Stand for writer through a lease in the catalog (no etcd); the started election and the catalog that
    holds the lease (it outlives the engine's: close it after the engine)."""
    from coordinator.catalog import Catalog
    from coordinator.catalog_election import CatalogElection

    def deposed(reason: str) -> None:
        if stopped.is_set():
            return
        log.critical("lost the writer lease (%s); stopping so that a deposed writer never writes", reason)
        os._exit(DEPOSED_EXIT)

    lease_catalog = Catalog(catalog_uri)
    election = CatalogElection(lease_catalog, node_id, address, ttl, claim=engine.become_writer, on_deposed=deposed)
    engine.fence = writer_fence(election.valid_until, ttl)
    election.start()
    return election, lease_catalog
