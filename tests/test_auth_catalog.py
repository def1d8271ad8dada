"""The user tables on SQLite and on a real MariaDB: created with the catalog (and added to an older one), users,
per-collection grants with any collection name Milvus accepts, the two-live-token limit, revocation and removal,
all seen by the in-memory snapshot the processes check calls against."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from coordinator.auth import users_db
from coordinator.auth.model import Role
from coordinator.auth.store import UserStore
from coordinator.catalog import Catalog


def test_users_round_trip_on_each_backend(catalog_uri: str) -> None:
    catalog = Catalog(catalog_uri)
    try:
        catalog.ensure_schema()
        with catalog.engine.begin() as conn:  # an older catalog: no user tables yet
            for table in ("auth_grants", "auth_tokens", "auth_users"):
                conn.exec_driver_sql(f"DROP TABLE {table}")
        store = UserStore(catalog.engine)
        assert store.refresh() and store.snapshot().loaded and not store.snapshot().users
        catalog.ensure_schema()  # a node of this version starting on it
        assert {"auth_users", "auth_tokens", "auth_grants"} <= set(sa.inspect(catalog.engine).get_table_names())

        long_name = "c_" + "x" * 253  # the longest collection name, in a grant
        first = users_db.add_user(catalog.engine, "svc", Role.READONLY, expires_in=3600)
        users_db.grant(catalog.engine, "svc", Role.READWRITE, long_name)
        users_db.grant(catalog.engine, "svc", Role.READONLY, "Ünïcode_名前")
        second = users_db.issue_token(catalog.engine, "svc")
        with pytest.raises(users_db.UserError, match="revoke one first"):
            users_db.issue_token(catalog.engine, "svc")
        assert store.refresh()
        snap = store.snapshot()
        user = snap.users["svc"]
        assert user.role is Role.READONLY
        assert dict(user.grants) == {long_name: Role.READWRITE, "Ünïcode_名前": Role.READONLY}
        assert len(user.tokens) == 2 and all(t.hash in snap.by_hash for t in user.tokens)
        assert user.tokens[0].expires_at is not None and user.tokens[1].expires_at is None

        users_db.revoke_token(catalog.engine, "svc", token_id=first.token_id)
        assert store.refresh()
        assert [t.id for t in store.snapshot().users["svc"].tokens] == [second.token_id]
        users_db.remove_user(catalog.engine, "svc")
        assert store.refresh() and not store.snapshot().users and not store.snapshot().by_hash
    finally:
        catalog.close()
