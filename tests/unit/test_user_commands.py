"""The ``user ...`` Cmd syntax (a pure parser), its class, and the commands run on a SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator import users_cli, users_remote
from coordinator.auth import tokens, user_admin
from coordinator.auth.audit import AuditRecord
from coordinator.auth.classes import command_class, command_of
from coordinator.auth.model import Role, RpcClass
from coordinator.auth.user_commands import (
    MAX_COMMAND,
    Action,
    Invalid,
    UserCommand,
    is_user_command,
    parse_user_command,
)
from coordinator.catalog_schema import make_engine
from coordinator.errors import ErrorCode, MilvusError
from milvus_wire import milvus_pb2


@pytest.mark.parametrize(("cmd", "expected"), [
    ("user list", UserCommand(Action.LIST)),
    ("  user\tlist ", UserCommand(Action.LIST)),
    ("user add alice readwrite", UserCommand(Action.ADD, "alice", Role.READWRITE)),
    ("user add bob readonly on c1 expires 90d",
     UserCommand(Action.ADD, "bob", Role.READONLY, "c1", 90 * 86400.0)),
    ("user add bob readonly expires 12h on c1", UserCommand(Action.ADD, "bob", Role.READONLY, "c1", 12 * 3600.0)),
    ("user grant bob admin", UserCommand(Action.GRANT, "bob", Role.ADMIN)),
    ("user grant bob readwrite on c1", UserCommand(Action.GRANT, "bob", Role.READWRITE, "c1")),
    ("user grant bob none on c1", UserCommand(Action.GRANT, "bob", Role.NONE, "c1")),
    ("user revoke bob on c1", UserCommand(Action.REVOKE, "bob", Role.NONE, "c1")),
    ("user token bob", UserCommand(Action.TOKEN, "bob")),
    ("user token bob expires 30m", UserCommand(Action.TOKEN, "bob", expires_in=1800.0)),
    ("user revoke-token bob 7", UserCommand(Action.REVOKE_TOKEN, "bob", token_id=7)),
    ("user revoke-token bob oldest", UserCommand(Action.REVOKE_TOKEN, "bob", oldest=True)),
    ("user remove bob", UserCommand(Action.REMOVE, "bob")),
])
def test_valid_commands(cmd: str, expected: UserCommand) -> None:
    assert is_user_command(cmd)
    assert parse_user_command(cmd) == expected


@pytest.mark.parametrize(("cmd", "says"), [
    ("user", "needs an action"),
    ("user frobnicate x", "unknown user action"),
    ("user list everything", "takes no arguments"),
    ("user add", "needs a user name"),
    ("user add alice", "needs a role"),
    ("user add alice superuser", "role must be one of"),
    ("user add alice admin on c1", "admin is global"),
    ("user add alice readonly on 1bad", "collection name"),
    ("user add alice readonly on", "with a value"),
    ("user add alice readonly expires -3d", "duration"),
    ("user add alice readonly expires 3d expires 4d", "unexpected 'expires'"),
    ("user add \u00e9l\u00e8ve readonly", "user name"),
    ("user add " + "x" * 65 + " readonly", "user name"),
    ("user add a\u0000b readonly", "user name"),
    ("user grant bob admin expires 1d", "unexpected 'expires'"),
    ("user revoke bob", "names the collection"),
    ("user token bob on c1", "unexpected 'on'"),
    ("user revoke-token bob", "token id"),
    ("user revoke-token bob three", "token id"),
    ("user revoke-token bob \u0663", "token id"),  # a digit, but not an ASCII one
    ("user remove bob now", "only a user name"),
    ("user list " + "x" * MAX_COMMAND, f"at most {MAX_COMMAND}"),
])
def test_invalid_commands_say_why(cmd: str, says: str) -> None:
    parsed = parse_user_command(cmd)
    assert isinstance(parsed, Invalid), parsed
    assert says in parsed.reason


def test_only_the_word_user_makes_a_user_command() -> None:
    assert not is_user_command("users list")
    assert not is_user_command("username")
    assert not is_user_command("status")
    assert not is_user_command("")
    assert is_user_command("user")
    assert is_user_command("user\u3000list")


def test_every_user_command_is_admin_and_others_keep_their_class() -> None:
    for cmd in ("user list", "user add a admin", "user", "user nonsense", " user remove a"):
        assert command_class(cmd) is RpcClass.ADMIN, cmd
    assert command_class("users") is RpcClass.READ
    assert command_class("status") is RpcClass.READ
    assert command_class("set_config cache.cache_size 1GB") is RpcClass.ADMIN
    assert command_class("mishards_workers") is RpcClass.OPEN


def test_summary_names_no_secret() -> None:
    assert UserCommand(Action.ADD, "alice", Role.ADMIN).summary() == "user add alice"
    assert UserCommand(Action.LIST).summary() == "user list"


def _refused(engine: object, cmd: str) -> MilvusError:
    with pytest.raises(MilvusError) as caught:
        user_admin.run(engine, cmd)  # type: ignore[arg-type]
    return caught.value


def test_commands_on_a_catalog(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    try:
        added = json.loads(user_admin.run(engine, "user add alice readonly on c1 expires 1d"))
        assert tokens.well_formed(added["token"])
        assert (added["user"], added["role"], added["collection"]) == ("alice", "readonly", "c1")
        assert added["expires"] != "never"
        second = json.loads(user_admin.run(engine, "user token alice"))
        assert second["token"] != added["token"] and second["expires"] == "never"
        third = _refused(engine, "user token alice")
        assert third.code == ErrorCode.ILLEGAL_ARGUMENT and "2 live tokens" in third.reason

        listed = user_admin.run(engine, "user list")
        assert added["token"] not in listed and second["token"] not in listed
        (alice,) = json.loads(listed)["users"]
        assert alice["role"] == "none" and alice["grants"] == {"c1": "readonly"}
        assert [t["id"] for t in alice["tokens"]] == [added["token_id"], second["token_id"]]
        assert alice["tokens"][0]["fingerprint"] == tokens.fingerprint(tokens.token_hash(added["token"]))

        json.loads(user_admin.run(engine, "user grant alice readwrite"))
        json.loads(user_admin.run(engine, "user revoke alice on c1"))
        (alice,) = json.loads(user_admin.run(engine, "user list"))["users"]
        assert alice["role"] == "readwrite" and alice["grants"] == {}

        revoked = json.loads(user_admin.run(engine, "user revoke-token alice oldest"))
        assert revoked == {"user": "alice", "revoked_token_id": added["token_id"]}
        assert _refused(engine, f"user revoke-token alice {added['token_id']}").code == ErrorCode.ILLEGAL_ARGUMENT

        assert _refused(engine, "user add alice admin").code == ErrorCode.ILLEGAL_ARGUMENT  # exists already
        assert json.loads(user_admin.run(engine, "user remove alice")) == {"user": "alice", "removed": True}
        for cmd in ("user remove alice", "user grant alice admin", "user token alice"):
            refused = _refused(engine, cmd)
            assert refused.code == ErrorCode.ILLEGAL_ARGUMENT and "no user 'alice'" in refused.reason
        assert json.loads(user_admin.run(engine, "user list")) == {"users": []}

        bad = _refused(engine, "user add alice root")
        assert bad.code == ErrorCode.ILLEGAL_ARGUMENT and "Syntax: user list" in bad.reason
        assert json.loads(user_admin.run(engine, "user list")) == {"users": []}  # nothing changed
    finally:
        engine.dispose()


def test_a_token_in_a_command_is_refused_and_never_repeated() -> None:
    token = tokens.new_token()
    for cmd in (f"user add {token} readonly", f"user remove {token}", f"user add a readonly on {token}",
                f"user list {token}"):
        parsed = parse_user_command(cmd)
        assert isinstance(parsed, Invalid) and "form of one" in parsed.reason
        assert token not in parsed.reason and token[5:] not in parsed.reason
        assert command_of("Cmd", milvus_pb2.Command(cmd=cmd)) == "user (invalid)"


def test_the_audit_names_a_command_without_its_values() -> None:
    def of(cmd: str) -> str:
        return command_of("Cmd", milvus_pb2.Command(cmd=cmd))

    assert of("user add alice admin expires 90d") == "user add alice"
    assert of("user list") == "user list"
    assert of("user add alice superuser") == "user (invalid)"
    assert of("set_config general.meta_uri mysql://u:secret@h/db") == "set_config general.meta_uri"
    assert command_of("HasCollection", milvus_pb2.CollectionName(collection_name="c")) == ""
    line = json.loads(AuditRecord("t", "user:root", "Cmd", "admin", "", "", 0, "p", command="user add a").line())
    assert line["command"] == "user add a"
    assert "command" not in json.loads(AuditRecord("t", "user:root", "DropCollection", "ddl", "c", "", 0, "p").line())


@pytest.mark.parametrize(("argv", "expected"), [
    (["list"], "user list"),
    (["add", "app", "--role", "readwrite", "--collection", "c1", "--expires", "90d"],
     "user add app readwrite on c1 expires 90d"),
    (["add", "app", "--role", "admin"], "user add app admin"),
    (["grant", "app", "--role", "none", "--collection", "c1"], "user grant app none on c1"),
    (["token", "app", "--expires", "12h"], "user token app expires 12h"),
    (["revoke-token", "app", "--id", "4"], "user revoke-token app 4"),
    (["revoke-token", "app", "--oldest"], "user revoke-token app oldest"),
    (["remove", "app"], "user remove app"),
])
def test_the_cli_builds_commands_the_server_reads(argv: list[str], expected: str) -> None:
    args = users_cli._parser().parse_args([*argv, "--uri", "127.0.0.1:1"])
    text = users_remote.command_text(args)
    assert text == expected
    assert isinstance(parse_user_command(text), UserCommand)
