"""``--allow-anonymous`` on real nodes, over gRPC and REST, for mixed fleets: ``readwrite`` (the default) keeps every
stock Milvus 1.1 call working, admin calls included while the catalog holds no user, and refuses only admin calls
once a user exists; ``readonly`` lets anonymous callers read and refuses their writes and DDL with nothing
changed, while a token still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.catalog_schema import make_engine
from milvus_wire import milvus_pb2
from tests.support import http
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import poll_for

DIM = 4
PERMISSION_DENIED = 3


def _node(root: Path, *args: str) -> NodeProcess:
    root.mkdir(parents=True, exist_ok=True)
    return NodeProcess(root, ["--auto-flush-interval", "0", *args], meta_uri=f"sqlite:///{root / 'meta.sqlite'}",
                       http=True)


@pytest.fixture
def default_node(tmp_path: Path) -> Iterator[NodeProcess]:
    with _node(tmp_path / "default") as node:
        yield node


@pytest.fixture
def readonly_node(tmp_path: Path) -> Iterator[tuple[NodeProcess, str]]:
    node = _node(tmp_path / "ro", "--allow-anonymous", "readonly")
    engine = make_engine(node.meta_uri)
    token = users_db.add_user(engine, "writer", Role.READWRITE).token
    engine.dispose()
    with node:
        yield node, token


def _set_config(node: NodeProcess, value: int) -> int:
    reply = node.stub().Cmd(milvus_pb2.Command(cmd=f"set_config engine_config.use_blas_threshold {value}"))
    return int(reply.status.error_code)


def _blas(node: NodeProcess) -> str:
    return str(node.stub().Cmd(milvus_pb2.Command(cmd="get_config engine_config.use_blas_threshold")).string_reply)


def _create(node: NodeProcess, name: str, md: tuple[tuple[str, str], ...] = ()) -> int:
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1024, metric_type=1)
    return int(node.stub().CreateCollection(schema, metadata=md).error_code)


def _count(node: NodeProcess, name: str, md: tuple[tuple[str, str], ...] = ()) -> int:
    """The rows of ``name`` after a flush (a write: made with ``md``); the count itself is an anonymous read."""
    stub = node.stub()
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), metadata=md).error_code == 0
    reply = stub.CountCollection(milvus_pb2.CollectionName(collection_name=name))
    assert reply.status.error_code == 0, reply.status
    return int(reply.collection_row_count)


def _insert(node: NodeProcess, name: str, md: tuple[tuple[str, str], ...] = ()) -> int:
    rows = [milvus_pb2.RowRecord(float_data=[1.0, 2.0, 3.0, 4.0])]
    reply = node.stub().Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=rows), metadata=md)
    return int(reply.status.error_code)


def test_the_default_keeps_stock_clients_working_and_admin_calls_until_a_user_exists(
        default_node: NodeProcess) -> None:
    node = default_node
    assert _create(node, "open") == 0 and _insert(node, "open") == 0 and _count(node, "open") == 1
    assert http.request(node.http_port, "POST", "/collections/open/vectors",
                        {"vectors": [[1.0, 1.0, 1.0, 1.0]]}).status in (200, 201)
    assert _count(node, "open") == 2
    assert _set_config(node, 1100) == 0 and _blas(node) == "1100"  # no user yet: as before
    engine = make_engine(node.meta_uri)
    users_db.add_user(engine, "root", Role.ADMIN)
    engine.dispose()
    poll_for(lambda: _set_config(node, 1200) == PERMISSION_DENIED, timeout=10,
             what="anonymous admin calls to be refused once a user exists")
    assert _set_config(node, 1300) == PERMISSION_DENIED and _blas(node) in ("1100", "1200")
    rest = http.request(node.http_port, "PUT", "/config/advanced", {"cpu_cache_capacity": 3})
    assert rest.status == 403 and rest.json()["code"] == PERMISSION_DENIED
    assert _insert(node, "open") == 0 and _count(node, "open") == 3  # reads and writes stay anonymous


def test_readonly_anonymous_reads_but_writes_only_with_a_token(readonly_node: tuple[NodeProcess, str]) -> None:
    node, token = readonly_node
    md = (("authorization", f"Bearer {token}"),)
    poll_for(lambda: _create(node, "data", md) == 0, timeout=10, what="the writer's token to be accepted")
    assert _insert(node, "data", md) == 0
    assert _count(node, "data", md) == 1
    assert http.request(node.http_port, "GET", "/collections/data").status == 200
    assert _insert(node, "data") == PERMISSION_DENIED
    rest = http.request(node.http_port, "POST", "/collections/data/vectors", {"vectors": [[1.0, 1.0, 1.0, 1.0]]})
    assert rest.status == 403 and rest.json()["code"] == PERMISSION_DENIED
    assert _create(node, "anon") == PERMISSION_DENIED
    dropped = node.stub().DropCollection(milvus_pb2.CollectionName(collection_name="data"))
    assert dropped.error_code == PERMISSION_DENIED
    assert _count(node, "data", md) == 1
    listed = node.stub().ShowCollections(milvus_pb2.Command())
    assert list(listed.collection_names) == ["data"]
