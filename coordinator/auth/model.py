"""Roles, users, grants and identities as values, and :func:`authorize`, the pure decision of whether an
identity may run an RPC of a class on a collection.

Roles rank ``none`` < ``readonly`` < ``readwrite`` < ``admin``: ``readonly`` runs reads, ``readwrite`` reads,
writes and DDL, ``admin`` everything (``set_config``, user management). A user has one global role and any
number of per-collection grants (``readonly`` or ``readwrite`` on one collection); on a collection the higher of
the two applies. A read that names no collection (``ShowCollections``, ``Cmd status``) is allowed to anyone who
may read somewhere; ``ShowCollections`` then lists only the collections the caller may read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    NONE = "none"
    READONLY = "readonly"
    READWRITE = "readwrite"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.NONE: 0, Role.READONLY: 1, Role.READWRITE: 2, Role.ADMIN: 3}
# Roles a per-collection grant may give (admin is global only).
GRANT_ROLES = (Role.READONLY, Role.READWRITE)
USER_ROLES = (Role.NONE, Role.READONLY, Role.READWRITE, Role.ADMIN)
ANONYMOUS_ROLES = ("readwrite", "readonly", "none")


class RpcClass(StrEnum):
    OPEN = "open"  # needs no token (health, the worker list the proxy asks every node)
    READ = "read"
    WRITE = "write"
    DDL = "ddl"
    ADMIN = "admin"


NEEDED = {RpcClass.OPEN: Role.NONE, RpcClass.READ: Role.READONLY, RpcClass.WRITE: Role.READWRITE,
          RpcClass.DDL: Role.READWRITE, RpcClass.ADMIN: Role.ADMIN}


class Kind(StrEnum):
    USER = "user"
    ANONYMOUS = "anonymous"
    PEER = "peer"  # a cluster member (cluster certificate)


@dataclass(frozen=True, slots=True)
class Grant:
    user: str
    collection: str
    role: Role


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token: its id, its SHA-256 (hex), when it was made and when it stops working (None: never)."""

    id: int
    user: str
    hash: str
    created_us: int
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    grants: Mapping[str, Role] = field(default_factory=dict, hash=False)
    tokens: tuple[TokenRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a call comes from, as a decision needs it."""

    kind: Kind
    name: str
    role: Role
    grants: Mapping[str, Role] = field(default_factory=dict, hash=False)

    @property
    def scoped(self) -> bool:
        """Whether the collection a call names can change the decision (the identity has grants beyond its
        global role); when False, the request need not even be parsed."""
        return bool(self.grants) and self.kind is Kind.USER

    @property
    def label(self) -> str:
        """How audit lines name the caller: ``user:NAME``, ``anonymous`` or ``peer:NAME``."""
        return "anonymous" if self.kind is Kind.ANONYMOUS else f"{self.kind.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOWED = Decision(True)


def role_on(identity: Identity, collection: str | None) -> Role:
    """The role ``identity`` has on ``collection`` (its global role when None)."""
    if collection is None or not identity.grants:
        return identity.role
    granted = identity.grants.get(collection)
    return granted if granted is not None and granted.rank > identity.role.rank else identity.role


def may_read_somewhere(identity: Identity) -> bool:
    return identity.role.rank >= 1 or any(r.rank >= 1 for r in identity.grants.values())


def authorize(identity: Identity, rpc_class: RpcClass, collection: str | None) -> Decision:
    """Whether ``identity`` may run an RPC of ``rpc_class`` on ``collection`` (None: the call names none)."""
    if rpc_class is RpcClass.OPEN or identity.kind is Kind.PEER:
        return ALLOWED
    needed = NEEDED[rpc_class]
    if rpc_class is RpcClass.ADMIN:
        have = identity.role
    elif collection is None and rpc_class is RpcClass.READ:
        return ALLOWED if may_read_somewhere(identity) else _refused(identity, rpc_class, None, identity.role)
    else:
        have = role_on(identity, collection)
    if have.rank >= needed.rank:
        return ALLOWED
    return _refused(identity, rpc_class, collection, have)


def _refused(identity: Identity, rpc_class: RpcClass, collection: str | None, have: Role) -> Decision:
    where = f" on collection {collection!r}" if collection is not None else ""
    who = "anonymous callers" if identity.kind is Kind.ANONYMOUS else f"user {identity.name!r}"
    hint = " (send a token: authorization: Bearer <token>)" if identity.kind is Kind.ANONYMOUS else ""
    return Decision(False, f"Permission denied: {who} (role {have.value}) may not run {rpc_class.value} "
                           f"calls{where}{hint}")


def visible(identity: Identity, names: Iterable[str]) -> list[str]:
    """Of ``names``, the collections ``identity`` may read (ShowCollections lists only these)."""
    if identity.kind is Kind.PEER or identity.role.rank >= 1:
        return list(names)
    return [n for n in names if role_on(identity, n).rank >= 1]


def parse_role(text: str, allowed: Iterable[Role] = USER_ROLES) -> Role:
    """A role by name (``admin``, ``readwrite``, ``readonly``, ``none``); ValueError names the choices."""
    choices = tuple(allowed)
    for role in choices:
        if role.value == text:
            return role
    raise ValueError(f"role must be one of {', '.join(r.value for r in choices)}, not {text!r}")
