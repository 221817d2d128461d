"""The ASGI middleware's own work, against what it replaced: Starlette's identity responder for
clients that do not accept gzip, the security headers, and fresh request ids."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Message, Receive, Scope, Send

from gateway.middleware import (
    API_CSP,
    GraphCompressionMiddleware,
    SecurityHeadersMiddleware,
    new_request_id,
)

BIG = b"x" * 1024
SMALL = b"x" * 1023
JSON_TYPE = (b"content-type", b"application/json")

# What an app under /graphql may send: (start headers, status, body messages).
RESPONSES: dict[str, tuple[list[tuple[bytes, bytes]], int, list[Message]]] = {
    "small": ([JSON_TYPE], 200, [{"type": "http.response.body", "body": SMALL}]),
    "large": ([JSON_TYPE], 200, [{"type": "http.response.body", "body": BIG}]),
    "empty": ([JSON_TYPE], 204, [{"type": "http.response.body"}]),
    "streamed small": (
        [JSON_TYPE],
        200,
        [
            {"type": "http.response.body", "body": b"{", "more_body": True},
            {"type": "http.response.body", "body": b"}"},
        ],
    ),
    "already varies": (
        [JSON_TYPE, (b"vary", b"Origin")],
        200,
        [{"type": "http.response.body", "body": BIG}],
    ),
    "partial": ([JSON_TYPE], 206, [{"type": "http.response.body", "body": BIG}]),
    "encoded": (
        [JSON_TYPE, (b"content-encoding", b"br")],
        200,
        [{"type": "http.response.body", "body": BIG}],
    ),
    "excluded type": (
        [(b"content-type", b"image/png")],
        200,
        [{"type": "http.response.body", "body": BIG}],
    ),
    "excluded family": (
        [(b"content-type", b"Video/MP4; codecs=x")],
        200,
        [{"type": "http.response.body", "body": BIG}],
    ),
    "grpc": (
        [(b"content-type", b"application/grpc+proto")],
        200,
        [{"type": "http.response.body", "body": BIG}],
    ),
    "no type": ([], 200, [{"type": "http.response.body", "body": BIG}]),
    "trailers": (
        [JSON_TYPE],
        200,
        [
            {"type": "http.response.body", "body": BIG},
            {"type": "http.response.trailers", "headers": [], "more_trailers": False},
        ],
    ),
}


def _app(headers: list[tuple[bytes, bytes]], status: int, bodies: list[Message]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for body in bodies:
            await send(dict(body))

    return app


def _sent(middleware: Any, accept: bytes | None) -> list[Message]:
    scope: Scope = {
        "type": "http",
        "path": "/graphql",
        "method": "POST",
        "headers": [] if accept is None else [(b"accept-encoding", accept)],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


@pytest.mark.parametrize("case", sorted(RESPONSES))
@pytest.mark.parametrize("accept", [None, b"identity", b"br, deflate"])
def test_a_client_without_gzip_gets_what_starlettes_identity_responder_gives(
    case: str, accept: bytes | None
) -> None:
    app = _app(*RESPONSES[case])
    ours = _sent(GraphCompressionMiddleware(app), accept)
    starlettes = _sent(GZipMiddleware(app, minimum_size=1024, compresslevel=6), accept)
    assert ours == starlettes


def test_a_client_with_gzip_still_gets_it_compressed() -> None:
    sent = _sent(GraphCompressionMiddleware(_app(*RESPONSES["large"])), b"gzip, br")
    assert (b"content-encoding", b"gzip") in sent[0]["headers"]
    assert len(sent[1]["body"]) < len(BIG)


@pytest.mark.parametrize(
    "headers",
    [
        [JSON_TYPE],
        [JSON_TYPE, (b"cache-control", b"public, max-age=60")],
        [(b"content-security-policy", b"default-src 'self'"), (b"X-Frame-Options", b"SAMEORIGIN")],
    ],
)
def test_security_headers_are_added_unless_the_response_has_its_own(
    headers: list[tuple[bytes, bytes]],
) -> None:
    sent = _sent(SecurityHeadersMiddleware(_app(headers, 200, [])), None)
    got = sent[0]["headers"]
    assert got[: len(headers)] == headers  # the response's own come first, untouched
    names = [name.lower() for name, _ in got]
    assert len(names) == len(set(names))  # nothing doubled
    expected = {
        b"x-content-type-options": b"nosniff",
        b"x-frame-options": b"DENY",
        b"referrer-policy": b"no-referrer",
        b"cross-origin-opener-policy": b"same-origin",
        b"strict-transport-security": b"max-age=31536000",
        b"content-security-policy": API_CSP.encode(),
        b"cache-control": b"no-store",
    }
    own = {name.lower() for name, _ in headers}
    for name, value in expected.items():
        if name not in own:
            assert (name, value) in got


def test_fresh_request_ids_are_32_hex_digits_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
