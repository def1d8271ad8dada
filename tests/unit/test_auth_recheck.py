"""A token the in-memory users do not know yet: the guard reads the users again before refusing it, so a token is
accepted by every process as soon as it exists, at most one read per ``RECHECK_GAP`` however many wrong tokens
arrive, and a catalog that fails or hangs refuses the call (it neither raises nor blocks)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from coordinator.auth import store as store_module
from coordinator.auth import users_db
from coordinator.auth.guard import BAD_TOKEN, AuthSettings, Guard, Refused
from coordinator.auth.model import Kind, Role
from coordinator.auth.store import RECHECK_GAP, UsersSnapshot, UserStore
from coordinator.catalog_schema import make_engine


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    eng = make_engine(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    users_db.add_user(eng, "root", Role.ADMIN)  # the tables exist, so every read is one read_users
    yield eng
    eng.dispose()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads of the user tables."""
    counted: list[int] = []
    real = store_module.read_users

    def counting(conn: Connection) -> UsersSnapshot:
        counted.append(1)
        return real(conn)

    monkeypatch.setattr(store_module, "read_users", counting)
    return counted


def test_a_token_made_after_the_last_reload_is_accepted_at_once(engine: Any) -> None:
    clock = Clock()
    store = UserStore(engine, interval=60, clock=clock)  # no reload would come for a minute
    store.refresh()
    guard = Guard(AuthSettings("none"), store, internal=lambda _c: False)
    issued = users_db.add_user(engine, "late", Role.READONLY)
    assert issued.token and "late" not in store.snapshot().users
    clock.now += RECHECK_GAP * 2
    who = guard.identify(f"Bearer {issued.token}")
    assert not isinstance(who, Refused) and who.kind is Kind.USER and who.name == "late"
    assert "late" in store.snapshot().users  # later calls find it in memory


def test_wrong_tokens_read_the_catalog_at_most_once_per_gap(engine: Any, reads: list[int]) -> None:
    clock = Clock()
    store = UserStore(engine, interval=60, clock=clock)
    store.refresh()
    guard = Guard(AuthSettings("none"), store, internal=lambda _c: False)
    wrong = [f"Bearer mshd_{i:043d}" for i in range(200)]
    for header in wrong:
        assert guard.identify(header) == Refused(BAD_TOKEN)
    assert len(reads) == 1  # the first refresh only: it began less than RECHECK_GAP ago
    clock.now += RECHECK_GAP * 1.5
    for header in wrong:
        assert guard.identify(header) == Refused(BAD_TOKEN)
    assert len(reads) == 2


def test_a_failing_catalog_keeps_the_last_users_and_logs_the_outage_once(
        engine: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = UserStore(engine, interval=60, clock=clock)
    assert store.refresh()
    known = store.snapshot()

    attempts: list[int] = []

    def broken(_conn: Connection) -> UsersSnapshot:
        attempts.append(1)
        raise RuntimeError("a driver fault that is not a SQLAlchemy error")

    monkeypatch.setattr(store_module, "read_users", broken)
    guard = Guard(AuthSettings("none"), store, internal=lambda _c: False)
    with caplog.at_level(logging.DEBUG, logger="coordinator.auth.store"):
        clock.now += RECHECK_GAP * 2
        assert guard.identify("Bearer mshd_" + "B" * 43) == Refused(BAD_TOKEN)  # reads, fails
        for _ in range(3):  # while the catalog fails, calls do not read it (the reload thread does)
            clock.now += RECHECK_GAP * 2
            assert guard.identify("Bearer mshd_" + "B" * 43) == Refused(BAD_TOKEN)
        assert len(attempts) == 1
        assert not store.refresh()
        assert not store.refresh()
    assert store.snapshot() is known
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "a driver fault" in warnings[0].getMessage()
    assert sum("a driver fault" in r.getMessage() for r in caplog.records) == 3  # then at DEBUG
    monkeypatch.undo()
    with caplog.at_level(logging.INFO, logger="coordinator.auth.store"):
        assert store.refresh()
    assert "read from the catalog again" in caplog.text


def test_a_recheck_does_not_wait_long_behind_a_hung_read(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    store = UserStore(engine, interval=60, clock=clock)
    assert store.refresh()
    known = store.snapshot()
    entered, release = threading.Event(), threading.Event()
    real = store_module.read_users

    def hung(conn: Connection) -> UsersSnapshot:
        entered.set()
        assert release.wait(30)
        return real(conn)

    monkeypatch.setattr(store_module, "read_users", hung)
    monkeypatch.setattr(store_module, "RECHECK_WAIT", 0.05)
    clock.now += RECHECK_GAP * 2
    reader = threading.Thread(target=store.refresh)
    reader.start()
    try:
        assert entered.wait(10)
        assert store.recheck() is known  # refused by the last users, not blocked until the read ends
    finally:
        release.set()
        reader.join(10)
    assert not reader.is_alive()
