"""Who takes writes: the pure rules shared by the proxy and ``mishards status``."""

from __future__ import annotations

from coordinator.catalog import WriterLease
from coordinator.membership import Member
from coordinator.writer_lookup import current_writer, from_election_record, from_lease, from_membership

RW_A = Member("a", "10.0.0.1:19530", "rw", "ready")
RW_B = Member("b", "10.0.0.2:19530", "rw", "ready")
RO = Member("c", "10.0.0.3:19530", "ro", "ready")
SOLO = Member("s", "10.0.0.4:19530", "standalone", "ready")


def test_membership_names_its_rw_member_else_a_standalone_one() -> None:
    assert from_membership([RO, RW_B, RW_A]) == RW_A  # the first by node id
    assert from_membership([RO, SOLO]) == SOLO
    assert from_membership([RO]) is None


def test_the_etcd_record_names_the_writer_even_before_membership_lists_it() -> None:
    assert from_election_record([RW_A, RW_B], {"node_id": "b", "address": RW_B.address}) == RW_B
    unlisted = from_election_record([RW_A], {"node_id": "z", "address": "10.0.0.9:1"})
    assert unlisted == Member("z", "10.0.0.9:1", "rw")
    assert from_election_record([RW_A], None) is None


def test_a_live_lease_names_its_holder_an_expired_one_nobody_among_several() -> None:
    assert from_lease([RW_A, RW_B], WriterLease("b", RW_B.address, 3.0)) == RW_B
    assert from_lease([RW_A, RW_B], WriterLease("b", RW_B.address, -0.1)) is None  # a standby is about to take it
    assert from_lease([RW_A, RO], WriterLease("a", RW_A.address, -0.1)) == RW_A  # no standby: the only rw member
    assert from_lease([RW_A, RW_B], None) == RW_A  # no lease row: no election runs


def test_an_unreachable_catalog_falls_back_to_membership() -> None:
    from coordinator.errors import MetaFailed

    def unreachable() -> WriterLease | None:
        raise MetaFailed("down")

    assert current_writer(object(), [RW_B, RW_A], unreachable) == RW_A
    assert current_writer(object(), [RW_B, RW_A], lambda: WriterLease("b", RW_B.address, 1.0)) == RW_B
    assert current_writer(object(), [RW_B, RW_A], None) == RW_A


class FakeConfig:
    prefix = "/m"


class EtcdLike:
    """What ``current_writer`` reads of an etcd membership provider: its client and its key prefix."""

    def __init__(self, record: bytes | None) -> None:
        self.config = FakeConfig()
        self.client = self
        self.record = record

    def get(self, key: str, timeout: float | None = None) -> bytes | None:
        assert key == "/m/writer" and timeout is not None and timeout <= 1.0
        return self.record


def test_etcd_membership_with_the_catalog_election_follows_the_lease() -> None:
    members = [RW_A, RW_B, RO]
    # An etcd election record wins.
    assert current_writer(EtcdLike(b'{"node_id": "a", "address": "10.0.0.1:19530"}'), members,
                          lambda: WriterLease("b", RW_B.address, 3.0)) == RW_A
    # No record: the rw nodes elect through the catalog; its live holder writes.
    assert current_writer(EtcdLike(None), members, lambda: WriterLease("b", RW_B.address, 3.0)) == RW_B
    # No record and no lease row (an etcd election between writers): nobody, not a guess among the rw nodes.
    assert current_writer(EtcdLike(None), members, lambda: None) is None
    assert current_writer(EtcdLike(None), members, None) is None
