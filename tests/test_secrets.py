"""Secrets never leave the processes: a cluster with every security part on (a MariaDB catalog behind a password,
cluster mTLS, edge TLS on the proxy's gRPC and REST ports, tokens with ``--allow-anonymous none``, tracing to
an OTLP collector, metrics) does real work, is refused, and is asked about itself; then every process log, every
/metrics page, every exported trace byte, every ``get_config`` answer (gRPC and REST) and the output of
``mishards status`` and ``mishards user`` are searched for the tokens (used, refused, and issued by the CLI and
through ``Cmd`` over gRPC, REST and ``mishards user --uri``),
the catalog's password and the private keys' contents. Each surface is also checked to hold what it should (the
masked catalog URI, spans of both the proxy and the nodes, audit lines), so an empty surface cannot pass."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import numpy as np
import pytest

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.auth.tokens import new_token
from coordinator.catalog_schema import make_engine
from milvus_wire import milvus_pb2, milvus_pb2_grpc
from tests.support.certs import Issued, TestPki, issue, make_pki
from tests.support.mariadb import MariaDBServer
from tests.support.nodeproc import ROOT, NodeProcess
from tests.support.otlp import RawCollector, running_collector
from tests.support.proxyproc import ProxyProcess
from tests.support.waiting import free_port, poll_for

DIM = 8
PERMISSION_DENIED = 3
USER = "vault"


@dataclass
class Secured:
    proxy: ProxyProcess
    nodes: list[NodeProcess]
    collector: RawCollector
    edge: TestPki
    cluster: TestPki
    client_cert: Issued
    meta_uri: str
    password: str
    membership: str
    tokens: dict[str, str]
    keys: list[Path]
    outputs: dict[str, str] = field(default_factory=dict)  # what the CLI commands printed, by command

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[who]}"),)

    def stub(self) -> Any:
        credentials = grpc.ssl_channel_credentials(self.edge.ca.pem)
        return milvus_pb2_grpc.MilvusServiceStub(grpc.secure_channel(self.proxy.address, credentials))

    def https(self, method: str, path: str, who: str = "", body: Any = None) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.edge.ca.cert_path))
        conn = http.client.HTTPSConnection("127.0.0.1", self.proxy.http_port, timeout=30, context=context)
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def secrets(self) -> dict[str, str]:
        """Every secret by name: tokens (also without their prefix), the password, each key's PEM lines."""
        found = {f"token {k}": v for k, v in self.tokens.items()}
        found |= {f"token {k} body": v[5:] for k, v in self.tokens.items()}
        found["catalog password"] = self.password
        for key in self.keys:
            lines = [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
            found |= {f"{key.name} line {n}": line for n, line in enumerate(lines) if len(line) >= 16}
        return found


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mishards.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=full_env)


def _catalog(db: MariaDBServer, password: str) -> str:
    conn = db.connect_root()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (USER, password))
            cur.execute("GRANT ALL PRIVILEGES ON `milvus`.* TO %s@'127.0.0.1'", (USER,))
    finally:
        conn.close()
    return f"mysql+pymysql://{USER}:{password}@127.0.0.1:{db.port}/milvus?charset=utf8mb4"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secrets")
    password = "pw" + secrets.token_hex(12)
    edge = make_pki(root / "edge", "edge")
    cluster = make_pki(root / "cluster", "cluster")
    node_cert = issue(cluster.ca, root / "cluster", "node")
    with MariaDBServer() as db, running_collector() as (collector, endpoint):
        meta_uri = _catalog(db, password)
        engine = make_engine(meta_uri)
        try:
            tokens = {"admin": users_db.add_user(engine, "root", Role.ADMIN).token,
                      "reader": users_db.add_user(engine, "reader", Role.READONLY).token,
                      "stranger": new_token()}  # well formed, never issued
        finally:
            engine.dispose()
        ports = [free_port(), free_port()]
        addresses = [f"127.0.0.1:{p}" for p in ports]
        membership = f"static://{addresses[0]}=rw,{addresses[1]}=ro"
        cluster_args = ["--cluster-tls-cert", str(node_cert.cert_path), "--cluster-tls-key",
                        str(node_cert.key_path), "--cluster-tls-ca", str(cluster.ca.cert_path)]
        common = ["--membership", membership, "--allow-anonymous", "none", "--otlp-endpoint", endpoint,
                  "--metrics-port", "-1", *cluster_args]
        storage = root / "shared"
        # the writer reads the catalog URI from the environment, the reader from its command line
        nodes = [NodeProcess(root / "w", ["--role", "rw", "--port", str(ports[0]), "--auto-flush-interval", "0",
                                          *common], env={"MISHARDS_NODE_META_URI": meta_uri}, storage=storage),
                 NodeProcess(root / "r", ["--role", "ro", "--port", str(ports[1]), *common], meta_uri=meta_uri,
                             storage=storage)]
        proxy = ProxyProcess(root / "p", membership, [
            "--meta-uri", meta_uri, "--allow-anonymous", "none", "--otlp-endpoint", endpoint, "--metrics-port", "-1",
            "--cluster-tls-cert", str(cluster.client.cert_path), "--cluster-tls-key", str(cluster.client.key_path),
            "--cluster-tls-ca", str(cluster.ca.cert_path),
            "--tls-cert", str(edge.server.cert_path), "--tls-key", str(edge.server.key_path)], http=True)
        started: list[NodeProcess | ProxyProcess] = []
        try:
            processes: list[NodeProcess | ProxyProcess] = [*nodes, proxy]
            for proc in processes:
                proc.start()
                started.append(proc)
            yield Secured(proxy, nodes, collector, edge, cluster, cluster.client, meta_uri, password, membership,
                          tokens, [edge.server.key_path, cluster.client.key_path, node_cert.key_path])
        finally:
            for proc in reversed(started):
                proc.stop()


@pytest.fixture(scope="module")
def worked(secured: Secured) -> Secured:
    """The deployment after real work, refusals, questions about itself and the user CLI."""
    stub = secured.stub()
    admin = secured.md("admin")
    name = "guarded"
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1024, metric_type=1)
    assert stub.CreateCollection(schema, metadata=admin, timeout=30).error_code == 0
    x = np.random.default_rng(16).random((50, DIM), dtype=np.float32)
    rows = [milvus_pb2.RowRecord(float_data=v) for v in x.tolist()]
    ids = stub.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=rows), metadata=admin, timeout=30)
    assert ids.status.error_code == 0, ids.status
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), metadata=admin, timeout=30).error_code == 0
    query = milvus_pb2.SearchParam(collection_name=name, topk=3, query_record_array=rows[:2])
    found = stub.Search(query, metadata=secured.md("reader"), timeout=30)
    assert found.status.error_code == 0 and list(found.ids)[::3] == list(ids.vector_id_array)[:2], found.status
    deleted = stub.DeleteByID(milvus_pb2.DeleteByIDParam(collection_name=name, id_array=ids.vector_id_array[:1]),
                              metadata=admin, timeout=30)
    assert deleted.error_code == 0, deleted
    # refused: a reader's DDL, a token never issued, a call without a token
    refused = stub.DropCollection(milvus_pb2.CollectionName(collection_name=name), metadata=secured.md("reader"))
    assert refused.error_code == PERMISSION_DENIED
    assert stub.HasCollection(milvus_pb2.CollectionName(collection_name=name),
                              metadata=secured.md("stranger")).status.error_code == PERMISSION_DENIED
    assert stub.HasCollection(milvus_pb2.CollectionName(collection_name=name)).status.error_code == PERMISSION_DENIED
    status, _ = secured.https("GET", "/collections", "stranger")
    assert status == 403
    status, _ = secured.https("GET", f"/collections/{name}", "reader")
    assert status == 200
    # the user CLI, as an operator runs it (the catalog URI from the environment)
    env = {"MISHARDS_META_URI": secured.meta_uri}
    added = _cli("user", "add", "cli-user", "--role", "readonly", env=env)
    assert added.returncode == 0, added.stderr
    secured.tokens["cli"] = added.stdout.strip()
    assert users_db_token_works(secured, secured.tokens["cli"])
    listed = _cli("user", "list", env=env)
    assert listed.returncode == 0 and "cli-user" in listed.stdout, listed.stderr
    granted = _cli("user", "grant", "cli-user", "--role", "readwrite", "--collection", name, env=env)
    assert granted.returncode == 0, granted.stderr
    secured.outputs |= {"user add (stderr)": added.stderr, "user list": listed.stdout + listed.stderr,
                        "user grant": granted.stdout + granted.stderr}
    # user management through Cmd: gRPC through the proxy, REST, and the CLI with --uri over edge TLS
    made = stub.Cmd(milvus_pb2.Command(cmd="user add cmd-user readonly"), metadata=admin, timeout=30)
    assert made.status.error_code == 0, made.status
    secured.tokens["cmd"] = json.loads(made.string_reply)["token"]
    status, body = secured.https("GET", "/system/" + quote("user token cmd-user", safe=""), "admin")
    assert status == 200, body
    secured.tokens["cmd rest"] = json.loads(json.loads(body)["reply"])["token"]
    remote = _cli("user", "token", "cli-user", "--uri", secured.proxy.address, "--tls-ca",
                  str(secured.edge.ca.cert_path), env={"MISHARDS_TOKEN": secured.tokens["admin"]})
    assert remote.returncode == 0, remote.stderr
    secured.tokens["cli remote"] = remote.stdout.strip()
    denied = stub.Cmd(milvus_pb2.Command(cmd="user add cmd-intruder admin"), metadata=secured.md("reader"))
    assert denied.status.error_code == PERMISSION_DENIED and not denied.string_reply
    listed_cmd = stub.Cmd(milvus_pb2.Command(cmd="user list"), metadata=admin, timeout=30)
    assert listed_cmd.status.error_code == 0 and "cmd-user" in listed_cmd.string_reply
    assert users_db_token_works(secured, secured.tokens["cmd"])
    assert users_db_token_works(secured, secured.tokens["cli remote"])
    secured.outputs |= {"user token --uri (stderr)": remote.stderr, "user list (Cmd)": listed_cmd.string_reply}
    # a bad catalog password: the error names the catalog, not the password tried
    wrong = secured.meta_uri.replace(secured.password, secured.password[::-1])
    failed = _cli("user", "list", "--meta-uri", wrong)
    assert failed.returncode != 0
    secured.outputs["user list, wrong password"] = failed.stdout + failed.stderr
    secured.outputs["wrong password"] = secured.password[::-1]
    return secured


def users_db_token_works(secured: Secured, token: str) -> bool:
    stub = secured.stub()

    def allowed() -> bool:
        reply = stub.HasCollection(milvus_pb2.CollectionName(collection_name="guarded"),
                                   metadata=(("authorization", f"Bearer {token}"),))
        return reply.status.error_code == 0

    poll_for(allowed, timeout=10, what="the CLI's new token to be accepted")
    return True


def _leaks(secured: Secured, text: str) -> list[str]:
    return [what for what, value in secured.secrets().items() if value in text]


def test_the_user_cli_prints_a_new_token_once_on_standard_output(worked: Secured) -> None:
    token = worked.tokens["cli"]
    assert token.startswith("mshd_") and len(token) == 48 and "\n" not in token
    printed = [text for what, text in worked.outputs.items() if what != "wrong password"]
    assert not _leaks(worked, "\n".join(printed))
    assert "cli-user" in worked.outputs["user list"] and "guarded=readwrite" not in worked.outputs["user list"]
    failed = worked.outputs["user list, wrong password"]
    assert failed.strip() and worked.outputs["wrong password"] not in failed, failed


def test_process_logs_hold_no_secret_but_the_audit_lines(worked: Secured) -> None:
    def logs() -> str:
        texts = [node.log_path.read_text(errors="replace") for node in worked.nodes]
        return "\n".join([*texts, (worked.proxy.workdir / "proxy.log").read_text(errors="replace")])

    poll_for(lambda: '"rpc":"DeleteByID"' in logs() and '"who":"unknown"' in logs(), timeout=10,
             what="the audit lines of a delete and of a refused token")
    text = logs()
    audit = [json.loads(line[line.index("{"):]) for line in text.splitlines() if '{"audit":true' in line]
    delete = next(a for a in audit if a["rpc"] == "DeleteByID")
    assert (delete["who"], delete["collection"], delete["result"], delete["rpc_class"]) == \
        ("user:root", "guarded", 0, "write")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", delete["when"]), delete
    stranger = next(a for a in audit if a["who"] == "unknown" and a["rpc"] == "HasCollection")
    assert stranger["result"] == PERMISSION_DENIED and "not valid" in stranger["reason"]
    assert '"who":"user:root","rpc":"CreateCollection"' in text
    assert '"who":"user:reader","rpc":"DropCollection","rpc_class":"ddl","collection":"guarded"' in text
    assert '"who":"user:root","rpc":"Cmd","rpc_class":"admin"' in text  # user management through Cmd
    assert '"who":"user:reader","rpc":"Cmd","rpc_class":"admin","collection":"","partition":"","result":3' in text
    cmd_lines = [a for a in audit if a["rpc"] == "Cmd"]
    assert {(a["who"], a["command"], a["result"]) for a in cmd_lines} >= {
        ("user:root", "user add cmd-user", 0), ("user:root", "user token cmd-user", 0),
        ("user:root", "user token cli-user", 0), ("user:reader", "user add cmd-intruder", PERMISSION_DENIED)}
    assert not _leaks(worked, text)


def test_metrics_pages_hold_no_secret(worked: Secured) -> None:
    for port in [worked.proxy.metrics_port, *(node.metrics_port for node in worked.nodes)]:
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            page = reply.read().decode()
        assert "_request_seconds_count" in page
        assert not _leaks(worked, page), port


def test_exported_traces_hold_no_secret(worked: Secured) -> None:
    def services() -> set[str]:
        names = set()
        for request in worked.collector.exported():
            for resource in request.resource_spans:
                names |= {a.value.string_value for a in resource.resource.attributes if a.key == "service.name"}
        return names

    poll_for(lambda: len(services()) >= 2, timeout=30, what="spans from the proxy and the nodes")
    exported = [request.SerializeToString() for request in worked.collector.exported()]
    assert worked.collector.span_count() > 0
    assert not _leaks(worked, b"\n".join(exported).decode("latin-1"))


def test_get_config_masks_the_password_and_holds_no_secret(worked: Secured) -> None:
    stub = worked.stub()
    answers = []
    for cmd in ("get_config *", "get_config general.meta_uri", "mishards_stats", "status", "version"):
        reply = stub.Cmd(milvus_pb2.Command(cmd=cmd), metadata=worked.md("admin"), timeout=30)
        assert reply.status.error_code == 0, (cmd, reply.status)
        answers.append(reply.string_reply)
    assert f"{USER}:***@" in answers[1], answers[1]
    for path in ("/config/advanced", "/system/status", "/system/version"):
        status, body = worked.https("GET", path, "admin")
        assert status == 200, (path, body)
        answers.append(body.decode(errors="replace"))
    assert not _leaks(worked, "\n".join(answers))


def test_mishards_status_holds_no_secret(worked: Secured) -> None:
    done = _cli("status", "--membership", worked.membership,  # the catalog URI from the environment (not in ps)
                "--cluster-tls-cert", str(worked.client_cert.cert_path),
                "--cluster-tls-key", str(worked.client_cert.key_path),
                "--cluster-tls-ca", str(worked.cluster.ca.cert_path), env={"MISHARDS_META_URI": worked.meta_uri})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("SERVING") == len(worked.nodes), done.stdout
    assert not _leaks(worked, done.stdout + done.stderr)
    missing = _cli("status", "--membership", worked.membership, env={"MISHARDS_META_URI": ""})
    assert missing.returncode == 2 and "MISHARDS_META_URI" in missing.stderr
