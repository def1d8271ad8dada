"""The check at a process's edge: who a call comes from, whether it may run, and the audit line.

Both the node's handler layer (``node/rpc.py``, through which gRPC and REST calls pass) and the proxy's
(``mishards/service.py``'s forwarder, likewise) ask :meth:`Guard.admit` before anything happens and report the
outcome to :meth:`Guard.done`. A call that carries a token is judged by that token, wherever it comes from; a
call without one is a cluster peer's when :func:`coordinator.auth.peers.internal_check` says so, else anonymous.

The cheap path (the common case) reads the call's metadata once, looks the token's hash up in memory and
compares two ints; the request is parsed only when the caller has per-collection grants (or the call is audited).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from coordinator.auth import classes, tokens
from coordinator.auth.audit import Audit, AuditRecord, partition_of, utc_now
from coordinator.auth.model import (
    ANONYMOUS_ROLES,
    Identity,
    Kind,
    Role,
    RpcClass,
    authorize,
    parse_role,
    visible,
)
from coordinator.auth.peers import internal_check, peer_address, peer_name
from coordinator.auth.store import UsersSnapshot, UserStore

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]
Parse = Callable[[str, Any], Any]

BAD_HEADER = "Permission denied: the authorization header must be 'Bearer <token>'"
BAD_TOKEN = "Permission denied: the token is not valid (unknown, revoked or not a token of this cluster)"
EXPIRED = "Permission denied: the token has expired"
NOT_LOADED = "Permission denied: the users are not loaded yet (the catalog has not answered); retry shortly"

# The caller's ``authorization`` metadata of the call a thread is serving, passed on with every sub-request the
# proxy makes for it (``forwarded``), and the identity the call runs as (``current``).
_FORWARD: ContextVar[Metadata] = ContextVar("forward_authorization", default=())
_IDENTITY: ContextVar[Identity | None] = ContextVar("identity", default=None)


def forwarded() -> Metadata:
    """The ``authorization`` metadata to send with a sub-request made for the call being served (or ())."""
    return _FORWARD.get()


def current() -> Identity | None:
    """The identity of the call being served (None outside a checked call)."""
    return _IDENTITY.get()


def visible_to_caller(names: list[str]) -> list[str]:
    """Of ``names``, the collections the current caller may read (all of them outside a checked call)."""
    who = _IDENTITY.get()
    return names if who is None or not who.scoped else visible(who, names)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``allow_anonymous``: the role of a call without a token (``readwrite``, ``readonly`` or ``none``);
    ``refresh_interval``: seconds between reloads of the users from the catalog."""

    allow_anonymous: str = "readwrite"
    refresh_interval: float = 0.5

    def __post_init__(self) -> None:
        if self.allow_anonymous not in ANONYMOUS_ROLES:
            raise ValueError(f"allow_anonymous must be one of {', '.join(ANONYMOUS_ROLES)}, "
                             f"not {self.allow_anonymous!r}")
        if not 0 < self.refresh_interval <= 60:
            raise ValueError("the users' refresh interval must be within (0, 60] seconds")


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call the guard let through: who runs it, and what the audit line needs (None: not audited)."""

    identity: Identity
    audited: tuple[str, RpcClass, str, str, str, str] | None  # method, class, collection, partition, peer, command


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def header_of(context: Any) -> str | None:
    """The ``authorization`` metadata value of a call (None: absent)."""
    if context is None:
        return None
    for item in context.invocation_metadata() or ():
        if item[0] == tokens.HEADER:
            value = item[1]
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


class Guard:
    """Decides every call of one process. ``store`` holds the users (None: no catalog here: a call with a token
    is passed on for the nodes to judge, anonymous callers get ``settings.allow_anonymous``)."""

    def __init__(self, settings: AuthSettings, store: UserStore | None, audit: Audit | None = None,
                 internal: Callable[[Any], bool] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.audit = audit or Audit()
        self.internal = internal or internal_check()
        self.clock = clock
        self.anonymous_role = parse_role(settings.allow_anonymous)
        self._anonymous = Identity(Kind.ANONYMOUS, "anonymous", self.anonymous_role)
        self._anonymous_open = Identity(Kind.ANONYMOUS, "anonymous", Role.ADMIN)

    def start(self) -> None:
        if self.store is not None:
            self.store.start()

    def stop(self) -> None:
        if self.store is not None:
            self.store.stop()

    def _users(self) -> UsersSnapshot | None:
        return self.store.snapshot() if self.store is not None else None

    def anonymous(self, snap: UsersSnapshot | None) -> Identity:
        """The anonymous identity: the configured role; ``readwrite`` also runs admin calls while the catalog
        holds no user at all (today's behaviour: a deployment that never created a user keeps ``set_config``)."""
        if self.anonymous_role is Role.READWRITE and (snap is None or (snap.loaded and not snap.users)):
            return self._anonymous_open
        return self._anonymous

    def identify(self, header: str | None) -> Identity | Refused:
        """The identity of a call with this ``authorization`` value (None or '': anonymous)."""
        snap = self._users()
        if not header:
            return self.anonymous(snap)
        token = tokens.bearer(header)
        if not token:
            return Refused(BAD_HEADER)
        if snap is None:  # no catalog here (a proxy without --meta-uri): the nodes judge the forwarded token
            return UNVERIFIED
        if not snap.loaded:
            return Refused(NOT_LOADED)
        if not tokens.well_formed(token):
            return Refused(BAD_TOKEN)
        digest = tokens.token_hash(token)
        found = snap.by_hash.get(digest)
        if found is None and self.store is not None:  # perhaps made since the last reload: read the users again
            found = self.store.recheck().by_hash.get(digest)
        if found is None or not tokens.same_hash(found[0].hash, digest):
            return Refused(BAD_TOKEN)
        record, identity = found
        if record.expires_at is not None and not record.live(self.clock()):
            return Refused(EXPIRED)
        return identity

    def admit(self, method: str, request: Any, context: Any, parse: Parse | None = None) -> Admitted | Refused:
        """Whether ``method`` with ``request`` (parsed, or bytes that ``parse(method, bytes)`` reads when the
        decision needs them) may run for the caller of ``context``. Sets what :func:`current` and
        :func:`forwarded` answer for the rest of the call."""
        header = header_of(context)
        _FORWARD.set(((tokens.HEADER, header),) if header else ())
        cls = classes.CLASSES.get(method, RpcClass.ADMIN)
        audited = cls is RpcClass.DDL or method in classes.DELETES
        if method == "Cmd" or audited:
            request = _parsed(method, request, parse)
            cls = classes.rpc_class(method, request)
            audited = audited or cls is RpcClass.ADMIN
        if cls is RpcClass.OPEN:
            _IDENTITY.set(None)
            return Admitted(_PEER, None)
        who = self.identify(header)
        if who is self._anonymous_open and self.store is None and classes.is_user_management(method, request):
            # No catalog here, so no knowing whether a user exists: the bootstrap window is not assumed (a node
            # behind cluster mTLS would take the forwarded call as a peer's). Bootstrap on a node, or the CLI.
            who = self._anonymous
        if isinstance(who, Refused):
            self._refused(method, cls, request, parse, context, "unknown", who.reason)
            return who
        # Whether a call without a token is a cluster peer's is asked only where it matters (the transport's
        # check reads the TLS auth context): for the audit line, or when the anonymous role would refuse.
        if audited and who.kind is Kind.ANONYMOUS and self.internal(context):
            who = self._peer(context)
        names: tuple[str, ...] = ()
        if who.scoped or audited:
            request = _parsed(method, request, parse)
            names = classes.collections_of(method, request)
        for name in names or (None,):
            decision = authorize(who, cls, name)
            if decision.allowed:
                continue
            if who.kind is Kind.ANONYMOUS and self.internal(context):
                who = self._peer(context)
                break
            self._refused(method, cls, request, parse, context, who.label, decision.reason)
            return Refused(decision.reason)
        _IDENTITY.set(who)
        if not audited:
            return Admitted(who, None)
        return Admitted(who, (method, cls, ",".join(names), partition_of(request), peer_address(context),
                              classes.command_of(method, request)))

    @staticmethod
    def _peer(context: Any) -> Identity:
        return Identity(Kind.PEER, peer_name(context), Role.ADMIN)

    def done(self, admitted: Admitted, code: int) -> None:
        """The call ended with status ``code``: its audit line, if it is audited."""
        if admitted.audited is None:
            return
        method, cls, collection, partition, peer, command = admitted.audited
        self.audit.record(AuditRecord(utc_now(), admitted.identity.label, method, cls.value, collection,
                                      partition, int(code), peer, command=command))

    def _refused(self, method: str, cls: RpcClass, request: Any, parse: Parse | None, context: Any, who: str,
                 reason: str) -> None:
        try:
            parsed = _parsed(method, request, parse)
            collection = ",".join(classes.collections_of(method, parsed))
            partition = partition_of(parsed)
            command = classes.command_of(method, parsed)
        except Exception:  # a request that does not parse is still refused and recorded
            collection = partition = command = ""
        self.audit.record(AuditRecord(utc_now(), who, method, cls.value, collection, partition, 3,
                                      peer_address(context), reason, command))


_PEER = Identity(Kind.PEER, "", Role.NONE)
UNVERIFIED = Identity(Kind.USER, "(checked by the nodes)", Role.ADMIN)


def _parsed(method: str, request: Any, parse: Parse | None) -> Any:
    if isinstance(request, bytes | bytearray | memoryview) and parse is not None:
        return parse(method, bytes(request))
    return request

