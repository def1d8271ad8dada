"""The etcd client facade and the writer election, against a real etcd (Debian's etcd-server).

TTLs are kept small: etcd 3.4 grants at least 2 s whatever is asked, so ``ttl=1`` gives 2 s leases. Every wait
for a state is a poll with a deadline; the only fixed-length waits are the checks that something *stays* true
(a kept-alive lease outliving three TTLs, a leader keeping its role).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordinator.catalog import Catalog, Fenced
from coordinator.election import WriterElection
from coordinator.etcd_client import EtcdClient
from coordinator.etcd_errors import EtcdError
from coordinator.etcd_watch import WatchEvent
from coordinator.etcd_wire import parse_endpoints
from coordinator.model import MetricType
from coordinator.writer_key import parse_writer, writer_key
from tests.support.etcd import EtcdServer
from tests.support.waiting import log_tail, poll_for

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]
TTL = 1.0  # asked; etcd grants 2 s

ClientFactory = Callable[..., EtcdClient]


@pytest.fixture
def prefix() -> str:
    return f"/mishards-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_client(etcd: EtcdServer) -> Iterator[ClientFactory]:
    clients: list[EtcdClient] = []

    def make(timeout: float = 5.0, connect_timeout: float = 2.0) -> EtcdClient:
        client = EtcdClient(etcd.endpoint, timeout=timeout, connect_timeout=connect_timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def elections() -> Iterator[list[WriterElection]]:
    started: list[WriterElection] = []
    yield started
    for election in started:
        election.stop()


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.ensure_schema()
    yield cat
    cat.close()


def hold(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Assert that ``predicate`` stays true for ``seconds`` (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while True:
        assert predicate(), f"{what} stopped holding"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(0.05, remaining))


class Recorder:
    """Collects watch batches from the watch thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[WatchEvent] = []

    def __call__(self, batch: list[WatchEvent]) -> None:
        with self.lock:
            self.events.extend(batch)

    def snapshot(self) -> list[WatchEvent]:
        with self.lock:
            return list(self.events)


# ------------------------------------------------------------------------------------------- the client


def test_parse_endpoints() -> None:
    assert parse_endpoints("127.0.0.1:2379") == (("127.0.0.1", 2379),)
    assert parse_endpoints("a:1, http://b:2/,c") == (("a", 1), ("b", 2), ("c", 2379))
    assert parse_endpoints("[::1]:23790") == (("::1", 23790),)
    assert parse_endpoints([("h", 5)]) == (("h", 5),)
    for bad in ("", ",", "h:x", "h:0", "::1:2379", ":2379"):
        with pytest.raises(ValueError):
            parse_endpoints(bad)


def test_aetcd_imports_alongside_milvus_wire() -> None:
    """aetcd registers etcd's protos (package etcdserverpb) in the default pool; ours use other names."""
    check = (
        "from aetcd import rpc\n"
        "assert rpc.PutRequest.DESCRIPTOR.full_name == 'etcdserverpb.PutRequest'\n"
        "assert milvus_pb2.DESCRIPTOR.package == 'milvus.grpc'\n"
    )
    for imports in (
        "import aetcd\nfrom milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2, wire_fastpath_pb2\n",
        "from milvus_wire import milvus_pb2, milvus_pb2_grpc, status_pb2, wire_fastpath_pb2\nimport aetcd\n",
    ):
        subprocess.run([sys.executable, "-c", imports + check], cwd=ROOT, check=True, timeout=60)


def test_first_reachable_endpoint_is_used(etcd: EtcdServer) -> None:
    with EtcdClient(f"127.0.0.1:1,{etcd.endpoint}", connect_timeout=1.0) as client:
        assert client.connect() == etcd.endpoint
        client.put("/reach", b"ok")
        assert client.get("/reach") == b"ok"
    with EtcdClient("127.0.0.1:1", connect_timeout=0.5, timeout=2.0) as dead, pytest.raises(EtcdError):
        dead.get("/x")


def test_put_get_prefix_delete(make_client: ClientFactory, prefix: str) -> None:
    client = make_client()
    assert client.get(f"{prefix}/a") is None
    client.put(f"{prefix}/a", b"1")
    client.put(f"{prefix}/b", "two")
    client.put(f"{prefix}x/c", b"outside")
    assert client.get(f"{prefix}/a") == b"1"
    assert client.get_prefix(f"{prefix}/") == {f"{prefix}/a": b"1", f"{prefix}/b": b"two"}
    values, revision = client.get_prefix_with_revision(f"{prefix}/")
    assert len(values) == 2 and revision > 0
    assert client.delete(f"{prefix}/a") is True
    assert client.delete(f"{prefix}/a") is False
    assert client.get_prefix(f"{prefix}/") == {f"{prefix}/b": b"two"}


def test_transactions(make_client: ClientFactory, prefix: str) -> None:
    client = make_client()
    key = f"{prefix}/owner"
    assert client.put_if_absent(key, b"me") is True
    assert client.put_if_absent(key, b"you") is False
    assert client.get(key) == b"me"
    assert client.delete_if_value(key, b"you") is False
    assert client.get(key) == b"me"
    assert client.delete_if_value(key, b"me") is True
    assert client.get(key) is None
    assert client.put_if_absent(key, b"you") is True


def test_lease_expiry_and_keepalive(make_client: ClientFactory, prefix: str) -> None:
    client = make_client()
    lost: list[str] = []
    idle = client.grant_lease(TTL, keepalive=False)
    kept = client.grant_lease(TTL, on_lost=lost.append)
    assert idle.ttl >= 1 and kept.ttl >= 1
    client.put(f"{prefix}/idle", b"x", lease=idle)
    client.put(f"{prefix}/kept", b"y", lease=kept)
    started = time.monotonic()

    poll_for(lambda: client.get(f"{prefix}/idle") is None, idle.ttl + 3.0, 0.05, "the idle lease's key to expire")
    assert time.monotonic() - started <= idle.ttl + 1.5
    assert client.get(f"{prefix}/kept") == b"y"

    # The kept-alive lease outlives three TTLs.
    remaining = started + 3 * kept.ttl - time.monotonic()
    hold(lambda: client.get(f"{prefix}/kept") == b"y", remaining, "the kept-alive key")
    assert kept.alive and not lost

    client.revoke(kept)
    assert client.get(f"{prefix}/kept") is None
    assert not kept.alive and not lost, "revoking is not a loss"
    client.revoke(kept)  # already gone: not an error


def test_lease_loss_is_reported(make_client: ClientFactory, prefix: str) -> None:
    client, other = make_client(), make_client()
    lost: list[str] = []
    lease = client.grant_lease(TTL, on_lost=lost.append)
    client.put(f"{prefix}/k", b"v", lease=lease)
    other.revoke(other.grant_lease(TTL))  # the other client works
    # Revoke it behind the owner's back: the next refresh learns that the lease is gone.
    other.revoke(lease.id)
    poll_for(lambda: lost, lease.ttl + 2.0, 0.02, "the lease-lost callback")
    assert "expired" in lost[0]
    assert not lease.alive and lease.lost_reason is not None
    assert client.get(f"{prefix}/k") is None


def test_watch_prefix_put_and_delete(make_client: ClientFactory, prefix: str) -> None:
    client, writer = make_client(), make_client()
    seen = Recorder()
    handle = client.watch_prefix(f"{prefix}/", seen)
    writer.put(f"{prefix}/a", b"1")
    writer.put(f"{prefix}-other/z", b"not watched")
    writer.put(f"{prefix}/b", b"2")
    writer.delete(f"{prefix}/a")
    poll_for(lambda: len(seen.snapshot()) >= 3, 5.0, 0.02, "three watch events")
    events = seen.snapshot()
    assert [(e.kind, e.key, e.value) for e in events] == [
        ("put", f"{prefix}/a", b"1"),
        ("put", f"{prefix}/b", b"2"),
        ("delete", f"{prefix}/a", b""),
    ]
    assert [e.revision for e in events] == sorted(e.revision for e in events)

    # A lease expiry is a delete event too.
    lease = writer.grant_lease(TTL, keepalive=False)
    writer.put(f"{prefix}/leased", b"x", lease=lease)
    poll_for(
        lambda: any(e.kind == "delete" and e.key == f"{prefix}/leased" for e in seen.snapshot()),
        lease.ttl + 3.0,
        0.05,
        "the delete event of an expired lease's key",
    )
    handle.cancel()
    assert not handle.active
    handle.cancel()  # idempotent


def test_watch_from_a_read_revision_misses_nothing(make_client: ClientFactory, prefix: str) -> None:
    client = make_client()
    client.put(f"{prefix}/a", b"1")
    values, revision = client.get_prefix_with_revision(f"{prefix}/")
    client.put(f"{prefix}/b", b"2")  # between the read and the watch
    seen = Recorder()
    handle = client.watch_prefix(f"{prefix}/", seen, start_revision=revision + 1)
    events = poll_for(lambda: seen.snapshot(), 5.0, 0.02, "the event after the read")
    assert values == {f"{prefix}/a": b"1"}
    assert [(e.kind, e.key) for e in events] == [("put", f"{prefix}/b")]
    handle.cancel()


# ------------------------------------------------------------------------------------------- the election


def test_two_candidates_exactly_one_leader(
    make_client: ClientFactory, prefix: str, elections: list[WriterElection]
) -> None:
    wins: list[str] = []
    cands: list[WriterElection] = []
    for name, port in (("a", 19531), ("b", 19532)):

        def won(name: str = name) -> None:
            wins.append(name)

        e = WriterElection(make_client(), prefix, f"node-{name}", f"10.0.0.1:{port}", TTL, on_elected=won)
        cands.append(e)
        elections.append(e)
    for e in cands:
        e.start()
        e.start()  # idempotent

    poll_for(lambda: any(e.is_leader for e in cands), 10.0, 0.02, "a leader")
    leader = next(e for e in cands if e.is_leader)
    standby = next(e for e in cands if e is not leader)
    record = leader.current_writer()
    assert record is not None
    assert record["node_id"] == leader.candidate_id
    assert record["address"] == leader.address
    assert isinstance(record["elected_at"], float)
    assert standby.current_writer() == record
    assert len(wins) == 1

    # Roles stay put across lease refreshes.
    hold(lambda: leader.is_leader and not standby.is_leader, 2.0, "one leader, one standby")
    assert len(wins) == 1 and leader.terms == 1 and standby.terms == 0


def test_resign_hands_over_and_epochs_increase(
    make_client: ClientFactory, prefix: str, elections: list[WriterElection], catalog: Catalog
) -> None:
    claims: list[tuple[str, int]] = []
    deposed: list[str] = []

    def make(name: str) -> WriterElection:
        def claim() -> int:
            epoch = catalog.claim_writer(name)
            claims.append((name, epoch))
            return epoch

        e = WriterElection(
            make_client(), prefix, name, f"{name}:19530", TTL, on_deposed=lambda: deposed.append(name), claim=claim
        )
        elections.append(e)
        return e

    a, b = make("a"), make("b")
    a.start()
    assert a.wait_elected(10.0)
    b.start()
    first_epoch = a.epoch
    assert first_epoch is not None and claims == [("a", first_epoch)]
    catalog.create_collection(first_epoch, "c_a", 8, MetricType.L2, 16)

    assert a.resign() is True
    assert deposed == ["a"] and not a.is_leader
    poll_for(lambda: b.is_leader, 5.0, 0.02, "the standby to win after a resigned")
    assert b.epoch is not None and b.epoch > first_epoch
    assert (b.current_writer() or {})["node_id"] == "b"
    with pytest.raises(Fenced):
        catalog.create_collection(first_epoch, "c_stale", 8, MetricType.L2, 16)
    catalog.create_collection(b.epoch, "c_b", 8, MetricType.L2, 16)
    assert a.resign() is False  # not the writer any more

    # b stops: it gives the key up at once, and a (campaigning again) takes over.
    second_epoch = b.epoch
    b.stop()
    assert deposed == ["a", "b"]
    poll_for(lambda: a.is_leader, 5.0, 0.02, "a to win again")
    assert a.epoch is not None and a.epoch > second_epoch
    assert [name for name, _ in claims] == ["a", "b", "a"]
    assert [epoch for _, epoch in claims] == sorted({epoch for _, epoch in claims})
    with pytest.raises(Fenced):
        catalog.create_collection(second_epoch, "c_stale2", 8, MetricType.L2, 16)
    a.stop()
    a.stop()  # idempotent
    assert deposed == ["a", "b", "a"]
    assert a.current_writer() is None


def test_leader_deposed_when_its_lease_is_lost(
    make_client: ClientFactory, prefix: str, elections: list[WriterElection], catalog: Catalog
) -> None:
    client, admin = make_client(), make_client()
    deposed = threading.Event()
    e = WriterElection(
        client, prefix, "solo", "solo:19530", TTL, on_deposed=deposed.set, claim=lambda: catalog.claim_writer("solo")
    )
    elections.append(e)
    e.start()
    assert e.wait_elected(10.0)
    first_epoch = e.epoch
    assert first_epoch is not None
    lease = e._lease
    assert lease is not None
    admin.revoke(lease.id)  # as if etcd had expired it

    poll_for(deposed.is_set, lease.ttl + 2.0, 0.02, "on_deposed after the lease was lost")
    poll_for(lambda: e.is_leader and e.terms == 2, 5.0, 0.02, "re-election")
    assert e.epoch is not None and e.epoch > first_epoch


_CHILD_CANDIDATE = r"""
import logging, pathlib, sys, threading
from coordinator.catalog import Catalog
from coordinator.election import WriterElection
from coordinator.etcd_client import EtcdClient

endpoint, prefix, node_id, address, ttl, meta_uri, epoch_file = sys.argv[1:8]
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
catalog = Catalog(meta_uri)

def elected() -> None:
    tmp = pathlib.Path(epoch_file + ".tmp")
    tmp.write_text(str(election.epoch))
    tmp.replace(epoch_file)

election = WriterElection(
    EtcdClient(endpoint), prefix, node_id, address, float(ttl),
    on_elected=elected, claim=lambda: catalog.claim_writer(node_id),
)
election.start()
threading.Event().wait()
"""


def test_standby_takes_over_when_the_writer_is_killed(
    etcd: EtcdServer,
    make_client: ClientFactory,
    prefix: str,
    elections: list[WriterElection],
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    epoch_file = tmp_path / "old-writer.epoch"
    log_file = tmp_path / "old-writer.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [etcd.endpoint, prefix, "old", "10.0.0.9:19530", str(TTL), catalog.uri, str(epoch_file)]
    with log_file.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CANDIDATE, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def child_elected() -> bool:
            if child.poll() is not None:
                raise AssertionError(f"candidate process exited: {log_tail(log_file)}")
            return epoch_file.exists()

        poll_for(child_elected, 30.0, 0.05, "the child candidate to be elected")
        old_epoch = int(epoch_file.read_text())

        client = make_client()
        elected = threading.Event()
        standby = WriterElection(
            client,
            prefix,
            "new",
            "10.0.0.10:19530",
            TTL,
            on_elected=elected.set,
            claim=lambda: catalog.claim_writer("new"),
        )
        elections.append(standby)
        standby.start()
        assert standby.current_writer() == {
            "node_id": "old",
            "address": "10.0.0.9:19530",
            "elected_at": pytest.approx(time.time(), abs=60),
        }
        hold(lambda: not standby.is_leader, 0.3, "the standby standing by")

        os.kill(child.pid, signal.SIGKILL)
        killed = time.monotonic()
        child.wait(10)
        granted_ttl = 2.0  # etcd's minimum; TTL=1 is rounded up
        poll_for(elected.is_set, granted_ttl + 4.0, 0.02, "the standby to take over")
        took = time.monotonic() - killed
        assert took <= granted_ttl + 2.0, f"failover took {took:.2f}s"
        assert standby.is_leader
        assert (standby.current_writer() or {})["address"] == "10.0.0.10:19530"
        assert standby.epoch is not None and standby.epoch > old_epoch

        # The killed writer, were it to come back with its epoch, is refused by the catalog itself.
        with pytest.raises(Fenced):
            catalog.create_collection(old_epoch, "from_the_dead", 8, MetricType.L2, 16)
        catalog.create_collection(standby.epoch, "from_the_new_writer", 8, MetricType.L2, 16)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_writer_key_helpers() -> None:
    assert writer_key("/mishards") == "/mishards/writer"
    assert writer_key("/mishards/") == "/mishards/writer"
    assert parse_writer(None) is None
    assert parse_writer(b"not json") is None
    assert parse_writer(b"[1]") is None
    assert parse_writer(b'{"node_id":"a"}') == {"node_id": "a"}
