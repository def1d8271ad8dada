"""A node's place in the cluster: its membership record, and (read-only role) its warm share of segments.

A read-only node computes its own share with the same pure placement function the proxy uses, over the
read-only members it sees plus itself, and loads those segments into its cache in the background. It
registers as ``warming`` and reports ``ready`` (membership record and gRPC health) once its share is loaded,
so a newly joined node is warm before it is given traffic. The share is kept warm as segments are flushed,
merged or indexed (as soon as the node loads a newer catalog snapshot) and as members come and go. A
watch-only presence (``register=False``: the secondary workers of a multi-process read node) follows the
member list and warms the same share without registering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from coordinator.membership import Member, MembershipProvider, create_provider
from coordinator.model import SEARCHABLE_STATES
from coordinator.placement import Placement
from node.engine import Engine
from node.reader import Reader

log = logging.getLogger(__name__)


def share_members(view: tuple[Member, ...], me: Member) -> list[str]:
    """Node ids that share the read load, as placement sees them: every read-only member, this one included."""
    ids = {m.node_id for m in view if m.role == "ro"}
    if me.role == "ro":
        ids.add(me.node_id)
    return sorted(ids)


class Presence:
    def __init__(self, engine: Engine, reader: Reader, membership_uri: str, me: Member, replication: int,
                 on_ready: Callable[[], None], register: bool = True,
                 before_ready: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.before_ready = before_ready  # runs once, after the first warm-up, before the node reports ready
        self.registers = register
        self.reader = reader
        self.me = me
        self.replication = replication
        self.on_ready = on_ready
        # etcd records live under a lease of the configured TTL; other providers take no options.
        options = {"ttl": engine.settings.election_ttl} if membership_uri.startswith("etcd://") else {}
        self.provider: MembershipProvider = create_provider(membership_uri, **options)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="presence", daemon=True)
        self.ready = False
        self.share_size = 0
        self.since = time.monotonic()  # warming from here until ready
        if engine.metrics is not None:
            engine.metrics.warming = self.warming_seconds  # the node's /metrics reports the warm-up

    def warming_seconds(self) -> float:
        """Seconds this node has been joining and loading its share; 0 once it reported ready."""
        return 0.0 if self.ready else time.monotonic() - self.since

    def start(self) -> None:
        """Join the membership in the background: while its store (etcd) does not answer yet, keep trying
        with a back-off rather than fail the process (the node reports ready only once joined and warm)."""
        self._thread.start()

    def _join(self) -> None:
        self._until_done("follow the member list", self.provider.start)
        self.provider.subscribe(lambda _view: self._wake.set())
        self.engine.snapshot_listeners.append(lambda _snap: self._wake.set())  # new segments: warm them now
        if not self.registers:
            return
        self._until_done("register", lambda: self.provider.register(
            Member(self.me.node_id, self.me.address, self.me.role, "warming")))

    def _until_done(self, what: str, step: Callable[[], None]) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                step()
                return
            except Exception as exc:
                log.warning("cannot %s yet (%s); retrying in %.1f s", what, exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        try:
            if self.registers:
                self.provider.unregister()
        finally:
            self.provider.stop()

    def _run(self) -> None:
        self._join()
        while not self._stop.is_set():
            try:
                self.warm()
                if not self.ready:
                    self.before_ready()
                    self.ready = True
                    if self.registers:
                        self.provider.register(Member(self.me.node_id, self.me.address, self.me.role, "ready"))
                    self.on_ready()
                    log.info("node %s ready: %d segments of its share loaded", self.me.node_id, self.share_size)
            except Exception as exc:
                log.warning("warming the share failed (%s); retrying", exc)
            self._wake.wait(timeout=self.engine.settings.catalog_refresh_interval * 5)
            self._wake.clear()

    def share_of(self, segment_ids: list[int]) -> set[int]:
        """The ids among ``segment_ids`` that placement gives this node (as the proxy computes it)."""
        nodes = share_members(self.provider.members(), self.me)
        return set(Placement.of(nodes, r=self.replication or None).share(self.me.node_id, segment_ids))

    def warm(self) -> None:
        """Load every segment of this node's share that is not cached yet (read-only role only)."""
        if self.me.role != "ro":
            self.share_size = 0
            return
        snap = self.engine.snapshot()
        total = 0
        fresh = []  # segments loaded by this pass: their mapped files are read in too
        for coll in snap.collections_by_id.values():
            segs = [s for s in snap.segments_of(coll.id) if s.state in SEARCHABLE_STATES]
            mine = self.share_of([s.id for s in segs])
            for seg in segs:
                if seg.id in mine and not self._stop.is_set():
                    cached = self.engine.cache.contains(seg.id)
                    item = self.reader.loaded(coll, seg)
                    if not cached:
                        fresh.append((coll.id, seg, item))
                    total += 1
        self.reader.page_in(fresh)
        self.share_size = total
