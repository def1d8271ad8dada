"""Token authentication, the pure parts: the token format and header parsing, the RPC classes (every method of
the generated service has one), and the decision for every role x class x collection grant."""

from __future__ import annotations

import itertools

import pytest

from coordinator.auth import classes, tokens
from coordinator.auth.model import (
    Identity,
    Kind,
    Role,
    RpcClass,
    authorize,
    parse_role,
    visible,
)
from milvus_wire import milvus_pb2

SERVICE_METHODS = [m.name for m in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods]


# -- tokens ------------------------------------------------------------------------------------------------


def test_new_tokens_are_well_formed_distinct_and_hash_to_hex() -> None:
    made = {tokens.new_token() for _ in range(200)}
    assert len(made) == 200
    for token in made:
        assert token.startswith(tokens.PREFIX) and tokens.well_formed(token)
        digest = tokens.token_hash(token)
        assert len(digest) == 64 and int(digest, 16) >= 0
        assert token not in digest


def test_same_hash_compares_exactly() -> None:
    a = tokens.token_hash(tokens.new_token())
    assert tokens.same_hash(a, a)
    assert not tokens.same_hash(a, a[:-1] + ("0" if a[-1] != "0" else "1"))
    assert not tokens.same_hash(a, "")
    assert not tokens.same_hash(a, "é" * 64)  # never raises on non-ASCII


@pytest.mark.parametrize("header", [
    "", " ", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer\x00x", "Token abc", "x" * 100_000,
    "Bearer " + "a" * 5000, "Bearer 🔑🔑🔑", "Bearer mshd_" + "é" * 43, b"Bearer \xff\xfe", 12345, None,
])
def test_malformed_headers_never_give_a_well_formed_token(header: object) -> None:
    found = tokens.bearer(header)
    assert found is None or not tokens.well_formed(found)


@pytest.mark.parametrize("token", [
    "", "mshd_", "mshd_" + "A" * 42, "mshd_" + "A" * 44, "MSHD_" + "A" * 43, "mshd_" + "A" * 42 + "=",
    "mshd_" + "A" * 42 + "é", "mshd_" + "A" * 42 + "\n", "x" * 48, "mshd_" + "\u0410" * 43,
])
def test_well_formed_refuses_near_misses(token: str) -> None:
    assert not tokens.well_formed(token)


def test_bearer_reads_the_scheme_case_insensitively_and_trims() -> None:
    token = tokens.new_token()
    assert tokens.bearer(f"Bearer {token}") == token
    assert tokens.bearer(f"bearer   {token}  ") == token
    assert tokens.bearer(f"BEARER {token}".encode()) == token


def test_fingerprint_is_short_and_not_the_token() -> None:
    token = tokens.new_token()
    fp = tokens.fingerprint(tokens.token_hash(token))
    assert len(fp) == 8 and fp not in token


# -- classes -----------------------------------------------------------------------------------------------


def test_every_rpc_of_the_generated_service_has_a_class() -> None:
    missing = [m for m in SERVICE_METHODS if m not in classes.CLASSES]
    assert not missing, f"give these RPCs a class in coordinator/auth/classes.py: {missing}"
    assert not set(classes.CLASSES) - set(SERVICE_METHODS), "classes of RPCs the service does not have"


def test_an_unknown_method_is_admin() -> None:
    assert classes.rpc_class("SomeFutureRpc") is RpcClass.ADMIN


@pytest.mark.parametrize(("method", "expected"), [
    ("CreateCollection", RpcClass.DDL), ("DropCollection", RpcClass.DDL), ("CreateIndex", RpcClass.DDL),
    ("DropIndex", RpcClass.DDL), ("CreatePartition", RpcClass.DDL), ("DropPartition", RpcClass.DDL),
    ("CreateHybridCollection", RpcClass.DDL), ("DropHybridCollection", RpcClass.DDL),
    ("Insert", RpcClass.WRITE), ("DeleteByID", RpcClass.WRITE), ("Flush", RpcClass.WRITE),
    ("Compact", RpcClass.WRITE), ("InsertEntity", RpcClass.WRITE), ("DeleteEntitiesByID", RpcClass.WRITE),
    ("Search", RpcClass.READ), ("SearchByID", RpcClass.READ), ("SearchInFiles", RpcClass.READ),
    ("HybridSearch", RpcClass.READ), ("HybridSearchInSegments", RpcClass.READ), ("ShowCollections", RpcClass.READ),
    ("GetVectorsByID", RpcClass.READ), ("DescribeCollection", RpcClass.READ), ("GetEntityByID", RpcClass.READ),
])
def test_classes_of_the_rpcs(method: str, expected: RpcClass) -> None:
    assert classes.rpc_class(method) is expected


@pytest.mark.parametrize(("cmd", "expected"), [
    ("mishards_workers", RpcClass.OPEN), ("set_config cache.cache_size 2", RpcClass.ADMIN),
    ("  set_config x 1", RpcClass.ADMIN), ("get_config *", RpcClass.READ), ("version", RpcClass.READ),
    ("status", RpcClass.READ), ("mishards_stats", RpcClass.READ), ("", RpcClass.READ),
    ("set_configX", RpcClass.ADMIN), ("💥" * 1000, RpcClass.READ),
])
def test_cmd_is_classed_by_its_command(cmd: str, expected: RpcClass) -> None:
    assert classes.rpc_class("Cmd", milvus_pb2.Command(cmd=cmd)) is expected


def test_collections_of_requests() -> None:
    assert classes.collections_of("Search", milvus_pb2.SearchParam(collection_name="a")) == ("a",)
    inner = milvus_pb2.SearchParam(collection_name="b")
    assert classes.collections_of("SearchInFiles", milvus_pb2.SearchInFilesParam(search_param=inner)) == ("b",)
    assert classes.collections_of("Flush", milvus_pb2.FlushParam(collection_name_array=["x", "y"])) == ("x", "y")
    assert classes.collections_of("Flush", milvus_pb2.FlushParam()) == ()
    assert classes.collections_of("Cmd", milvus_pb2.Command(cmd="status")) == ()


# -- decisions ---------------------------------------------------------------------------------------------

ALLOWED_CLASSES = {
    Role.NONE: set(),
    Role.READONLY: {RpcClass.READ},
    Role.READWRITE: {RpcClass.READ, RpcClass.WRITE, RpcClass.DDL},
    Role.ADMIN: {RpcClass.READ, RpcClass.WRITE, RpcClass.DDL, RpcClass.ADMIN},
}
CHECKED = [RpcClass.READ, RpcClass.WRITE, RpcClass.DDL, RpcClass.ADMIN]


@pytest.mark.parametrize(("role", "cls", "collection"),
                         list(itertools.product(list(Role), CHECKED, [None, "c1", "other"])))
def test_global_roles(role: Role, cls: RpcClass, collection: str | None) -> None:
    who = Identity(Kind.USER, "u", role)
    decision = authorize(who, cls, collection)
    assert decision.allowed == (cls in ALLOWED_CLASSES[role])
    if not decision.allowed:
        assert decision.reason.startswith("Permission denied") and "'u'" in decision.reason


@pytest.mark.parametrize(("global_role", "grant", "cls"),
                         list(itertools.product(list(Role), [Role.READONLY, Role.READWRITE], CHECKED)))
def test_collection_grants(global_role: Role, grant: Role, cls: RpcClass) -> None:
    who = Identity(Kind.USER, "u", global_role, {"c1": grant})
    on_grant = authorize(who, cls, "c1").allowed
    elsewhere = authorize(who, cls, "other").allowed
    assert elsewhere == (cls in ALLOWED_CLASSES[global_role])
    if cls is RpcClass.ADMIN:  # a grant never gives admin
        assert on_grant == (global_role is Role.ADMIN)
    else:
        assert on_grant == (cls in ALLOWED_CLASSES[grant] | ALLOWED_CLASSES[global_role])


def test_a_read_naming_no_collection_needs_a_read_somewhere() -> None:
    assert authorize(Identity(Kind.USER, "u", Role.NONE, {"c": Role.READONLY}), RpcClass.READ, None).allowed
    assert not authorize(Identity(Kind.USER, "u", Role.NONE), RpcClass.READ, None).allowed
    # a write naming no collection (Flush of everything) needs the global role
    assert not authorize(Identity(Kind.USER, "u", Role.NONE, {"c": Role.READWRITE}), RpcClass.WRITE, None).allowed


def test_peers_and_open_calls_are_always_allowed() -> None:
    for cls in CHECKED:
        assert authorize(Identity(Kind.PEER, "proxy", Role.NONE), cls, "c").allowed
    assert authorize(Identity(Kind.ANONYMOUS, "anonymous", Role.NONE), RpcClass.OPEN, None).allowed


def test_an_anonymous_refusal_says_how_to_authenticate() -> None:
    reason = authorize(Identity(Kind.ANONYMOUS, "anonymous", Role.NONE), RpcClass.READ, "c").reason
    assert "anonymous" in reason and "Bearer" in reason


def test_visible_lists_only_readable_collections() -> None:
    scoped = Identity(Kind.USER, "u", Role.NONE, {"a": Role.READONLY, "c": Role.READWRITE})
    assert visible(scoped, ["a", "b", "c"]) == ["a", "c"]
    assert visible(Identity(Kind.USER, "u", Role.READONLY), ["a", "b"]) == ["a", "b"]


def test_parse_role() -> None:
    assert parse_role("admin") is Role.ADMIN
    with pytest.raises(ValueError, match="role must be one of"):
        parse_role("root")


def test_narrow_list_keeps_only_readable_collections() -> None:
    from coordinator.auth.requests import narrow_list, parse_request

    scoped = Identity(Kind.USER, "u", Role.NONE, {"a": Role.READONLY})
    names = milvus_pb2.CollectionNameList(collection_names=["a", "b"]).SerializeToString()
    narrowed = milvus_pb2.CollectionNameList.FromString(narrow_list("ShowCollections", names, scoped))
    assert list(narrowed.collection_names) == ["a"]
    mappings = milvus_pb2.MappingList(mapping_list=[milvus_pb2.Mapping(collection_name="b"),
                                                    milvus_pb2.Mapping(collection_name="a")]).SerializeToString()
    kept = milvus_pb2.MappingList.FromString(narrow_list("ShowHybridCollections", mappings, scoped))
    assert [m.collection_name for m in kept.mapping_list] == ["a"]
    assert parse_request("Search", b"\xff\x00garbage").collection_name == ""
    assert parse_request("Search", milvus_pb2.SearchParam(collection_name="x").SerializeToString()) \
        .collection_name == "x"
