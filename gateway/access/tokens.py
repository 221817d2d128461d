"""Access tokens and admin keys: generation, digests, parsing of the Authorization header."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


DIGEST_STATE = "gateway.bearer_digest"


def digest_once(scope: MutableMapping[str, Any], token: str) -> str:
    """`digest(token)` for one request, kept in its ASGI scope's state: the rate limit and the
    token lookup both need it."""
    state = scope.setdefault("state", {})
    found = state.get(DIGEST_STATE)
    if found is not None and found[0] == token:
        return str(found[1])
    value = digest(token)
    state[DIGEST_STATE] = (token, value)
    return value


def digests_equal(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=")


def parse_bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when malformed.

    Malformed means: no header, another scheme, no token, more than one token, or characters
    outside RFC 6750's b64token alphabet. Whitespace around the value is not part of it
    (RFC 9110), and the scheme may be followed by several spaces (RFC 6750: `1*SP`).
    """
    if header is None:
        return None
    parts = [part for part in header.strip(" \t").split(" ") if part]
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = parts[1]
    if not token or not set(token) <= _TOKEN_ALPHABET or len(token) > 512:
        return None
    return token
