"""etcd membership: each node registers ``<prefix>/nodes/<node id>`` under a lease it keeps alive; everyone
lists the prefix once and then watches it, so a crashed node disappears within the lease TTL.
"""

from __future__ import annotations

import json
import logging
import threading

from coordinator.etcd_client import EtcdClient
from coordinator.etcd_lease import Lease
from coordinator.etcd_watch import WatchEvent, WatchHandle
from coordinator.members import Member, MembershipCallback, sorted_members
from coordinator.membership import CallbackList
from coordinator.membership_uri import MembershipConfig

log = logging.getLogger(__name__)

DEFAULT_TTL = 5.0


def nodes_prefix(prefix: str) -> str:
    return f"{prefix}/nodes/"


def encode_member(member: Member) -> bytes:
    return json.dumps(
        {"node_id": member.node_id, "address": member.address, "role": member.role, "state": member.state},
        sort_keys=True,
    ).encode()


def decode_member(raw: bytes) -> Member | None:
    try:
        data = json.loads(raw)
        return Member(str(data["node_id"]), str(data["address"]), str(data["role"]), str(data.get("state", "ready")))
    except (ValueError, KeyError, TypeError):
        return None


class EtcdMembership:
    def __init__(self, config: MembershipConfig, *, client: EtcdClient | None = None, ttl: float = DEFAULT_TTL) -> None:
        self.config = config
        self.client = client or EtcdClient(config.endpoints, tls=config.etcd_tls)
        self._own_client = client is None
        self.ttl = ttl
        self._prefix = nodes_prefix(config.prefix)
        self._lock = threading.Lock()
        self._view: dict[str, Member] = {}
        self._callbacks = CallbackList()
        self._watch: WatchHandle | None = None
        self._lease: Lease | None = None
        self._me: Member | None = None
        self._register_lock = threading.Lock()
        self._stopped = threading.Event()

    # -- view ----------------------------------------------------------------------------------

    def start(self) -> None:
        current, revision = self.client.get_prefix_with_revision(self._prefix)
        with self._lock:
            self._view = {}
            for raw in current.values():
                member = decode_member(raw)
                if member is not None:
                    self._view[member.node_id] = member
        self._watch = self.client.watch_prefix(self._prefix, self._on_events, start_revision=revision + 1)

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.cancel()
        if self._own_client:
            self.client.close()

    def members(self) -> tuple[Member, ...]:
        with self._lock:
            return sorted_members(self._view.values())

    def subscribe(self, callback: MembershipCallback) -> None:
        self._callbacks.add(callback)

    def _on_events(self, events: list[WatchEvent]) -> None:
        changed = False
        with self._lock:
            for ev in events:
                node_id = ev.key[len(self._prefix):]
                if ev.kind == "delete":
                    changed |= self._view.pop(node_id, None) is not None
                    continue
                member = decode_member(ev.value)
                if member is not None and self._view.get(node_id) != member:
                    self._view[node_id] = member
                    changed = True
            view = sorted_members(self._view.values())
        if changed:
            self._callbacks.notify(view)

    # -- own record ----------------------------------------------------------------------------

    def register(self, member: Member) -> None:
        """Publish (or update) this node's record under a lease kept alive in the background."""
        with self._register_lock:
            self._me = member
            if self._lease is None or not self._lease.alive:
                self._lease = self.client.grant_lease(self.ttl, on_lost=self._relet)
            self.client.put(self._prefix + member.node_id, encode_member(member), lease=self._lease)

    def _relet(self, reason: str) -> None:
        """The lease was lost (etcd unreachable for a TTL, or it expired): register again under a new one, and
        keep trying while etcd is away, so the record is back (the same key, overwritten) as soon as it
        returns, before the old lease's expiry could drop it."""
        log.warning("membership lease lost (%s); registering again", reason)
        pause = 0.1
        self._lease = None
        while not self._stopped.is_set() and self._me is not None:
            try:
                self.register(self._me)
            except Exception as exc:
                log.warning("cannot register again yet (%s); retrying in %.1f s", exc, pause)
                self._stopped.wait(pause)
                pause = min(pause * 2, 2.0)
                continue
            log.info("registered again as %s", self._me.node_id)
            return

    def unregister(self) -> None:
        self._stopped.set()
        if self._me is not None:
            try:
                self.client.delete(self._prefix + self._me.node_id)
            except Exception as exc:
                log.warning("cannot remove the membership record: %s", exc)
        if self._lease is not None:
            try:
                self._lease.revoke()
            except Exception as exc:
                log.debug("lease revoke failed: %s", exc)
            self._lease = None

