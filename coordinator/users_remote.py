"""``mishards user ... --uri HOST:PORT``: user management through a running server's ``Cmd`` (the proxy, or a
node), as an admin, instead of writing the catalog directly.

The token to call with comes from ``--token`` or the environment variable ``MISHARDS_TOKEN`` (better: a command
line is visible to every local user); ``--tls`` / ``--tls-ca`` (and ``--tls-cert`` / ``--tls-key`` for an edge that
asks for client certificates) reach a TLS port. The command text is built by :func:`command_text` (pure) in the
syntax of :mod:`coordinator.auth.user_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import grpc

from milvus_wire import milvus_pb2, milvus_pb2_grpc

TIMEOUT = 30.0


class RemoteError(Exception):
    """The server refused the command, or could not be reached (the message says which)."""


def command_text(args: argparse.Namespace) -> str:
    """The ``user ...`` command for parsed CLI arguments."""
    action = args.action
    if action == "list":
        return "user list"
    words = ["user", action, args.name]
    if action in ("add", "grant"):
        words.append(args.role)
        if args.collection:
            words += ["on", args.collection]
    if action in ("add", "token") and args.expires:
        words += ["expires", args.expires]
    if action == "revoke-token":
        words.append("oldest" if args.oldest else str(args.token_id))
    return " ".join(words)


def _pem(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to ``args.uri``: plain, or TLS with ``--tls`` or any of the TLS files."""
    if not (args.tls or args.tls_ca or args.tls_cert):
        return grpc.insecure_channel(args.uri)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise RemoteError("--tls-cert and --tls-key go together")
    try:
        credentials = grpc.ssl_channel_credentials(_pem(args.tls_ca), _pem(args.tls_key), _pem(args.tls_cert))
    except OSError as exc:
        raise RemoteError(f"cannot read a TLS file: {exc}") from None
    options = [("grpc.ssl_target_name_override", args.tls_server_name)] if args.tls_server_name else []
    return grpc.secure_channel(args.uri, credentials, options=options)


def call(args: argparse.Namespace, text: str) -> str:
    """Send ``Cmd(text)`` with the caller's token; the reply string, or RemoteError with the server's reason."""
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    with channel(args) as chan:
        stub = milvus_pb2_grpc.MilvusServiceStub(chan)
        try:
            reply = stub.Cmd(milvus_pb2.Command(cmd=text), metadata=metadata, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            raise RemoteError(f"{args.uri} did not answer: {exc.code().name}") from None
    if reply.status.error_code != 0:
        raise RemoteError(f"refused by {args.uri} (code {reply.status.error_code}): {reply.status.reason}")
    return str(reply.string_reply)


def describe(user: dict[str, Any]) -> str:
    """One user of a ``user list`` reply, as the catalog listing prints it."""
    grants = ", ".join(f"{c}={r}" for c, r in sorted(user["grants"].items())) or "-"
    toks = "; ".join(f"id {t['id']} ({t['fingerprint']}) expires {t['expires']}" for t in user["tokens"]) or "none"
    return f"{user['name']}\trole {user['role']}\tgrants {grants}\ttokens {toks}"


def run(args: argparse.Namespace) -> int:
    """Run the parsed command through the server; a new token alone on standard output, the rest on error."""
    text = call(args, command_text(args))
    try:
        reply = json.loads(text)
    except ValueError:
        raise RemoteError(f"{args.uri} does not manage users (it answered {text[:80]!r})") from None
    if args.action == "list":
        for user in reply.get("users", []):
            print(describe(user))
    elif args.action in ("add", "token"):
        print(f"token id {reply['token_id']} for {reply['user']!r} (shown once, expires {reply['expires']}):",
              file=sys.stderr)
        print(reply["token"])
    else:
        print(json.dumps(reply), file=sys.stderr)
    return 0

