"""Tokens: 32 random bytes, urlsafe base64, behind a recognisable prefix; stored only as their SHA-256 (hex).

A token is looked up by its hash: the hash of what a caller presents picks the candidate record, then the two
hashes are compared with :func:`hmac.compare_digest`. Timing can tell an attacker at most whether the hash of
their guess is (close to) a stored hash, which without a preimage of SHA-256 says nothing about a real token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "mshd_"
SECRET_BYTES = 32
# 43 characters of urlsafe base64 (no padding) after the prefix.
TOKEN_LENGTH = len(PREFIX) + 43
_SHAPE = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{43}")
SCHEME = "bearer"
HEADER = "authorization"


def new_token() -> str:
    """A fresh token (shown to the operator once; only its hash is kept)."""
    raw = secrets.token_bytes(SECRET_BYTES)
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def token_hash(token: str) -> str:
    """The stored form of a token: SHA-256, lowercase hex (64 characters)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def well_formed(token: str) -> bool:
    """Whether ``token`` has the shape of one this project issues (checked before any hashing)."""
    return len(token) == TOKEN_LENGTH and _SHAPE.fullmatch(token) is not None


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two hex hashes."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def bearer(header: object) -> str | None:
    """The token of an ``authorization`` value ``Bearer <token>``; None when there is no such value.

    Any input is accepted (str or bytes, of any size and content); only the scheme and one token are read, so a
    malformed value is simply no token of ours (the caller then refuses it as a wrong token, never crashes).
    """
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if not isinstance(header, str) or len(header) > 1024:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != SCHEME:
        return None
    return rest.strip()


def fingerprint(token_hash_hex: str) -> str:
    """A short, non-secret name of a stored token (the first 8 hex digits of its hash) for listings."""
    return token_hash_hex[:8]
