"""User management in the catalog: operator writes (``mishards user ...``), not fenced by the writer epoch.

Every change is one transaction. A user has at most :data:`LIVE_TOKENS` live tokens, so that a token can be
rotated without downtime (issue a second, move the clients, revoke the first) while a leaked one cannot
multiply unnoticed. Only hashes are stored; a new token is returned to the caller once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coordinator.auth import tokens
from coordinator.auth.model import GRANT_ROLES, Role, User
from coordinator.auth.store import read_users
from coordinator.catalog_schema import AUTH_TABLES, auth_grants, auth_tokens, auth_users, metadata, now_us

LIVE_TOKENS = 2
EXPIRED_KEPT = 86400.0  # seconds an expired token stays listed (and refused as "expired") before it is dropped
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class UserError(ValueError):
    """A refused user change (its message says why)."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A token just issued: the token itself (shown once) and its record's id."""

    token: str
    token_id: int
    expires_at: float | None


def parse_duration(text: str) -> float:
    """Seconds of ``90d``, ``12h``, ``30m``, ``3600s``, ``2w`` or a bare number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise UserError(f"a duration is a positive number with s, m, h, d or w (e.g. 90d), not {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"a user name is 1 to 64 of A-Z a-z 0-9 _ . @ -, not {name!r}")
    return name


def ensure_tables(engine: Engine) -> None:
    """Create the user tables if the catalog lacks them (an older catalog, or one no node has opened yet)."""
    metadata.create_all(engine, tables=list(AUTH_TABLES), checkfirst=True)


@contextmanager
def _write(engine: Engine) -> Iterator[Connection]:
    """One write transaction that takes the write lock with its first statement (dropping tokens expired for a
    day): on SQLite a transaction that reads first and writes later fails at once ("database is locked") if a node
    committed in between, while one that writes first waits for the lock like any other writer."""
    with engine.begin() as conn:
        conn.execute(auth_tokens.delete().where(auth_tokens.c.expires_at.is_not(None),
                                                auth_tokens.c.expires_at < time.time() - EXPIRED_KEPT))
        yield conn


def _user_exists(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(auth_users.c.name).where(auth_users.c.name == name)).first() is not None


def _issue(conn: Connection, name: str, expires_in: float | None, now: float) -> Issued:
    conn.execute(auth_tokens.delete().where(auth_tokens.c.user_name == name, auth_tokens.c.expires_at.is_not(None),
                                            auth_tokens.c.expires_at <= now))
    live = conn.execute(sa.select(sa.func.count()).select_from(auth_tokens)
                        .where(auth_tokens.c.user_name == name)).scalar_one()
    if live >= LIVE_TOKENS:
        raise UserError(f"user {name!r} already has {LIVE_TOKENS} live tokens: revoke one first "
                        f"(mishards user revoke-token {name} --id N)")
    token = tokens.new_token()
    expires_at = now + expires_in if expires_in is not None else None
    result = conn.execute(auth_tokens.insert().values(user_name=name, token_hash=tokens.token_hash(token),
                                                      created_us=now_us(), expires_at=expires_at))
    key = result.inserted_primary_key
    return Issued(token, int(key[0]) if key is not None else 0, expires_at)


def add_user(engine: Engine, name: str, role: Role, collection: str = "", expires_in: float | None = None,
             now: float | None = None) -> Issued:
    """Create user ``name`` with ``role`` (on ``collection`` only, when given) and its first token."""
    check_name(name)
    ensure_tables(engine)
    with _write(engine) as conn:
        if _user_exists(conn, name):
            raise UserError(f"user {name!r} exists already (mishards user grant / token change it)")
        global_role = role if not collection else Role.NONE
        conn.execute(auth_users.insert().values(name=name, role=global_role.value, created_us=now_us()))
        if collection:
            _grant(conn, name, collection, role)
        return _issue(conn, name, expires_in, time.time() if now is None else now)


def _grant(conn: Connection, name: str, collection: str, role: Role) -> None:
    conn.execute(auth_grants.delete().where(auth_grants.c.user_name == name,
                                            auth_grants.c.collection_name == collection))
    if role is Role.NONE:
        return
    if role not in GRANT_ROLES:
        raise UserError(f"a per-collection grant is readonly or readwrite (admin is global), not {role.value}")
    conn.execute(auth_grants.insert().values(user_name=name, collection_name=collection, role=role.value))


def grant(engine: Engine, name: str, role: Role, collection: str = "") -> None:
    """Set ``name``'s global role, or (with ``collection``) its role on that collection (``none`` removes the
    grant)."""
    ensure_tables(engine)
    with _write(engine) as conn:
        if not _user_exists(conn, name):
            raise UserError(f"no user {name!r}")
        if collection:
            _grant(conn, name, collection, role)
        else:
            conn.execute(auth_users.update().where(auth_users.c.name == name).values(role=role.value))


def remove_user(engine: Engine, name: str) -> None:
    """Remove ``name``, its tokens and grants (its calls are refused within the nodes' refresh interval)."""
    ensure_tables(engine)
    with _write(engine) as conn:
        if not _user_exists(conn, name):
            raise UserError(f"no user {name!r}")
        conn.execute(auth_tokens.delete().where(auth_tokens.c.user_name == name))
        conn.execute(auth_grants.delete().where(auth_grants.c.user_name == name))
        conn.execute(auth_users.delete().where(auth_users.c.name == name))


def issue_token(engine: Engine, name: str, expires_in: float | None = None, now: float | None = None) -> Issued:
    """An additional token for ``name`` (the others stay valid until revoked or expired)."""
    ensure_tables(engine)
    with _write(engine) as conn:
        if not _user_exists(conn, name):
            raise UserError(f"no user {name!r}")
        return _issue(conn, name, expires_in, time.time() if now is None else now)


def revoke_token(engine: Engine, name: str, token_id: int | None = None, oldest: bool = False) -> int:
    """Revoke token ``token_id`` of ``name`` (or its oldest one); returns the id revoked."""
    ensure_tables(engine)
    with _write(engine) as conn:
        query = sa.select(auth_tokens.c.id).where(auth_tokens.c.user_name == name).order_by(auth_tokens.c.id)
        ids = [int(row.id) for row in conn.execute(query)]
        if token_id is None:
            if not oldest or not ids:
                raise UserError(f"user {name!r} has no token to revoke" if oldest else "say which: --id N or --oldest")
            token_id = ids[0]
        if token_id not in ids:
            raise UserError(f"user {name!r} has no token {token_id}")
        conn.execute(auth_tokens.delete().where(auth_tokens.c.id == token_id))
        return token_id


def list_users(engine: Engine) -> list[User]:
    ensure_tables(engine)
    with engine.connect() as conn:
        snap = read_users(conn)
    return [snap.users[name] for name in sorted(snap.users)]
