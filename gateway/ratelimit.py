"""Per-token rate limiting of the Graph, admin and meta APIs: a token bucket for each access
token, admin key or application key, and one per client address for requests that carry no
valid one.

Each caller has a bucket of `burst` requests that refills at `per_second` requests a second.
A request takes one; with the bucket empty it is answered 429 RATE_LIMITED with `Retry-After`
(whole seconds until a request is available again), before its body is read or its token is
looked up, so a flood costs the server little and never touches another token's bucket.

The key is the SHA-256 digest of the bearer token (the token itself is neither kept nor
logged); a request without a well-formed bearer token is keyed on its client address. The
client address is the connecting peer unless GATEWAY_TRUSTED_PROXIES names it (then the
X-Forwarded-For it sends; see `gateway.app`). Buckets
live in this process's memory: the least recently used are dropped past `max_keys` (a dropped
bucket comes back full, as it would have been after `burst / per_second` seconds of quiet).

Several worker processes (`gateway serve --workers N`) or machines each keep their own buckets,
and the operating system spreads connections over the workers, so a token may get up to N
times the configured rate and burst; set the rate to the wanted total divided by N when that
matters. A keep-alive connection stays on one worker, so one client's burst usually meets one
bucket.

A batched request (GATEWAY_MAX_BATCH) spends one request per operation: the first here, the
others as the view reaches them, each refused on its own once the bucket is empty.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access.tokens import digest_once, parse_bearer
from gateway.errors import ErrorCode
from gateway.graph import http

DEFAULT_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets by key; `take` spends one request from a key's bucket."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 when `key` may make a request now (and it is counted), else the seconds to wait
        until it may."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_second

    def wait(self, key: str) -> float:
        """The seconds until `key` may make a request (0.0: now); counts nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(
            float(self.burst),
            bucket.tokens + max(0.0, self.clock() - bucket.updated) * self.per_second,
        )
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_second

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets


def client_key(scope: Scope) -> str:
    """The bucket of a request's client address."""
    client = scope.get("client")
    return "client:" + (client[0] if client else "unknown")


def rate_key(scope: Scope) -> str:
    """The bucket of a request: its bearer token's digest, else its client address."""
    header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    token = parse_bearer(header)
    if token is not None:
        return "token:" + digest_once(scope, token)
    return client_key(scope)


GRAPHQL_PATHS = frozenset({"/graphql", "/admin/graphql", "/meta/graphql"})
# The key of `request.state` holding a callable that spends one more request from the
# request's bucket (None when it may go on, else the 429 refusal).
CHARGE_STATE = "rate_limit_charge"


class RateLimitMiddleware:
    """Answers 429 to requests under `paths` whose bucket is empty; passes the rest on.

    Requests refused with 401 (no, malformed or unknown credentials) also spend from a bucket
    of their client address. While it is empty, that address's requests without a bearer token
    get 429 at once, and its requests with one whose token turns out not to be valid get 429
    instead of 401. A valid token is never refused for its address: made-up tokens sent from a
    school's shared address (a NAT, a load balancer) do not lock out the school's real ones,
    nor a token created after the flood. Without the address bucket a flood of made-up tokens,
    each with a fresh bucket of its own, would never be limited.
    """

    def __init__(
        self,
        app: ASGIApp,
        buckets: TokenBuckets,
        paths: frozenset[str] = GRAPHQL_PATHS,
        failures: TokenBuckets | None = None,
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.paths = paths
        self.failures = failures or TokenBuckets(
            buckets.per_second, buckets.burst, max_keys=buckets.max_keys, clock=buckets.clock
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        address = client_key(scope)
        key = rate_key(scope)
        if key == address:
            # No bearer token: nothing that could be valid, so the address's bucket decides.
            wait = self.failures.wait(address)
            if wait > 0:
                await self._refuse(scope, receive, send, wait, self._address_reason())
                return
        wait = self.buckets.take(key)
        if wait > 0:
            await self._refuse(scope, receive, send, wait, self._token_reason())
            return
        # A batched request (`gateway.graph.batch`) spends one more for each further operation.
        scope.setdefault("state", {})[CHARGE_STATE] = lambda: self._charge(key)
        refused = False

        async def refusing_failures(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                wait = self.failures.take(address)
                if wait > 0:
                    # The token was looked up and is not valid; its address has sent too many.
                    refused = True
                    await self._refuse(scope, receive, send, wait, self._address_reason())
                    return
            if not refused:
                await send(message)

        await self.app(scope, receive, refusing_failures)

    def _charge(self, key: str) -> http.HTTPError | None:
        """Spend one more request from `key`'s bucket: None, or the 429 refusal when empty."""
        wait = self.buckets.take(key)
        return refusal(wait, self._token_reason()) if wait > 0 else None

    def _token_reason(self) -> str:
        return (
            f"Rate limit exceeded: each access token may send {self.buckets.burst} "
            f"requests at once and {self.buckets.per_second:g} a second after that."
        )

    def _address_reason(self) -> str:
        return (
            "Too many requests without a valid token from this address: "
            f"{self.failures.burst} at once and {self.failures.per_second:g} a second "
            "after that."
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, wait: float, reason: str
    ) -> None:
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        response = http.error_response(refusal(wait, reason), http.negotiate(accept))
        await response(scope, receive, send)


def refusal(wait: float, reason: str) -> http.HTTPError:
    """The 429 RATE_LIMITED error for a request that may be sent again in `wait` seconds."""
    retry_after = max(1, math.ceil(wait))
    return http.HTTPError(
        429,
        f"{reason} Retry in {retry_after} s.",
        ErrorCode.RATE_LIMITED,
        headers={"Retry-After": str(retry_after)},
        extensions={"retryAfter": retry_after},
    )
