"""User management through ``Cmd``: the text syntax, read by one pure function.

    user list
    user add NAME ROLE [on COLLECTION] [expires DURATION]     -> the new user's first token (shown once)
    user grant NAME ROLE [on COLLECTION]                      (the global role, or the role on one collection)
    user revoke NAME on COLLECTION                            (removes the grant on that collection)
    user token NAME [expires DURATION]                        -> an additional token (at most two live)
    user revoke-token NAME (ID | oldest)
    user remove NAME

Words are separated by white space; ``ROLE`` is ``admin``, ``readwrite``, ``readonly`` or ``none`` (a grant on a
collection is ``readonly`` or ``readwrite``, or ``none`` to remove it); ``DURATION`` is ``90d``, ``12h``, ``30m``,
``3600s``, ``2w`` or seconds. Every such command is of the admin class (``coordinator.auth.classes``). A command
names no secret: tokens are only ever in replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from coordinator import validation
from coordinator.auth import tokens
from coordinator.auth.model import GRANT_ROLES, USER_ROLES, Role, parse_role
from coordinator.auth.users_db import UserError, check_name, parse_duration
from coordinator.errors import MilvusError

PREFIX = "user"
MAX_COMMAND = 1024  # characters; a longer command is refused before it is read
SYNTAX = ("user list | user add NAME ROLE [on COLLECTION] [expires DURATION] | user grant NAME ROLE [on COLLECTION]"
          " | user revoke NAME on COLLECTION | user token NAME [expires DURATION]"
          " | user revoke-token NAME (ID | oldest) | user remove NAME")


class Action(StrEnum):
    LIST = "list"
    ADD = "add"
    GRANT = "grant"
    REVOKE = "revoke"
    TOKEN = "token"
    REVOKE_TOKEN = "revoke-token"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class UserCommand:
    """One parsed command. ``token_id`` None with ``oldest`` for ``revoke-token NAME oldest``."""

    action: Action
    name: str = ""
    role: Role = Role.NONE
    collection: str = ""
    expires_in: float | None = None
    token_id: int | None = None
    oldest: bool = False

    def summary(self) -> str:
        """What the command does, for logs and the audit line (names only, never a token)."""
        return " ".join(part for part in (PREFIX, self.action.value, self.name) if part)


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


def is_user_command(cmd: str) -> bool:
    """Whether ``cmd`` is a user-management command (its first word is ``user``)."""
    head = cmd.lstrip()[: len(PREFIX) + 1]
    return head[: len(PREFIX)] == PREFIX and (len(head) == len(PREFIX) or head[len(PREFIX)].isspace())


def _options(words: list[str], allowed: tuple[str, ...]) -> dict[str, str] | Invalid:
    """``KEY VALUE`` pairs (``on C``, ``expires D``), each at most once and only the allowed keys."""
    found: dict[str, str] = {}
    if len(words) % 2:
        return Invalid(f"expected {' / '.join(allowed) or 'nothing'} with a value, not {' '.join(words)!r}")
    for key, value in zip(words[::2], words[1::2], strict=True):
        if key not in allowed or key in found:
            return Invalid(f"unexpected {key!r} (expected {' / '.join(allowed) or 'nothing more'})")
        found[key] = value
    return found


def _collection(value: str) -> str:
    validation.collection_name(value)
    return value


def _parse(words: list[str]) -> UserCommand | Invalid:
    if not words:
        return Invalid("a user command needs an action")
    try:
        action = Action(words[0])
    except ValueError:
        return Invalid(f"unknown user action {words[0]!r}")
    rest = words[1:]
    if action is Action.LIST:
        return UserCommand(action) if not rest else Invalid("'user list' takes no arguments")
    if not rest:
        return Invalid(f"'user {action.value}' needs a user name")
    name = check_name(rest[0])
    rest = rest[1:]
    if action is Action.REMOVE:
        return UserCommand(action, name) if not rest else Invalid("'user remove' takes only a user name")
    if action is Action.REVOKE_TOKEN:
        if len(rest) != 1:
            return Invalid("'user revoke-token NAME' takes one token id, or 'oldest'")
        if rest[0] == "oldest":
            return UserCommand(action, name, oldest=True)
        if not rest[0].isascii() or not rest[0].isdigit() or len(rest[0]) > 18:
            return Invalid(f"a token id is a number (see 'user list'), not {rest[0]!r}")
        return UserCommand(action, name, token_id=int(rest[0]))
    if action is Action.TOKEN:
        opts = _options(rest, ("expires",))
        if isinstance(opts, Invalid):
            return opts
        expires = parse_duration(opts["expires"]) if "expires" in opts else None
        return UserCommand(action, name, expires_in=expires)
    if action is Action.REVOKE:
        opts = _options(rest, ("on",))
        if isinstance(opts, Invalid) or "on" not in opts:
            return Invalid("'user revoke NAME on COLLECTION' names the collection whose grant it removes")
        return UserCommand(action, name, collection=_collection(opts["on"]))
    if not rest:
        return Invalid(f"'user {action.value} {name}' needs a role ({', '.join(r.value for r in USER_ROLES)})")
    role = parse_role(rest[0])
    opts = _options(rest[1:], ("on", "expires") if action is Action.ADD else ("on",))
    if isinstance(opts, Invalid):
        return opts
    collection = _collection(opts["on"]) if "on" in opts else ""
    if collection and role not in GRANT_ROLES and not (action is Action.GRANT and role is Role.NONE):
        return Invalid(f"a role on a collection is readonly or readwrite (admin is global), not {role.value}")
    expires = parse_duration(opts["expires"]) if "expires" in opts else None
    return UserCommand(action, name, role, collection, expires)


def parse_user_command(cmd: str) -> UserCommand | Invalid:
    """The command in ``cmd`` (which :func:`is_user_command` accepted), or why it is not one."""
    if len(cmd) > MAX_COMMAND:
        return Invalid(f"a user command is at most {MAX_COMMAND} characters")
    words = cmd.split()
    if not words or words[0] != PREFIX:
        return Invalid("not a user command")
    if any(tokens.well_formed(word) for word in words):  # never echoed: a token pasted into a command by mistake
        return Invalid("a user command holds no token (a word has the form of one; it is not repeated here)")
    try:
        return _parse(words[1:])
    except (UserError, ValueError) as exc:
        return Invalid(str(exc))
    except MilvusError as exc:
        return Invalid(exc.reason)


def refusal(invalid: Invalid) -> str:
    """The reason answered for an invalid command, with the syntax."""
    return f"Invalid user command: {invalid.reason}. Syntax: {SYNTAX}"
