"""The guard over a real SQLite catalog: users, tokens (expiry, revocation, the two-token limit), the anonymous
role, refusals and the audit lines (which never hold a token)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coordinator.auth import users_db
from coordinator.auth.guard import BAD_HEADER, BAD_TOKEN, EXPIRED, Admitted, AuthSettings, Guard, Refused
from coordinator.auth.model import Kind, Role
from coordinator.auth.store import UserStore
from coordinator.catalog import Catalog
from coordinator.catalog_schema import make_engine
from milvus_wire import milvus_pb2


class Call:
    """What the guard reads of a gRPC call: its metadata and peer."""

    def __init__(self, authorization: str | None = None) -> None:
        self.metadata = () if authorization is None else (("authorization", authorization),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5555"


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    eng = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    yield eng
    eng.dispose()


def guard_for(engine: Any, anonymous: str = "readwrite", now: float = 1000.0) -> Guard:
    store = UserStore(engine)
    store.refresh()
    return Guard(AuthSettings(anonymous), store, internal=lambda _c: False, clock=lambda: now)


def test_anonymous_runs_admin_calls_only_while_no_user_exists(engine: Any) -> None:
    set_config = milvus_pb2.Command(cmd="set_config cache.cache_size 1")
    assert isinstance(guard_for(engine).admit("Cmd", set_config, Call()), Admitted)
    users_db.add_user(engine, "root", Role.ADMIN)
    refused = guard_for(engine).admit("Cmd", set_config, Call())
    assert isinstance(refused, Refused) and "anonymous" in refused.reason
    assert isinstance(guard_for(engine).admit("DropCollection", milvus_pb2.CollectionName(collection_name="c"),
                                              Call()), Admitted)


@pytest.mark.parametrize(("anonymous", "read", "write"), [("readwrite", True, True), ("readonly", True, False),
                                                          ("none", False, False)])
def test_anonymous_roles(engine: Any, anonymous: str, read: bool, write: bool) -> None:
    users_db.add_user(engine, "root", Role.ADMIN)
    guard = guard_for(engine, anonymous)
    search = milvus_pb2.SearchParam(collection_name="c")
    insert = milvus_pb2.InsertParam(collection_name="c")
    assert isinstance(guard.admit("Search", search, Call()), Admitted) == read
    assert isinstance(guard.admit("Insert", insert, Call()), Admitted) == write
    assert isinstance(guard.admit("Cmd", milvus_pb2.Command(cmd="mishards_workers"), Call()), Admitted)


def test_tokens_identify_users_and_wrong_ones_are_refused(engine: Any) -> None:
    issued = users_db.add_user(engine, "alice", Role.READONLY)
    guard = guard_for(engine, "none")
    who = guard.identify(f"Bearer {issued.token}")
    assert not isinstance(who, Refused) and who.kind is Kind.USER and who.name == "alice"
    flipped = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    for header, reason in [(f"Bearer {flipped}", BAD_TOKEN), ("Bearer nonsense", BAD_TOKEN),
                           (f"Basic {issued.token}", BAD_HEADER), ("Bearer " + "é" * 60, BAD_TOKEN),
                           ("x" * 100_000, BAD_HEADER)]:
        refused = guard.identify(header)
        assert isinstance(refused, Refused) and refused.reason == reason
        assert issued.token not in refused.reason


def test_expired_tokens_are_refused(engine: Any) -> None:
    issued = users_db.add_user(engine, "bob", Role.READWRITE, expires_in=60, now=1000.0)
    assert not isinstance(guard_for(engine, now=1059.0).identify(f"Bearer {issued.token}"), Refused)
    refused = guard_for(engine, now=1061.0).identify(f"Bearer {issued.token}")
    assert isinstance(refused, Refused) and refused.reason == EXPIRED


def test_rotation_two_live_tokens_then_revoke(engine: Any) -> None:
    first = users_db.add_user(engine, "svc", Role.READWRITE)
    second = users_db.issue_token(engine, "svc")
    with pytest.raises(users_db.UserError, match="2 live tokens"):
        users_db.issue_token(engine, "svc")
    guard = guard_for(engine)
    assert not isinstance(guard.identify(f"Bearer {first.token}"), Refused)
    assert not isinstance(guard.identify(f"Bearer {second.token}"), Refused)
    assert users_db.revoke_token(engine, "svc", oldest=True) == first.token_id
    guard.store.refresh()  # type: ignore[union-attr]
    assert isinstance(guard.identify(f"Bearer {first.token}"), Refused)
    assert not isinstance(guard.identify(f"Bearer {second.token}"), Refused)


def test_only_hashes_are_stored(engine: Any) -> None:
    issued = users_db.add_user(engine, "carol", Role.ADMIN)
    with engine.connect() as conn:
        rows = [tuple(str(v) for v in row) for t in ("auth_users", "auth_tokens", "auth_grants")
                for row in conn.exec_driver_sql(f"SELECT * FROM {t}")]
    assert rows and not any(issued.token in v or issued.token[5:] in v for row in rows for v in row)


def test_collection_grants_and_removal(engine: Any) -> None:
    issued = users_db.add_user(engine, "dave", Role.READWRITE, collection="mine")
    guard = guard_for(engine, "none")
    call = Call(f"Bearer {issued.token}")
    assert isinstance(guard.admit("Insert", milvus_pb2.InsertParam(collection_name="mine"), call), Admitted)
    assert isinstance(guard.admit("Insert", milvus_pb2.InsertParam(collection_name="theirs"), call), Refused)
    flush_all = guard.admit("Flush", milvus_pb2.FlushParam(), call)
    assert isinstance(flush_all, Refused)
    assert isinstance(guard.admit("Flush", milvus_pb2.FlushParam(collection_name_array=["mine", "theirs"]), call),
                      Refused)
    # the proxy hands over bytes: they are parsed only because the user has grants
    raw = milvus_pb2.SearchParam(collection_name="theirs").SerializeToString()
    from coordinator.auth.requests import parse_request
    assert isinstance(guard.admit("Search", raw, call, parse_request), Refused)
    assert isinstance(guard.admit("Search", b"\xff\xff garbage", call, parse_request), Refused)
    users_db.remove_user(engine, "dave")
    guard.store.refresh()  # type: ignore[union-attr]
    assert isinstance(guard.admit("Insert", milvus_pb2.InsertParam(collection_name="mine"), call), Refused)


def test_audit_lines_for_ddl_deletes_and_refusals_hold_no_token(engine: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    issued = users_db.add_user(engine, "erin", Role.READONLY)
    guard = guard_for(engine)
    call = Call(f"Bearer {issued.token}")
    with caplog.at_level(logging.INFO, logger="mishards.audit"):
        refused = guard.admit("DropPartition", milvus_pb2.PartitionParam(collection_name="c", tag="p"), call)
        admitted = guard.admit("DropCollection", milvus_pb2.CollectionName(collection_name="c"), Call())
        assert isinstance(admitted, Admitted)
        guard.done(admitted, 0)
        guard.admit("Search", milvus_pb2.SearchParam(collection_name="c"), Call("Bearer " + "z" * 30))
        not_audited = guard.admit("Search", milvus_pb2.SearchParam(collection_name="c"), call)
        assert isinstance(not_audited, Admitted)
        guard.done(not_audited, 0)
    assert isinstance(refused, Refused)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mishards.audit"]
    assert [(x["who"], x["rpc"], x["collection"], x["partition"], x["result"]) for x in lines] == [
        ("user:erin", "DropPartition", "c", "p", 3), ("anonymous", "DropCollection", "c", "", 0),
        ("unknown", "Search", "c", "", 3)]
    assert all(x["when"].endswith("Z") and x["peer"] == "ipv4:127.0.0.1:5555" for x in lines)
    assert issued.token not in caplog.text and "z" * 30 not in caplog.text


def test_the_user_tables_come_with_an_older_catalog(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.sqlite'}"
    catalog = Catalog(uri)
    catalog.ensure_schema()
    with catalog.engine.begin() as conn:  # a catalog made before the user tables existed
        for table in ("auth_grants", "auth_tokens", "auth_users"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
    store = UserStore(catalog.engine)
    assert store.refresh() and store.snapshot().loaded and not store.snapshot().users
    catalog.ensure_schema()
    assert set(sa.inspect(catalog.engine).get_table_names()) >= {"auth_users", "auth_tokens", "auth_grants"}
    users_db.add_user(catalog.engine, "frank", Role.READONLY)
    assert store.refresh() and "frank" in store.snapshot().users
    catalog.close()


def test_durations_and_names() -> None:
    assert users_db.parse_duration("90d") == 90 * 86400
    assert users_db.parse_duration("12h") == 43200
    assert users_db.parse_duration("30") == 30
    for bad in ("", "0", "-1d", "1y", "d", "1.2.3h"):
        with pytest.raises(users_db.UserError):
            users_db.parse_duration(bad)
    for bad in ("", "a b", "x" * 65, "é", "a/b"):
        with pytest.raises(users_db.UserError):
            users_db.check_name(bad)


def test_users_cli_prints_the_token_once_and_lists_no_secret(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from coordinator import users_cli

    uri = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert users_cli.main(["user", "add", "gina", "--role", "readwrite", "--collection", "c", "--expires", "7d",
                           "--meta-uri", uri][1:]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("mshd_") and token not in out.err
    assert users_cli.main(["token", "gina", "--meta-uri", uri]) == 0
    second = capsys.readouterr().out.strip()
    assert users_cli.main(["token", "gina", "--meta-uri", uri]) == 1  # two live tokens at most
    assert "revoke one first" in capsys.readouterr().err
    assert users_cli.main(["list", "--meta-uri", uri]) == 0
    listing = capsys.readouterr().out
    assert "gina" in listing and "c=readwrite" in listing and token not in listing and second not in listing
    assert users_cli.main(["revoke-token", "gina", "--oldest", "--meta-uri", uri]) == 0
    assert users_cli.main(["grant", "nobody", "--role", "readonly", "--meta-uri", uri]) == 1
    assert users_cli.main(["remove", "gina", "--meta-uri", uri]) == 0
    capsys.readouterr()
    assert users_cli.main(["list", "--meta-uri", uri]) == 0
    assert capsys.readouterr().out == ""


class PeerCall(Call):
    """A call whose peer presented a cluster certificate (as the transport reports it)."""

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_common_name": [b"mishards-proxy"], "transport_security_type": [b"ssl"]}


def test_peers_need_no_token_but_a_token_is_judged_by_itself(engine: Any,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    issued = users_db.add_user(engine, "hank", Role.READONLY)
    store = UserStore(engine)
    store.refresh()
    guard = Guard(AuthSettings("none"), store, internal=lambda c: isinstance(c, PeerCall))
    drop = milvus_pb2.CollectionName(collection_name="c")
    with caplog.at_level(logging.INFO, logger="mishards.audit"):
        peer = guard.admit("DropCollection", drop, PeerCall())
        assert isinstance(peer, Admitted) and peer.identity.kind is Kind.PEER
        guard.done(peer, 0)
    assert '"who":"peer:mishards-proxy"' in caplog.text
    assert isinstance(guard.admit("Search", milvus_pb2.SearchParam(collection_name="c"), PeerCall()), Admitted)
    assert isinstance(guard.admit("Search", milvus_pb2.SearchParam(collection_name="c"), Call()), Refused)
    assert isinstance(guard.admit("DropCollection", drop, PeerCall(f"Bearer {issued.token}")), Refused)
    assert isinstance(guard.admit("DropCollection", drop, PeerCall("Bearer mshd_" + "A" * 43)), Refused)


def test_without_a_catalog_anonymous_callers_never_manage_users() -> None:
    """A proxy without --meta-uri cannot tell whether a user exists: the bootstrap window stays closed for user
    commands (set_config keeps the behaviour of a deployment without users)."""
    guard = Guard(AuthSettings("readwrite"), None, internal=lambda _c: False)
    refused = guard.admit("Cmd", milvus_pb2.Command(cmd="user add root admin"), Call())
    assert isinstance(refused, Refused) and "anonymous" in refused.reason
    assert isinstance(guard.admit("Cmd", milvus_pb2.Command(cmd="set_config cache.cache_size 1"), Call()), Admitted)
    assert isinstance(guard.admit("Cmd", milvus_pb2.Command(cmd="status"), Call()), Admitted)


def test_anonymous_user_management_only_while_no_user_exists(engine: Any) -> None:
    add = milvus_pb2.Command(cmd="user add root admin")
    assert isinstance(guard_for(engine).admit("Cmd", add, Call()), Admitted)
    users_db.add_user(engine, "root", Role.ADMIN)
    refused = guard_for(engine).admit("Cmd", add, Call())
    assert isinstance(refused, Refused) and "admin" in refused.reason
