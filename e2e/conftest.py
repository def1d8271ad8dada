"""Fixtures of the fault campaign: a MariaDB and an etcd for the run, the mode (short / long), a results
collector whose one-line summaries close the pytest report, and a check that no process outlives the run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.procs import ManagedProcess
from e2e.scenario import Result
from e2e.settings import E2ESettings, from_env
from tests.support.etcd import EtcdServer
from tests.support.mariadb import MariaDBServer

_SUMMARIES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session", autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail the run if a scenario leaves a cluster process behind (and kill it)."""
    yield
    leaked = ManagedProcess.reap_all()
    assert not leaked, f"processes left running by the e2e scenarios: {leaked}"


@pytest.fixture(scope="session")
def e2e_settings() -> E2ESettings:
    return from_env()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    with MariaDBServer() as server:
        yield server


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdServer]:
    with EtcdServer() as server:
        yield server


@pytest.fixture
def mariadb_uri(mariadb: MariaDBServer) -> str:
    return mariadb.fresh_database(f"e2e_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[Result], None]:
    """Keep a scenario's summary line for the end of the pytest report."""

    def keep(result: Result) -> None:
        request.config.stash.setdefault(_SUMMARIES, []).append(result.summary())

    return keep


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long campaign's scenarios run for minutes: lift pytest-timeout's 300 s for them."""
    if from_env().long:
        for item in items:
            if item.path.is_relative_to(Path(__file__).parent):
                item.add_marker(pytest.mark.timeout(3600))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARIES, [])
    if lines:
        terminalreporter.section("e2e fault campaign")
        for line in lines:
            terminalreporter.write_line(line)
