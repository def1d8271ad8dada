"""Shared fixtures: real node processes, a real MariaDB, and request builders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.etcd import EtcdServer
from tests.support.mariadb import MariaDBServer
from tests.support.nodeproc import NodeProcess


@pytest.fixture(scope="session", autouse=True)
def no_leaked_nodes() -> Iterator[None]:
    """Fail the run if a test leaves a node process behind (and kill it)."""
    yield
    leaked = NodeProcess.reap_all()
    assert not leaked, f"node processes left running by the tests: {leaked}"


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    with MariaDBServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "mariadb"])
def catalog_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs twice: on a SQLite catalog file, and on a fresh database of the run's real MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.sqlite'}"
    server: MariaDBServer = request.getfixturevalue("mariadb")
    return server.fresh_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdServer]:
    """A real etcd (Debian's etcd-server) on free ports in a temporary folder, shared by the run."""
    with EtcdServer() as server:
        yield server


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A standalone node on SQLite, shared by the tests of one module."""
    with NodeProcess(tmp_path_factory.mktemp("node"), ["--auto-flush-interval", "1"]) as proc:
        yield proc


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A standalone node of its own, for tests that restart or kill it."""
    proc = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "1"])
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
def stub(node: NodeProcess) -> Any:
    return node.stub()
