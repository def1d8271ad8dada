"""Token authentication end to end: a standalone node (also one with two worker processes) and a small cluster
behind the proxy, all with ``--allow-anonymous none``. Each role x each RPC class over gRPC and REST: allowed
calls work, refused ones answer PERMISSION_DENIED (HTTP 403 with the 1.1 error body) and change nothing (checked
after). Wrong, expired and missing tokens; a removed user is refused within a deadline; tokens never appear in
replies or logs; bad headers never stop a process from answering. Through the proxy the caller's token goes on to
the nodes (no mTLS here), so searches on the read nodes work for a reader only because the token was
forwarded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.catalog_schema import make_engine
from milvus_wire import milvus_pb2
from tests.support import http
from tests.support.cluster import LocalCluster
from tests.support.http import HttpReply
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for

DIM = 4
BASE = "base"
ROLES = ("admin", "readwrite", "readonly", "scoped", "anonymous")
CLASSES = ("read", "write", "ddl", "admin")
ALLOWED = {"admin": set(CLASSES), "readwrite": {"read", "write", "ddl"}, "readonly": {"read"},
           "scoped": {"read", "write"}, "anonymous": set()}
PERMISSION_DENIED = 3


@dataclass
class Deployment:
    name: str
    stub: Any  # the MilvusService stub clients use (the node, or the proxy)
    http_port: int
    engine: Any  # the catalog's SQLAlchemy engine (user management)
    tokens: dict[str, str]
    logs: Callable[[], str]
    processes: list[Any] = field(default_factory=list)
    nearest: int = -1  # the id of the row a read's query is nearest to
    node: Any = None  # a node's own stub (in the cluster: the read node behind the proxy)
    node_address: str = ""
    address: str = ""  # where clients connect (the node, or the proxy)

    def md(self, role: str) -> tuple[tuple[str, str], ...]:
        token = self.tokens.get(role)
        return (("authorization", f"Bearer {token}"),) if token else ()

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}


def _users(meta_uri: str) -> tuple[Any, dict[str, str]]:
    engine = make_engine(meta_uri)
    made = {
        "admin": users_db.add_user(engine, "root", Role.ADMIN).token,
        "readwrite": users_db.add_user(engine, "writer", Role.READWRITE).token,
        "readonly": users_db.add_user(engine, "reader", Role.READONLY).token,
        "scoped": users_db.add_user(engine, "owner", Role.READWRITE, collection=BASE).token,
    }
    return engine, made


def _seed(dep: Deployment) -> None:
    md = dep.md("admin")
    status = dep.stub.CreateCollection(milvus_pb2.CollectionSchema(collection_name=BASE, dimension=DIM,
                                                                   index_file_size=1024, metric_type=1),
                                       metadata=md)
    assert status.error_code == 0, status
    rows = [milvus_pb2.RowRecord(float_data=[float(i), 1.0, 2.0, 3.0]) for i in range(10)]
    ids = dep.stub.Insert(milvus_pb2.InsertParam(collection_name=BASE, row_record_array=rows), metadata=md)
    assert ids.status.error_code == 0, ids.status
    dep.nearest = int(ids.vector_id_array[0])
    assert dep.stub.Flush(milvus_pb2.FlushParam(collection_name_array=[BASE]), metadata=md).error_code == 0


@pytest.fixture(scope="module", params=["standalone", "workers", "cluster"])
def dep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``workers``: a standalone node with two worker processes (REST calls, one connection each, land on
    either; a secondary forwards writes and DDL to the primary with the caller's token)."""
    root: Path = tmp_path_factory.mktemp(f"auth-{request.param}")
    strict = ["--allow-anonymous", "none"]
    if request.param in ("standalone", "workers"):
        meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
        engine, made = _users(meta_uri)
        workers = ["--workers", "2"] if request.param == "workers" else []
        node = NodeProcess(root / "n", ["--auto-flush-interval", "0", *workers, *strict], meta_uri=meta_uri,
                           http=True).start()
        deployment = Deployment(request.param, node.stub(), node.http_port, engine, made,
                                lambda: node.log_path.read_text(errors="replace"), [node], node=node.stub(),
                                node_address=node.address, address=node.address)
    else:
        cluster = LocalCluster(root, readers=1, node_args=strict, proxy_args=strict)
        engine, made = _users(cluster.meta_uri)
        cluster.proxy.http = True
        cluster.start()

        def logs() -> str:
            texts = [n.log_path.read_text(errors="replace") for n in cluster.nodes]
            return "\n".join([*texts, (cluster.proxy.workdir / "proxy.log").read_text(errors="replace")])

        deployment = Deployment("cluster", cluster.stub(), cluster.proxy.http_port, engine, made, logs, [cluster],
                                node=cluster.readers[0].stub(), node_address=cluster.readers[0].address,
                                address=cluster.proxy.address)
    try:
        _seed(deployment)
        yield deployment
    finally:
        for proc in deployment.processes:
            proc.stop()
        engine.dispose()




def _count(dep: Deployment) -> int:
    md = dep.md("admin")
    assert dep.stub.Flush(milvus_pb2.FlushParam(collection_name_array=[BASE]), metadata=md).error_code == 0
    reply = dep.stub.CountCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=md)
    assert reply.status.error_code == 0, reply.status
    return int(reply.collection_row_count)


def _exists(dep: Deployment, name: str) -> bool:
    reply = dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=name), metadata=dep.md("admin"))
    assert reply.status.error_code == 0, reply.status
    return bool(reply.bool_reply)


def _config(dep: Deployment, key: str) -> str:
    reply = dep.stub.Cmd(milvus_pb2.Command(cmd=f"get_config {key}"), metadata=dep.md("admin"))
    assert reply.status.error_code == 0, reply.status
    return str(reply.string_reply)


def _search(dep: Deployment, role: str) -> Any:
    query = milvus_pb2.SearchParam(collection_name=BASE, topk=3,
                                   query_record_array=[milvus_pb2.RowRecord(float_data=[0.0, 1.0, 2.0, 3.0])],
                                   extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
    return dep.stub.Search(query, metadata=dep.md(role))


def _grpc_call(dep: Deployment, role: str, cls: str, tag: str) -> tuple[int, str]:
    """Run one call of ``cls``; (status code, reason)."""
    md = dep.md(role)
    if cls == "read":
        reply = _search(dep, role)
        if reply.status.error_code == 0:
            assert list(reply.ids)[:1] == [dep.nearest]  # the exact nearest row
        return reply.status.error_code, reply.status.reason
    if cls == "write":
        rows = [milvus_pb2.RowRecord(float_data=[9.0, 9.0, 9.0, 9.0])]
        ids = dep.stub.Insert(milvus_pb2.InsertParam(collection_name=BASE, row_record_array=rows), metadata=md)
        return ids.status.error_code, ids.status.reason
    if cls == "ddl":
        status = dep.stub.CreateCollection(milvus_pb2.CollectionSchema(
            collection_name=f"ddl_{tag}", dimension=DIM, index_file_size=1024, metric_type=1), metadata=md)
        return status.error_code, status.reason
    reply = dep.stub.Cmd(milvus_pb2.Command(cmd=f"set_config engine_config.use_blas_threshold {tag}"), metadata=md)
    return reply.status.error_code, reply.status.reason


def _rest_call(dep: Deployment, role: str, cls: str, tag: str) -> HttpReply:
    headers = dep.headers(role)
    if cls == "read":
        return http.request(dep.http_port, "GET", f"/collections/{BASE}", headers=headers)
    if cls == "write":
        return http.request(dep.http_port, "POST", f"/collections/{BASE}/vectors", {"vectors": [[8.0, 8.0, 8.0, 8.0]]},
                       headers=headers)
    if cls == "ddl":
        return http.request(dep.http_port, "POST", "/collections", {"collection_name": f"ddl_{tag}", "dimension": DIM,
                                                               "index_file_size": 1024, "metric_type": "L2"},
                       headers=headers)
    return http.request(dep.http_port, "PUT", "/config/advanced", {"cpu_cache_capacity": int(tag[-1]) + 1},
                   headers=headers)


def _state(dep: Deployment, cls: str, tag: str) -> Any:
    if cls == "write":
        return _count(dep)
    if cls == "ddl":
        return _exists(dep, f"ddl_{tag}")
    if cls == "admin":
        return (_config(dep, "engine_config.use_blas_threshold"), _config(dep, "cache.cache_size"))
    return None


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_role_by_class_matrix(dep: Deployment, transport: str) -> None:
    seen_reasons = []
    for n_role, role in enumerate(ROLES):
        for cls in CLASSES:
            tag = f"{transport}_{role}" if cls == "ddl" else f"{2000 + n_role * 10 + CLASSES.index(cls)}"
            before = _state(dep, cls, tag)
            allowed = cls in ALLOWED[role]
            if transport == "grpc":
                code, reason = _grpc_call(dep, role, cls, tag)
                assert (code == 0) == allowed and (allowed or code == PERMISSION_DENIED), (role, cls, code, reason)
            else:
                reply = _rest_call(dep, role, cls, tag)
                if allowed:
                    assert reply.status in (200, 201), (role, cls, reply)
                else:
                    assert reply.status == 403, (role, cls, reply)
                    body = reply.json()
                    assert body["code"] == PERMISSION_DENIED and body["message"].startswith("Permission denied")
                    reason = body["message"]
            if not allowed:
                seen_reasons.append(reason)
                assert _state(dep, cls, tag) == before, f"{role} {cls}: a refused call changed something"
            elif cls == "write":
                assert _state(dep, cls, tag) == before + 1
            elif cls == "ddl":
                assert _state(dep, cls, tag) and not before
    for reason in seen_reasons:
        assert not any(token in reason for token in dep.tokens.values())


def test_scoped_user_sees_only_its_collections(dep: Deployment) -> None:
    md = dep.md("admin")
    assert dep.stub.CreateCollection(milvus_pb2.CollectionSchema(collection_name="hidden", dimension=DIM,
                                                                 index_file_size=1024, metric_type=1),
                                     metadata=md).error_code == 0
    everything = dep.stub.ShowCollections(milvus_pb2.Command(), metadata=md)
    assert {BASE, "hidden"} <= set(everything.collection_names)
    scoped = dep.stub.ShowCollections(milvus_pb2.Command(), metadata=dep.md("scoped"))
    assert scoped.status.error_code == 0 and list(scoped.collection_names) == [BASE]
    listed = http.request(dep.http_port, "GET", "/collections", headers=dep.headers("scoped")).json()
    assert [c["collection_name"] for c in listed["collections"]] == [BASE]
    refused = dep.stub.CountCollection(milvus_pb2.CollectionName(collection_name="hidden"),
                                       metadata=dep.md("scoped"))
    assert refused.status.error_code == PERMISSION_DENIED


def test_wrong_expired_and_missing_tokens(dep: Deployment) -> None:
    expired = users_db.add_user(dep.engine, f"late_{dep.name}", Role.ADMIN, expires_in=1,
                                now=time.time() - 60).token
    real = dep.tokens["admin"]
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    cases = {"wrong": f"Bearer {flipped}", "expired": f"Bearer {expired}", "not bearer": f"Basic {real}",
             "garbage": "Bearer not-a-token"}
    for what, header in cases.items():
        status = dep.stub.CreateCollection(milvus_pb2.CollectionSchema(
            collection_name=f"never_{what.replace(' ', '_')}", dimension=DIM, index_file_size=1024, metric_type=1),
            metadata=(("authorization", header),))
        assert status.error_code == PERMISSION_DENIED, (what, status)
        assert real not in status.reason and expired not in status.reason and flipped not in status.reason
        rest = http.request(dep.http_port, "GET", "/collections", headers={"Authorization": header})
        assert rest.status == 403 and rest.json()["code"] == PERMISSION_DENIED
        assert real.encode() not in rest.body and expired.encode() not in rest.body

    def expired_reason() -> bool:  # once the node has read the new user, it says why its token fails
        reply = dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE),
                                       metadata=(("authorization", f"Bearer {expired}"),))
        assert reply.status.error_code == PERMISSION_DENIED
        return "expired" in reply.status.reason

    poll_for(expired_reason, timeout=10, what="an expired token to be refused as expired")
    missing = dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE))
    assert missing.status.error_code == PERMISSION_DENIED and "Bearer" in missing.status.reason
    assert not any(_exists(dep, f"never_{w.replace(' ', '_')}") for w in cases)
    # needs no token: the worker list every proxy asks each node, and the health service
    workers = dep.node.Cmd(milvus_pb2.Command(cmd="mishards_workers"))
    assert workers.status.error_code == 0 and "workers" in workers.string_reply
    with grpc.insecure_channel(dep.node_address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_removed_user_is_refused_within_a_deadline(dep: Deployment) -> None:
    name = f"temp_{dep.name}"
    token = users_db.add_user(dep.engine, name, Role.READONLY).token
    md = (("authorization", f"Bearer {token}"),)

    def status() -> int:
        return int(dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=md)
                   .status.error_code)

    poll_for(lambda: status() == 0, timeout=10, what="a new user's token to work")
    users_db.remove_user(dep.engine, name)
    started = time.monotonic()
    poll_for(lambda: status() == PERMISSION_DENIED, timeout=10, what="a removed user to be refused")
    assert time.monotonic() - started < 10


def test_bad_headers_never_stop_the_process(dep: Deployment) -> None:
    bad = ["Bearer " + "x" * 6000, "Bearer " + "x" * 70_000, "Bearer " + "y" * 1_000_000, "Bearer \t",
           "bearer mshd_" + "A" * 43, "Bearer mshd_" + "é".encode().hex() * 10]
    for header in bad:
        try:
            reply = dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE),
                                           metadata=(("authorization", header),))
        except grpc.RpcError as exc:  # gRPC itself may refuse an oversized header: never the server crashing
            assert exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL), exc
        else:
            assert reply.status.error_code == PERMISSION_DENIED
    many = (*((f"x-pad-{i}", "v" * 40) for i in range(500)), ("authorization", "Bearer " + "A" * 48))
    try:  # more metadata than gRPC takes: refused by the transport, never reaching or stopping the server
        reply = dep.stub.HasCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=many)
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL), exc
    else:
        assert reply.status.error_code == PERMISSION_DENIED
    for raw in ["Bearer 🔑🔑", "Bearer " + "ü" * 3000, "Bearer mshd_\u202e" + "A" * 42, "\x7f\x01",
                "Bearer " + "z" * 1_000_000]:
        rest = http.request(dep.http_port, "GET", "/collections",
                       headers={"Authorization": raw.encode("utf-8").decode("latin-1")})
        assert rest.status in (400, 403), rest
    # still answering, and still right
    assert _count(dep) >= 10
    assert http.request(dep.http_port, "GET", f"/collections/{BASE}", headers=dep.headers("readonly")).status == 200


def test_tokens_never_reach_logs_and_audit_lines_are_written(dep: Deployment) -> None:
    md = dep.md("readwrite")
    assert dep.stub.CreateCollection(milvus_pb2.CollectionSchema(collection_name="audited", dimension=DIM,
                                                                 index_file_size=1024, metric_type=1),
                                     metadata=md).error_code == 0
    assert dep.stub.DropCollection(milvus_pb2.CollectionName(collection_name="audited"), metadata=md).error_code == 0
    refused = dep.stub.DropCollection(milvus_pb2.CollectionName(collection_name=BASE), metadata=dep.md("readonly"))
    assert refused.error_code == PERMISSION_DENIED and _exists(dep, BASE)

    def audited() -> str:
        text = dep.logs()
        return text if '"rpc":"DropCollection"' in text else ""

    text = poll_for(audited, timeout=5, what="the audit line of a DropCollection")
    assert '"who":"user:writer","rpc":"DropCollection","rpc_class":"ddl","collection":"audited"' in text
    assert '"result":3' in text  # refusals are audited too
    for token in dep.tokens.values():
        assert token not in text and token[5:] not in text


def test_nodes_check_tokens_themselves(dep: Deployment) -> None:
    """Behind the proxy (no mTLS here) a read node refuses a call without a token: the searches of the matrix
    reached it only because the proxy passed the caller's token on."""
    name = milvus_pb2.CollectionName(collection_name=BASE)
    assert dep.node.CountCollection(name).status.error_code == PERMISSION_DENIED
    assert dep.node.CountCollection(name, metadata=dep.md("readonly")).status.error_code == 0
    assert dep.node.DropCollection(name, metadata=dep.md("readonly")).error_code == PERMISSION_DENIED
    assert _exists(dep, BASE)


def test_config_and_stats_hold_no_token(dep: Deployment) -> None:
    for cmd in ("get_config *", "mishards_stats", "status"):
        reply = dep.stub.Cmd(milvus_pb2.Command(cmd=cmd), metadata=dep.md("admin"))
        assert reply.status.error_code == 0, (cmd, reply.status)
        assert not any(t in reply.string_reply or t[5:] in reply.string_reply for t in dep.tokens.values())


def test_the_api_description_needs_no_token_and_names_the_scheme(dep: Deployment) -> None:
    described = http.request(dep.http_port, "GET", "/openapi.json")
    assert described.status == 200
    assert described.json()["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_project_client_sends_its_token(dep: Deployment) -> None:
    from mishards_client import Milvus

    host, _, port = dep.address.rpartition(":")
    with_token = Milvus(host, port, token=dep.tokens["readonly"])
    without = Milvus(host, port)
    try:
        status, exists = with_token.has_collection(BASE)
        assert status.OK() and exists
        status, _ = without.has_collection(BASE)
        assert status.code == PERMISSION_DENIED
        status = with_token.drop_collection(BASE)
        assert status.code == PERMISSION_DENIED and _exists(dep, BASE)
    finally:
        with_token.close()
        without.close()
