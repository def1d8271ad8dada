"""User management through ``Cmd`` on real processes: a cluster (writer, read node, proxy with REST) on a fresh
catalog with the default anonymous role, and a standalone node with two worker processes.

The first admin is made by an anonymous caller (the bootstrap window: no user yet), which closes the window. An
admin then manages users over gRPC through the proxy, over REST, and with ``mishards user --uri``; readwrite,
readonly and anonymous callers are refused with nothing changed; a new token works (once the snapshot reloads),
a revoked token and a removed user stop working; a read node answers the "read-only node" refusal; bad input gets
ILLEGAL_ARGUMENT; on a multi-worker node every worker serves the commands (a secondary forwards them); a stock
pymilvus 1.1.2 client makes the first admin with ``Milvus._cmd`` and is refused afterwards; with two rw nodes
under catalog election the proxy reaches the elected one and the standby refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from coordinator.catalog import Catalog
from milvus_wire import milvus_pb2
from tests.support import http
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import ROOT, NodeProcess
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_ports, poll_for

PERMISSION_DENIED = 3
ILLEGAL_ARGUMENT = 5
BASE = "owned"


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def cmd(stub: Any, text: str, token: str = "") -> Any:
    return stub.Cmd(milvus_pb2.Command(cmd=text), metadata=_md(token), timeout=30)


def ok(stub: Any, text: str, token: str) -> Any:
    reply = cmd(stub, text, token)
    assert reply.status.error_code == 0, (text, reply.status)
    return json.loads(reply.string_reply)


def rest(port: int, text: str, token: str = "") -> http.HttpReply:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(port, "GET", "/system/" + quote(text, safe=""), headers=headers)


def can_read(stub: Any, token: str) -> int:
    reply = stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=_md(token), timeout=30)
    return int(reply.status.error_code)


@dataclass
class Deployment:
    cluster: LocalCluster
    root_token: str

    @property
    def stub(self) -> Any:
        return self.cluster.stub()

    def users(self) -> dict[str, Any]:
        return {u["name"]: u for u in ok(self.stub, "user list", self.root_token)["users"]}

    def logs(self) -> str:
        texts = [n.log_path.read_text(errors="replace") for n in self.cluster.nodes]
        return "\n".join([*texts, (self.cluster.proxy.workdir / "proxy.log").read_text(errors="replace")])


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    cluster = LocalCluster(tmp_path_factory.mktemp("useradmin"), readers=1)
    cluster.proxy.http = True
    cluster.start()
    try:
        stub = cluster.stub()
        # The catalog holds no user: an anonymous caller (readwrite by default) may make the first admin.
        root = poll_for(lambda: cmd(stub, "user add root admin"), timeout=10,
                        what="the first admin to be added").string_reply
        created = json.loads(root)
        assert created["user"] == "root" and created["role"] == "admin"
        schema = milvus_pb2.CollectionSchema(collection_name=BASE, dimension=4, index_file_size=1024, metric_type=1)
        poll_for(lambda: stub.CreateCollection(schema, metadata=_md(created["token"])).error_code == 0, timeout=10,
                 what="the admin's token to work")
        yield Deployment(cluster, created["token"])
    finally:
        cluster.stop()


def test_the_first_admin_closes_the_anonymous_window(dep: Deployment) -> None:
    poll_for(lambda: cmd(dep.stub, "user list").status.error_code == PERMISSION_DENIED, timeout=10,
             what="anonymous user management to be refused once a user exists")
    refused = cmd(dep.stub, "user add intruder admin")
    assert refused.status.error_code == PERMISSION_DENIED and not refused.string_reply
    assert "intruder" not in dep.users()
    assert can_read(dep.stub, "") == 0  # anonymous readwrite still reads


def test_admin_manages_users_over_grpc_through_the_proxy(dep: Deployment) -> None:
    stub, root = dep.stub, dep.root_token
    added = ok(stub, "user add alice readonly", root)
    first = added["token"]
    assert first.startswith("mshd_") and added["expires"] == "never"
    poll_for(lambda: can_read(stub, first) == 0, timeout=10, what="a new token to work")
    drop = stub.DropCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=_md(first))
    assert drop.error_code == PERMISSION_DENIED  # readonly

    ok(stub, "user grant alice readwrite on " + BASE, root)
    assert dep.users()["alice"]["grants"] == {BASE: "readwrite"}
    ok(stub, "user revoke alice on " + BASE, root)
    assert dep.users()["alice"]["grants"] == {}

    second = ok(stub, "user token alice expires 1d", root)
    assert second["token"] != first and second["expires"] != "never"
    third = cmd(stub, "user token alice", root)
    assert third.status.error_code == ILLEGAL_ARGUMENT and "2 live tokens" in third.status.reason
    listed = cmd(stub, "user list", root).string_reply
    assert first not in listed and second["token"] not in listed and root not in listed
    assert [t["id"] for t in dep.users()["alice"]["tokens"]] == [added["token_id"], second["token_id"]]

    assert ok(stub, f"user revoke-token alice {added['token_id']}", root)["revoked_token_id"] == added["token_id"]
    poll_for(lambda: can_read(stub, first) == PERMISSION_DENIED, timeout=10, what="a revoked token to be refused")
    poll_for(lambda: can_read(stub, second["token"]) == 0, timeout=10, what="the second token to work")
    assert ok(stub, "user remove alice", root) == {"user": "alice", "removed": True}
    poll_for(lambda: can_read(stub, second["token"]) == PERMISSION_DENIED, timeout=10,
             what="a removed user to be refused")
    assert "alice" not in dep.users()


def test_admin_manages_users_over_rest(dep: Deployment) -> None:
    port, root = dep.cluster.proxy.http_port, dep.root_token
    added = rest(port, "user add bob readonly", root)
    assert added.status == 200, added.body
    token = json.loads(added.json()["reply"])["token"]

    def listed() -> int:
        return http.request(port, "GET", f"/collections/{BASE}", headers={"Authorization": f"Bearer {token}"}).status

    poll_for(lambda: listed() == 200, timeout=10, what="the token made over REST to work")
    refused = rest(port, "user list", token)  # bob is readonly
    assert refused.status == 403 and refused.json()["code"] == PERMISSION_DENIED
    users = json.loads(rest(port, "user list", root).json()["reply"])["users"]
    assert [u["role"] for u in users if u["name"] == "bob"] == ["readonly"]
    assert token not in rest(port, "user list", root).body.decode()
    bad = rest(port, "user add bob superuser", root)
    assert bad.status != 200 and "role must be one of" in bad.body.decode()
    assert rest(port, "user remove bob", root).status == 200
    poll_for(lambda: listed() == 403, timeout=10, what="a user removed over REST to be refused")


def test_non_admins_are_refused_and_nothing_changes(dep: Deployment) -> None:
    stub, root = dep.stub, dep.root_token
    tokens = {"readwrite": ok(stub, "user add rw readwrite", root)["token"],
              "readonly": ok(stub, "user add ro readonly", root)["token"], "anonymous": ""}
    poll_for(lambda: all(can_read(stub, t) == 0 for t in tokens.values()), timeout=10,
             what="the new tokens to work")
    before = dep.users()
    for who, token in tokens.items():
        for text in ("user add mallory admin", "user grant rw admin", "user token root", "user remove root",
                     "user revoke-token root oldest", "user list"):
            reply = cmd(stub, text, token)
            assert reply.status.error_code == PERMISSION_DENIED, (who, text, reply.status)
            assert reply.string_reply == "" and "admin" in reply.status.reason, (who, reply.status.reason)
        answer = rest(dep.cluster.proxy.http_port, "user add mallory admin", token)
        assert answer.status == 403, (who, answer.body)
    assert dep.users() == before
    ok(stub, "user remove rw", root)
    ok(stub, "user remove ro", root)


def test_bad_input_gets_a_clear_status_and_changes_nothing(dep: Deployment) -> None:
    stub, root = dep.stub, dep.root_token
    before = dep.users()
    cases = {
        "user remove nobody": "no user 'nobody'",
        "user token nobody": "no user 'nobody'",
        "user add carol root": "role must be one of",
        "user add root admin": "exists already",
        "user add \u00e7a\u00e9 readonly": "user name",
        "user grant root readonly on \u00e9t\u00e9": "collection name",
        "user revoke-token root 99999": "no token 99999",
        "user add carol readonly expires forever": "duration",
        "user add " + "x" * 100_000: "at most 1024",
        "user": "needs an action",
    }
    for text, says in cases.items():
        reply = cmd(stub, text, root)
        assert reply.status.error_code == ILLEGAL_ARGUMENT, (text[:40], reply.status)
        assert says in reply.status.reason, (text[:40], reply.status.reason)
    assert dep.users() == before
    assert cmd(stub, "status", root).status.error_code == 0  # still answering


def test_a_read_node_refuses_user_management(dep: Deployment) -> None:
    reader = dep.cluster.readers[0].stub()
    before = dep.users()
    for text in ("user add dave readonly", "user list"):
        reply = cmd(reader, text, dep.root_token)
        assert reply.status.error_code == PERMISSION_DENIED, reply.status
        assert "read-only (ro) node" in reply.status.reason, reply.status.reason
    assert dep.users() == before


def _cli(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MISHARDS_TOKEN": token, "MISHARDS_META_URI": ""}
    return subprocess.run([sys.executable, "-m", "mishards.cli", "user", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_the_cli_manages_users_through_a_server(dep: Deployment) -> None:
    uri = dep.cluster.proxy.address
    added = _cli("add", "erin", "--role", "readonly", "--expires", "2h", "--uri", uri, token=dep.root_token)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("mshd_") and token not in added.stderr
    poll_for(lambda: can_read(dep.stub, token) == 0, timeout=10, what="the CLI's token to work")
    listed = _cli("list", "--uri", uri, token=dep.root_token)
    assert listed.returncode == 0 and "erin\trole readonly" in listed.stdout and token not in listed.stdout
    refused = _cli("remove", "root", "--uri", uri, token=token)
    assert refused.returncode == 1 and "code 3" in refused.stderr and "root" in dep.users()
    removed = _cli("remove", "erin", "--uri", uri, token=dep.root_token)
    assert removed.returncode == 0, removed.stderr
    assert "erin" not in dep.users()
    assert token not in dep.logs() and dep.root_token not in dep.logs()


def test_a_node_with_two_workers_serves_user_commands_on_each(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", ["--workers", "2"], meta_uri=f"sqlite:///{tmp_path / 'meta.sqlite'}",
                       http=True).start()
    try:
        made = rest(node.http_port, "user add root admin")  # bootstrap over REST
        assert made.status == 200, made.body
        root = json.loads(made.json()["reply"])["token"]
        names = [f"w{i}" for i in range(8)]

        def accepted(text: str) -> bool:
            return rest(node.http_port, text, root).status == 200

        for name in names:  # each request on its own connection, to either worker (they share the port)
            # a worker that has not read root yet refuses (changing nothing): the same command again until accepted
            poll_for(partial(accepted, f"user add {name} readonly"), timeout=10, what=f"user add {name} to be accepted")
        listed = json.loads(rest(node.http_port, "user list", root).json()["reply"])["users"]
        assert sorted(u["name"] for u in listed) == sorted(["root", *names])
    finally:
        node.stop()


PYMILVUS_CMD = """
import json, sys
from milvus import Milvus
client = Milvus(host="127.0.0.1", port=sys.argv[1])
status, reply = client._cmd(sys.argv[2])
print(json.dumps({"code": int(status.code), "message": status.message, "reply": reply or ""}))
"""


def _pymilvus_cmd(address: str, text: str) -> dict[str, Any]:
    """``Milvus._cmd(text)`` with the stock pymilvus 1.1.2 client (which sends no token), in a subprocess (its
    generated code needs the pure-Python protobuf runtime)."""
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-c", PYMILVUS_CMD, address.rsplit(":", 1)[1], text],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_stock_pymilvus_client_bootstraps_the_first_admin(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n", [], meta_uri=f"sqlite:///{tmp_path / 'meta.sqlite'}").start()
    try:
        made = _pymilvus_cmd(node.address, "user add root admin")
        assert made["code"] == 0, made
        token = json.loads(made["reply"])["token"]
        stub = node.stub()
        poll_for(lambda: cmd(stub, "user list", token).status.error_code == 0, timeout=10,
                 what="the token made by pymilvus to work")
        poll_for(lambda: cmd(stub, "user list").status.error_code == PERMISSION_DENIED, timeout=10,
                 what="the bootstrap window to close")
        again = _pymilvus_cmd(node.address, "user add other admin")
        assert again["code"] == PERMISSION_DENIED and not again["reply"], again
        assert [u["name"] for u in ok(stub, "user list", token)["users"]] == ["root"]
    finally:
        node.stop()


def test_a_standby_writer_refuses_and_the_proxy_reaches_the_elected_one(tmp_path: Path) -> None:
    meta_uri = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    ports = free_ports(2)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    membership = f"static://{addresses[0]}=rw,{addresses[1]}=rw"
    common = ["--membership", membership, "--election", "catalog", "--election-ttl", "2"]
    writers = [NodeProcess(tmp_path / f"rw{i}", ["--role", "rw", "--port", str(ports[i]), *common],
                           meta_uri=meta_uri, storage=tmp_path / "shared") for i in range(2)]
    proxy = ProxyProcess(tmp_path / "p", membership, ["--meta-uri", meta_uri])
    catalog = Catalog(meta_uri)
    started: list[NodeProcess | ProxyProcess] = []
    try:
        for node in writers:
            started.append(node.start())
        started.append(proxy.start())

        def elected() -> str | None:
            lease = catalog.writer_lease()
            return lease.address if lease is not None and lease.remaining > 0 else None

        writer = poll_for(elected, timeout=30, what="a writer to take the lease")
        standby = next(n for n in writers if n.address != writer)

        def answered(stub: Any, text: str, token: str = "", says: str = "") -> Any:
            reply = cmd(stub, text, token)
            done = says in reply.status.reason if says else reply.status.error_code == 0
            return reply if done else None

        made = poll_for(lambda: answered(proxy.stub(), "user add root admin"), timeout=30,
                        what="the proxy to reach the elected writer")
        root = json.loads(made.string_reply)["token"]
        # once the standby has read root, it refuses as a standby (before: as an unknown token); nothing changes
        refused = poll_for(lambda: answered(standby.stub(), "user add other readonly", root, "standby writer"),
                           timeout=10, what="the standby's refusal")
        assert refused.status.error_code == PERMISSION_DENIED
        listed = poll_for(lambda: answered(proxy.stub(), "user list", root), timeout=10,
                          what="the admin's token to work through the proxy")
        assert [u["name"] for u in json.loads(listed.string_reply)["users"]] == ["root"]
    finally:
        catalog.engine.dispose()
        for proc in reversed(started):
            proc.stop()
