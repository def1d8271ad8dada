"""``mishards user``: the users of token authentication, kept in the catalog (``coordinator.auth``).

    mishards user add NAME --role ROLE [--collection C] [--expires 90d] --meta-uri URI   (prints the token once)
    mishards user list --meta-uri URI                                                    (no secrets)
    mishards user grant NAME --role ROLE [--collection C] --meta-uri URI
    mishards user token NAME [--expires 90d] --meta-uri URI      (an additional token, for rotation)
    mishards user revoke-token NAME (--id N | --oldest) --meta-uri URI
    mishards user remove NAME --meta-uri URI

``--meta-uri`` defaults to the environment variable ``MISHARDS_META_URI``. Instead of the catalog, the same commands
go through a running server's ``Cmd`` (the proxy or a node; the caller must be an admin) with
``--uri HOST:PORT [--token T] [--tls] [--tls-ca F] [--tls-cert F --tls-key F]`` (``coordinator.users_remote``;
the token defaults to ``MISHARDS_TOKEN``). A new token is the only thing written to standard output (so that a
script can capture it); everything else goes to standard error.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from coordinator import users_remote
from coordinator.auth import tokens, users_db
from coordinator.auth.model import USER_ROLES, User, parse_role
from coordinator.catalog_schema import make_engine

ROLE_NAMES = [r.value for r in USER_ROLES]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mishards user", description="Manage the users of token authentication.")
    p.add_argument("--meta-uri", default=os.environ.get("MISHARDS_META_URI", ""),
                   help="catalog URI (default: $MISHARDS_META_URI)")
    _remote_arguments(p, default=True)
    sub = p.add_subparsers(dest="action", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--meta-uri", default=argparse.SUPPRESS, help="catalog URI")
        _remote_arguments(cmd, default=False)
        return cmd

    add = command("add", "create a user and print its first token (once)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLE_NAMES)
    add.add_argument("--collection", default="", help="the role applies to this collection only")
    add.add_argument("--expires", default="", help="the token expires after this long (e.g. 90d, 12h)")
    command("list", "list users, roles, grants and token ids (no secrets)")
    grant = command("grant", "set a user's global role, or its role on one collection ('none' removes it)")
    grant.add_argument("name")
    grant.add_argument("--role", required=True, choices=ROLE_NAMES)
    grant.add_argument("--collection", default="")
    token = command("token", "issue an additional token (the others stay valid): rotation")
    token.add_argument("name")
    token.add_argument("--expires", default="")
    revoke = command("revoke-token", "revoke one token of a user")
    revoke.add_argument("name")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, dest="token_id")
    which.add_argument("--oldest", action="store_true")
    remove = command("remove", "remove a user with its tokens and grants")
    remove.add_argument("name")
    return p


def _remote_arguments(p: argparse.ArgumentParser, default: bool) -> None:
    """The options of a call through a server (given before or after the action)."""

    def value(initial: object) -> object:
        return initial if default else argparse.SUPPRESS

    p.add_argument("--uri", default=value(""), help="a server's gRPC address HOST:PORT (the proxy, or a node): "
                                                   "manage users through it instead of the catalog")
    p.add_argument("--token", default=value(os.environ.get("MISHARDS_TOKEN", "")),
                   help="an admin's token for --uri (default: $MISHARDS_TOKEN)")
    p.add_argument("--tls", action="store_true", default=value(False), help="--uri is a TLS port (system CAs)")
    p.add_argument("--tls-ca", default=value(""), help="the CA of --uri's certificate (implies --tls)")
    p.add_argument("--tls-cert", default=value(""), help="a client certificate, for an edge asking for one")
    p.add_argument("--tls-key", default=value(""), help="its private key")
    p.add_argument("--tls-server-name", default=value(""), help="the name --uri's certificate carries")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe(user: User) -> str:
    """One user's listing: name, role, grants and each token's id, fingerprint and expiry (never a token)."""
    grants = ", ".join(f"{c}={r.value}" for c, r in sorted(user.grants.items())) or "-"
    toks = "; ".join(f"id {t.id} ({tokens.fingerprint(t.hash)}) expires {_when(t.expires_at)}"
                     for t in user.tokens) or "none"
    return f"{user.name}\trole {user.role.value}\tgrants {grants}\ttokens {toks}"


def run(args: argparse.Namespace) -> int:
    engine = make_engine(args.meta_uri)
    try:
        if args.action == "add":
            expires = users_db.parse_duration(args.expires) if args.expires else None
            issued = users_db.add_user(engine, args.name, parse_role(args.role), args.collection, expires)
            where = f" on collection {args.collection!r}" if args.collection else ""
            print(f"user {args.name!r} added with role {args.role}{where}; its token (shown once, "
                  f"expires {_when(issued.expires_at)}):", file=sys.stderr)
            print(issued.token)
        elif args.action == "token":
            expires = users_db.parse_duration(args.expires) if args.expires else None
            issued = users_db.issue_token(engine, args.name, expires)
            print(f"token id {issued.token_id} issued for {args.name!r} (shown once, expires "
                  f"{_when(issued.expires_at)}); revoke the old one once the clients use it:", file=sys.stderr)
            print(issued.token)
        elif args.action == "list":
            for user in users_db.list_users(engine):
                print(describe(user))
        elif args.action == "grant":
            users_db.grant(engine, args.name, parse_role(args.role), args.collection)
            print(f"user {args.name!r}: role {args.role}" + (f" on {args.collection!r}" if args.collection else ""),
                  file=sys.stderr)
        elif args.action == "revoke-token":
            revoked = users_db.revoke_token(engine, args.name, args.token_id, args.oldest)
            print(f"token id {revoked} of {args.name!r} revoked", file=sys.stderr)
        elif args.action == "remove":
            users_db.remove_user(engine, args.name)
            print(f"user {args.name!r} removed", file=sys.stderr)
    finally:
        engine.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.uri:
        try:
            return users_remote.run(args)
        except users_remote.RemoteError as exc:
            print(f"mishards user: {exc}", file=sys.stderr)
            return 1
    if not args.meta_uri:
        print("mishards user: --meta-uri (or MISHARDS_META_URI), or --uri HOST:PORT, is required", file=sys.stderr)
        return 2
    try:
        return run(args)
    except (users_db.UserError, ValueError) as exc:
        print(f"mishards user: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"mishards user: the catalog did not answer: {type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
