"""ASGI middleware around every request: its id, the request body's size cap (413) and deadline
(408), the security headers and response compression."""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ErrorCode
from gateway.graph import http

# The API answers JSON only: nothing may be loaded, framed or run from its responses. The
# GraphiQL pages bring their own policy (gateway/graphiql.py), which is kept.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000"),
)


class BodyLimitMiddleware:
    """Refuses (413, QUERY_TOO_COMPLEX) a request body larger than `max_bytes`, and one that
    has not all arrived `seconds` after the request began (408, QUERY_TOO_COMPLEX).

    A declared `Content-Length` over the limit is refused before anything is read; otherwise
    the body is read up to the limit and handed on in one piece. Without the deadline a client
    that declared a body and stopped sending it held its connection, and the server's memory,
    for ever: three thousand of them, without a token, kept a server's file descriptors
    (found by a review).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, seconds: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _last_header(scope, b"content-length").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        handed: Message | None = None  # what the app reads first
        try:
            async with asyncio.timeout(self.seconds):  # the reading only, not an answer
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        handed = message  # a disconnect: let the app see it
                        break
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        break
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(self._too_slow(), scope, receive, send)
            return
        if size > self.max_bytes:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        if handed is None:
            handed = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replaying([handed], receive), send)

    def _too_large(self) -> http.HTTPError:
        return http.HTTPError(
            413,
            f"The request body is larger than {self.max_bytes:,} bytes, the limit "
            f"(max_body_bytes).",
            ErrorCode.QUERY_TOO_COMPLEX,
            headers={"Connection": "close"},
            extensions={"limit": "bodyBytes", "maximum": self.max_bytes},
        )

    def _too_slow(self) -> http.HTTPError:
        return http.HTTPError(
            408,
            f"The request body did not all arrive within {self.seconds:g} s, the limit "
            "(GATEWAY_BODY_TIMEOUT_SECONDS); send the whole body at once.",
            ErrorCode.QUERY_TOO_COMPLEX,
            headers={"Connection": "close"},
            extensions={"limit": "bodySeconds", "maximum": self.seconds},
        )

    @staticmethod
    async def _refuse(error: http.HTTPError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with `error`, in the media type the request accepts."""
        media_type = http.negotiate(_last_header(scope, b"accept").decode("latin-1"))
        await http.error_response(error, media_type)(scope, receive, send)


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` giving `messages` first (ones read already, handed on)."""
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay


class SecurityHeadersMiddleware:
    """Adds the security headers, a Content-Security-Policy (none of anything, unless the
    response brings its own, as the GraphiQL pages do) and `Cache-Control: no-store` (answers
    hold private data) unless the response says otherwise (GraphiQL's versioned assets)."""

    DEFAULTS = (
        *SECURITY_HEADERS,
        (b"content-security-policy", API_CSP.encode()),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in self.DEFAULTS if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def new_request_id() -> str:
    """A fresh request id: 32 random hex digits.

    From Python's own generator (seeded from the system's at start and again in each forked
    worker), not `uuid4`: an id needs to be unique, not secret (a client may choose its own),
    and `os.urandom` is a system call that hands the GIL to the database threads waiting for
    it, which cost about 70 µs of the event loop's time a request under load.
    """
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Gives every request an id (the client's `X-Request-ID` when sane) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _last_header(scope, b"x-request-id").decode("latin-1")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class GraphCompressionMiddleware(GZipMiddleware):
    """gzip for the Graph API's responses (a 1,000-person nested page is megabytes of JSON)
    when the client accepts it; large bodies are compressed off the event loop.

    Not for /admin/graphql: its answers can hold a new access token next to text the caller
    chose, which is what compression-size attacks (BREACH) need. Not for GraphiQL's assets
    (/graphiql/…) either: they are compressed once and kept (gateway/graphiql.py).

    A client that does not accept gzip gets what Starlette's identity responder gives
    (`Vary: Accept-Encoding` on a body that would have been compressed), from `_identity`:
    Starlette's builds a responder, normalizes its list of excluded types and parses the
    response's headers twice for every request, a measurable share of a small answer's time.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, minimum_size=1024, compresslevel=6)
        self.plain = app
        self.excluded = frozenset(self.exclude_content_types)
        self._excluded_types: dict[bytes, bool] = {}  # `_is_excluded`'s answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/admin", "/graphiql/")):
            await self.plain(scope, receive, send)
        elif b"gzip" in _header(scope, b"accept-encoding"):
            await super().__call__(scope, receive, send)
        else:
            await self.plain(scope, receive, self._identity(send))

    def _identity(self, send: Send) -> Send:
        """`send`, adding `Vary: Accept-Encoding` where Starlette's identity responder does:
        to a response whose first body is at least `minimum_size` bytes (or is followed by
        more), unless it is partial (206), already encoded, or of an excluded type."""
        start: Message | None = None
        as_is = False

        async def send_identity(message: Message) -> None:
            nonlocal start, as_is
            kind = message["type"]
            if kind == "http.response.start":
                start = message
                headers = message.setdefault("headers", [])
                content_type = b""
                for name, value in headers:
                    if name == b"content-encoding":
                        as_is = True
                    elif name == b"content-type" and not content_type:
                        content_type = value
                as_is = as_is or message["status"] == 206 or self._is_excluded(content_type)
                if as_is:
                    await send(message)
                return
            if start is not None and not as_is:
                first, start = start, None
                if kind == "http.response.body":
                    body = message.get("body", b"")
                    if len(body) >= self.minimum_size or message.get("more_body", False):
                        MutableHeaders(raw=first["headers"]).add_vary_header("Accept-Encoding")
                await send(first)
            await send(message)

        return send_identity

    def _is_excluded(self, content_type: bytes) -> bool:
        known = self._excluded_types.get(content_type)
        if known is None:
            known = self._judge(content_type)
            if len(self._excluded_types) >= 64:  # the app's own few types, kept
                self._excluded_types.clear()
            self._excluded_types[content_type] = known
        return known

    def _judge(self, content_type: bytes) -> bool:
        media_type = content_type.decode("latin-1").partition(";")[0].strip().lower()
        kinds = {media_type, media_type.partition("/")[0] + "/*"}
        if media_type.startswith("application/grpc+"):
            kinds.add("application/grpc")
        return not self.excluded.isdisjoint(kinds)


def _header(scope: Scope, name: bytes) -> bytes:
    """The first value of the request header `name` (lower case), or b""."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _last_header(scope: Scope, name: bytes) -> bytes:
    """The last value of the request header `name` (lower case), or b"" (as a dict of the
    headers would hold it, without building one)."""
    found = b""
    for key, value in scope["headers"]:
        if key == name:
            found = value
    return bytes(found)
