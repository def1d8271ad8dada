"""User management served through ``Cmd`` (``user ...``, :mod:`coordinator.auth.user_commands`): the writer node
runs the command on its catalog with :mod:`coordinator.auth.users_db` (operator data, one transaction each, not
fenced by the writer epoch) and answers JSON.

The reply of ``user add`` and ``user token`` is the only place a new token appears (field ``token``, once); it is
never logged. ``user list`` answers names, roles, grants and each token's id, fingerprint and expiry.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from coordinator.auth import tokens, users_db
from coordinator.auth.model import User
from coordinator.auth.user_commands import Action, Invalid, UserCommand, parse_user_command, refusal
from coordinator.errors import ErrorCode, MetaFailed, MilvusError

log = logging.getLogger(__name__)


def when(seconds: float | None) -> str:
    """An expiry as UTC ISO 8601 (to the second), or ``never``."""
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def listing(user: User) -> dict[str, Any]:
    """One user as ``user list`` shows it: no token, only each token's id, fingerprint and expiry."""
    return {"name": user.name, "role": user.role.value,
            "grants": {c: r.value for c, r in sorted(user.grants.items())},
            "tokens": [{"id": t.id, "fingerprint": tokens.fingerprint(t.hash), "expires": when(t.expires_at)}
                       for t in user.tokens]}


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def execute(engine: Engine, command: UserCommand) -> str:
    """Run ``command`` on the catalog behind ``engine``; the JSON reply. A refused change raises MilvusError
    (ILLEGAL_ARGUMENT: unknown user, a third token, ...; META_FAILED: the catalog did not answer)."""
    name = command.name
    try:
        if command.action is Action.LIST:
            return _dumps({"users": [listing(u) for u in users_db.list_users(engine)]})
        if command.action is Action.ADD:
            issued = users_db.add_user(engine, name, command.role, command.collection, command.expires_in)
            return _dumps({"user": name, "role": command.role.value, "collection": command.collection,
                           "token_id": issued.token_id, "expires": when(issued.expires_at), "token": issued.token})
        if command.action is Action.TOKEN:
            issued = users_db.issue_token(engine, name, command.expires_in)
            return _dumps({"user": name, "token_id": issued.token_id, "expires": when(issued.expires_at),
                           "token": issued.token})
        if command.action in (Action.GRANT, Action.REVOKE):
            users_db.grant(engine, name, command.role, command.collection)
            return _dumps({"user": name, "role": command.role.value, "collection": command.collection})
        if command.action is Action.REVOKE_TOKEN:
            revoked = users_db.revoke_token(engine, name, command.token_id, command.oldest)
            return _dumps({"user": name, "revoked_token_id": revoked})
        users_db.remove_user(engine, name)
        return _dumps({"user": name, "removed": True})
    except users_db.UserError as exc:
        raise MilvusError(str(exc), ErrorCode.ILLEGAL_ARGUMENT) from None
    except SQLAlchemyError as exc:
        log.warning("%s: the catalog did not answer: %s", command.summary(), type(exc).__name__)
        raise MetaFailed(f"{command.summary()}: the catalog did not answer ({type(exc).__name__})") from None


def run(engine: Engine, cmd: str) -> str:
    """Parse and run the user command ``cmd``; an invalid one raises ILLEGAL_ARGUMENT with the syntax."""
    command = parse_user_command(cmd)
    if isinstance(command, Invalid):
        raise MilvusError(refusal(command), ErrorCode.ILLEGAL_ARGUMENT)
    reply = execute(engine, command)
    log.info("%s: done", command.summary())
    return reply
