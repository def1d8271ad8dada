"""The users of a catalog, held in memory: a snapshot reloaded every ``interval`` seconds by one thread, so that
a call's check reads memory only (no SQL per request) and a removed user or a new token takes effect within
about ``interval``. A token the snapshot does not know makes the caller read the users again at once
(:meth:`UserStore.recheck`, at most once per ``RECHECK_GAP`` seconds), so a token is accepted by every process as
soon as its creation has committed, without waiting for the next reload.

When the catalog cannot be read, the last snapshot stays in force (tokens keep working through a database
outage; a removal made meanwhile takes effect once the catalog answers again). Before the first successful load
nothing is known: callers with a token are refused and anonymous callers get only the configured anonymous role.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from coordinator.auth.model import Identity, Kind, Role, TokenRecord, User, parse_role
from coordinator.catalog_schema import AUTH_TABLES, auth_grants, auth_tokens, auth_users

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.5
RECHECK_GAP = 0.05  # seconds: a read started this recently is fresh enough for a recheck (bounds the reads a flood
#                     of wrong tokens causes to 1 / RECHECK_GAP per process)
RECHECK_WAIT = 0.2  # seconds a recheck waits for a read under way (reads take milliseconds; a hung catalog refuses)


@dataclass(frozen=True, slots=True)
class UsersSnapshot:
    """The users as last read: by name, and each token record (with its user's identity) by hash."""

    loaded: bool = False
    users: Mapping[str, User] = field(default_factory=dict, hash=False)
    by_hash: Mapping[str, tuple[TokenRecord, Identity]] = field(default_factory=dict, hash=False)


EMPTY = UsersSnapshot()


def _role(text: str) -> Role:
    try:
        return parse_role(text)
    except ValueError:
        log.warning("unknown role %r in the catalog: treated as none", text)
        return Role.NONE


def load_users(conn: Connection) -> UsersSnapshot:
    """Read the three user tables into one snapshot (missing tables read as no users)."""
    inspector = sa.inspect(conn)
    if not all(inspector.has_table(t.name) for t in AUTH_TABLES):
        return UsersSnapshot(loaded=True)
    return read_users(conn)


def read_users(conn: Connection) -> UsersSnapshot:
    grants: dict[str, dict[str, Role]] = {}
    for row in conn.execute(sa.select(auth_grants)):
        grants.setdefault(row.user_name, {})[row.collection_name] = _role(row.role)
    tokens: dict[str, list[TokenRecord]] = {}
    for row in conn.execute(sa.select(auth_tokens).order_by(auth_tokens.c.id)):
        tokens.setdefault(row.user_name, []).append(
            TokenRecord(row.id, row.user_name, row.token_hash, row.created_us, row.expires_at))
    users: dict[str, User] = {}
    by_hash: dict[str, tuple[TokenRecord, Identity]] = {}
    for row in conn.execute(sa.select(auth_users)):
        user = User(row.name, _role(row.role), grants.get(row.name, {}), tuple(tokens.get(row.name, ())))
        users[user.name] = user
        identity = Identity(Kind.USER, user.name, user.role, user.grants)  # made once, not per call
        for record in user.tokens:
            by_hash[record.hash] = (record, identity)
    return UsersSnapshot(True, users, by_hash)


class UserStore:
    """The users of the catalog behind ``engine``, refreshed every ``interval`` seconds in the background."""

    def __init__(self, engine: Engine, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.interval = interval
        self.clock = clock
        self._snapshot = EMPTY
        self._tables_seen = False
        self._reading = threading.Lock()  # one read at a time; held while reading
        self._read_started = -float("inf")  # clock() when the last read began
        self._failing = False  # the last read failed (an outage is logged once, not at every read)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> UsersSnapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Read the users now; False (keeping the last snapshot) when the catalog does not answer."""
        with self._reading:
            return self._read()

    def recheck(self) -> UsersSnapshot:
        """The users as read by a read that began at most ``RECHECK_GAP`` seconds ago: the last snapshot when one
        did, else after reading them now. A read under way is waited for (up to ``RECHECK_WAIT`` seconds; past
        that, the last snapshot). For a token the snapshot does not know: one whose creation committed at least
        ``RECHECK_GAP`` seconds before the call is then found. While the catalog fails, the last snapshot at once:
        the reload thread finds out when it answers again, and no call waits on a catalog that hangs."""
        if self._failing or not self._reading.acquire(timeout=RECHECK_WAIT):
            return self._snapshot
        try:
            if self.clock() - self._read_started > RECHECK_GAP:
                self._read()
            return self._snapshot
        finally:
            self._reading.release()

    def _read(self) -> bool:
        self._read_started = self.clock()
        try:
            with self.engine.connect() as conn:
                if self._tables_seen:
                    snap = read_users(conn)
                else:
                    snap = load_users(conn)
                    self._tables_seen = bool(snap.users) or all(
                        sa.inspect(conn).has_table(t.name) for t in AUTH_TABLES)
        except SQLAlchemyError as exc:
            if self._tables_seen and "no such table" in str(exc).lower():
                self._tables_seen = False
            self._failed("cannot read the users from the catalog (keeping the last ones): %s", exc)
            return False
        except Exception as exc:  # a reload must never end the thread or fail the call that asked for it
            self._failed("reading the users from the catalog failed (keeping the last ones): %r", exc)
            return False
        if self._failing:
            log.info("the users are read from the catalog again")
            self._failing = False
        self._snapshot = snap
        return True

    def _failed(self, message: str, exc: BaseException) -> None:
        log.log(logging.DEBUG if self._failing else logging.WARNING, message, exc)
        self._failing = True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._follow, name="users", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
