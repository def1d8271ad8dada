"""The private MariaDB and etcd servers used by the test suite really start, work and stop."""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support import etcd as etcd_support
from tests.support import mariadb as mariadb_support
from tests.support import waiting
from tests.support.etcd import EtcdServer, etcd_health
from tests.support.mariadb import MariaDBServer
from tests.support.waiting import free_port, poll_for, wait_for_port

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _busy_port_first(busy: int) -> Callable[[], int]:
    """A replacement for free_port() whose first answer is a port that is already taken."""
    answers = [busy]

    def fake() -> int:
        return answers.pop() if answers else free_port()

    return fake


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    with MariaDBServer() as server:
        yield server


# -- waiting helpers ------------------------------------------------------------------------


def test_poll_for_returns_first_truthy_value() -> None:
    calls = iter([0, None, "", 7, 8])
    assert poll_for(lambda: next(calls), timeout=5, interval=0.001) == 7


def test_poll_for_timeout_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="the moon"):
        poll_for(lambda: False, timeout=0.05, interval=0.01, what="the moon")


def test_wait_for_port(listening_socket: socket.socket) -> None:
    wait_for_port("127.0.0.1", listening_socket.getsockname()[1], timeout=5)
    unused = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", unused, timeout=0.1)


def test_missing_binary_points_to_bootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(waiting, "_SYSTEM_BIN_DIRS", ())
    with pytest.raises(RuntimeError, match=r"scripts/bootstrap\.sh"):
        MariaDBServer().start()
    with pytest.raises(RuntimeError, match=r"scripts/bootstrap\.sh"):
        EtcdServer().start()


# -- MariaDB --------------------------------------------------------------------------------


def test_mariadb_sqlalchemy_roundtrip(mariadb: MariaDBServer) -> None:
    assert mariadb.uri == f"mysql+pymysql://milvus:milvus@127.0.0.1:{mariadb.port}/milvus?charset=utf8mb4"
    engine = sa.create_engine(mariadb.uri)
    try:
        meta = sa.MetaData()
        table = sa.Table(
            "roundtrip",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(64), nullable=False),
        )
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"name": "vectors"}, {"name": "töne ✓ 🚀"}])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.name).order_by(table.c.id)).scalars().all()
            version = conn.execute(sa.text("SELECT VERSION()")).scalar_one()
        assert rows == ["vectors", "töne ✓ 🚀"]
        assert "MariaDB" in version
    finally:
        engine.dispose()


def test_mariadb_fresh_database_is_isolated(mariadb: MariaDBServer) -> None:
    uri_a = mariadb.fresh_database("isolation_a")
    uri_b = mariadb.fresh_database("isolation_b")
    assert uri_a.endswith("/isolation_a?charset=utf8mb4")
    engine_a = sa.create_engine(uri_a)
    engine_b = sa.create_engine(uri_b)
    engine_main = sa.create_engine(mariadb.uri)
    try:
        with engine_a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_in_a (id INT PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO only_in_a VALUES (1)"))
        assert sa.inspect(engine_a).get_table_names() == ["only_in_a"]
        assert sa.inspect(engine_b).get_table_names() == []
        assert "only_in_a" not in sa.inspect(engine_main).get_table_names()
        engine_a.dispose()
        # Asking again for the same name gives an empty database.
        assert mariadb.fresh_database("isolation_a") == uri_a
        assert sa.inspect(engine_a).get_table_names() == []
    finally:
        for engine in (engine_a, engine_b, engine_main):
            engine.dispose()
    with pytest.raises(ValueError):
        mariadb.fresh_database("bad`name")


def test_mariadb_stop_removes_process_and_files() -> None:
    server = MariaDBServer().start()
    pid, base_dir, port = server.pid, server.base_dir, server.port
    assert _pid_exists(pid)
    assert int((base_dir / "mysqld.pid").read_text().strip()) == pid
    server.stop()
    assert not _pid_exists(pid)
    assert not base_dir.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    server.stop()  # idempotent


def test_mariadb_retries_when_port_is_taken(monkeypatch: pytest.MonkeyPatch, listening_socket: socket.socket) -> None:
    busy = listening_socket.getsockname()[1]
    monkeypatch.setattr(mariadb_support, "free_port", _busy_port_first(busy))
    with MariaDBServer() as server:
        assert server.port != busy
        engine = sa.create_engine(server.uri)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()
        pid = server.pid
    assert not _pid_exists(pid)


# -- etcd -----------------------------------------------------------------------------------


def _etcd_v3(url: str, path: str, payload: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{url}/v3/{path}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with _DIRECT.open(request, timeout=5) as resp:
        return json.loads(resp.read())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_etcd_health_kv_and_stop() -> None:
    with EtcdServer() as etcd:
        pid, url = etcd.pid, etcd.url
        assert etcd.endpoint == f"127.0.0.1:{etcd.client_port}"
        assert etcd_health(url)
        assert _pid_exists(pid)
        _etcd_v3(url, "kv/put", {"key": _b64("mishards/probe"), "value": _b64("ok")})
        got = _etcd_v3(url, "kv/range", {"key": _b64("mishards/probe")})
        assert base64.b64decode(got["kvs"][0]["value"]) == b"ok"
    assert not _pid_exists(pid)
    assert not etcd_health(url, timeout=0.5)


def test_etcd_retries_when_port_is_taken(monkeypatch: pytest.MonkeyPatch, listening_socket: socket.socket) -> None:
    busy = listening_socket.getsockname()[1]
    monkeypatch.setattr(etcd_support, "free_port", _busy_port_first(busy))
    with EtcdServer() as etcd:
        assert busy not in (etcd.client_port, etcd.peer_port)
        assert etcd.healthy()
        pid = etcd.pid
    assert not _pid_exists(pid)
