"""Per-token rate limiting (gateway.ratelimit): the bucket arithmetic, and over real HTTP a
flood refused with 429 RATE_LIMITED and Retry-After while other tokens go on unharmed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.ratelimit import TokenBuckets, rate_key
from gateway.settings import Settings
from tests.admin_factories import make_admin_key
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

TYPENAME = {"query": "{ __typename }"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_second=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert buckets.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)


def test_buckets_are_independent_per_key() -> None:
    buckets = TokenBuckets(per_second=1.0, burst=2, clock=FakeClock())
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert [buckets.take("b") for _ in range(2)] == [0.0, 0.0]


def test_a_quiet_bucket_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(per_second=10.0, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


def test_the_least_recently_used_bucket_is_dropped_past_max_keys() -> None:
    buckets = TokenBuckets(per_second=1.0, burst=1, max_keys=2, clock=FakeClock())
    buckets.take("a")
    buckets.take("b")
    buckets.take("a")  # "a" is now the most recent, "b" the least
    buckets.take("c")
    assert len(buckets) == 2
    assert "b" not in buckets
    assert "a" in buckets
    assert buckets.take("a") > 0.0  # still empty: it was kept
    assert buckets.take("b") == 0.0  # comes back full


def _scope(authorization: str | None, client: str = "10.1.2.3") -> dict[str, object]:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return {"type": "http", "headers": headers, "client": (client, 5000)}


def test_the_key_is_the_tokens_digest_never_the_token() -> None:
    token = "abcDEF123_-abcDEF123_-abcDEF123_-abcDEF123"
    key = rate_key(_scope(f"Bearer {token}"))
    assert key.startswith("token:")
    assert token not in key
    assert key == rate_key(_scope(f"bearer {token}", client="10.9.9.9"))
    assert rate_key(_scope(None)) == "client:10.1.2.3"
    assert rate_key(_scope("Basic dXNlcjpwYXNz")) == "client:10.1.2.3"


# ---------------------------------------------------------------- over HTTP


@dataclass
class World:
    url: str
    source_id: str
    tokens: list[str]

    def serve(self, **settings: Any) -> LiveServer:
        return LiveServer(Settings(database_url=self.url, **settings))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ratelimit') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> tuple[str, list[str]]:
        graph = await make_source(engine, 5, "Rate", people=10, enrollments=10)
        return graph.source.id, [await make_integration(engine, graph.source.id) for _ in range(2)]

    return World(url, *run_db(url, build))


def _burst(
    server: LiveServer, token: str | None, count: int, body: dict[str, str] = TYPENAME
) -> list[httpx.Response]:
    """`count` requests sent at once."""

    async def send() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=60, limits=limits
        ) as http:
            return await asyncio.gather(*(http.post("/graphql", json=body) for _ in range(count)))

    return asyncio.run(send())


def test_a_flood_is_refused_with_429_and_retry_after(world: World) -> None:
    first, second = world.tokens
    with world.serve(rate_limit_burst=5, rate_limit_per_second=0.01) as server:
        responses = _burst(server, first, 8)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [429] * 3
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.headers["retry-after"] == "100"
        assert refused.headers["content-type"] == "application/json; charset=utf-8"
        assert refused.headers["x-request-id"]
        (error,) = refused.json()["errors"]
        assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 100}
        assert "5 requests at once" in error["message"]
        # The other token is untouched by the flood.
        assert [r.status_code for r in _burst(server, second, 5)] == [200] * 5


def test_an_unknown_token_is_limited_per_address(world: World) -> None:
    with world.serve(rate_limit_burst=2, rate_limit_per_second=0.01) as server:
        graph = {"query": "{ schools { nodes { id } } }"}
        # A token already accepted from this address keeps working through what follows.
        assert [r.status_code for r in _burst(server, world.tokens[0], 1)] == [200]
        statuses = sorted(
            r.status_code for r in _burst(server, "not-a-real-token-at-all", 4, graph)
        )
        assert statuses == [401, 401, 429, 429]
        assert [r.status_code for r in _burst(server, world.tokens[0], 1)] == [200]


def test_made_up_tokens_each_with_a_fresh_bucket_are_limited_per_address(world: World) -> None:
    # Every made-up token would have a full bucket of its own; the 401s they earn spend from
    # their address's bucket instead, so a flood of them stops after the burst.
    with world.serve(rate_limit_burst=3, rate_limit_per_second=0.01) as server:
        graph = {"query": "{ schools { nodes { id } } }"}
        statuses = [
            _burst(server, f"made-up-token-number-{n:04d}", 1, graph)[0].status_code
            for n in range(8)
        ]
        assert statuses == [401] * 3 + [429] * 5
        with server.client() as http:
            admin = http.post(
                "/admin/graphql", json=TYPENAME, headers={"Authorization": "Bearer x"}
            )
        assert admin.status_code == 429
        assert "without a valid token from this address" in admin.json()["errors"][0]["message"]


def test_the_admin_api_is_rate_limited_per_key(world: World) -> None:
    key = make_admin_key(world.url).key
    with world.serve(rate_limit_burst=2, rate_limit_per_second=0.01) as server:
        with server.client(key) as http:
            statuses = [http.post("/admin/graphql", json=TYPENAME).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


def test_429_speaks_the_media_type_the_client_asked_for(world: World) -> None:
    with world.serve(rate_limit_burst=1, rate_limit_per_second=0.01) as server:
        with server.client(world.tokens[0]) as http:
            http.post("/graphql", json=TYPENAME)
            refused = http.post(
                "/graphql",
                json=TYPENAME,
                headers={"Accept": "application/graphql-response+json"},
            )
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/graphql-response+json")


def test_the_defaults_let_an_ordinary_burst_through_and_stop_a_flood(world: World) -> None:
    defaults = Settings.model_construct()
    assert (defaults.rate_limit_burst, defaults.rate_limit_per_second) == (200, 20.0)
    with world.serve() as server:
        assert {r.status_code for r in _burst(server, world.tokens[0], 100)} == {200}
        flood = [r.status_code for r in _burst(server, world.tokens[0], 300)]
        assert 429 in flood
        # The flood left the other token alone.
        assert {r.status_code for r in _burst(server, world.tokens[1], 100)} == {200}


def test_health_checks_are_not_rate_limited(world: World) -> None:
    with (
        world.serve(rate_limit_burst=1, rate_limit_per_second=0.01) as server,
        server.client() as http,
    ):
        assert [http.get("/healthz").status_code for _ in range(5)] == [200] * 5


def _new_token(world: World) -> str:
    async def create(engine: AsyncEngine) -> str:
        return await make_integration(engine, world.source_id)

    return run_db(world.url, create)


def test_made_up_tokens_never_lock_out_a_valid_token_from_the_same_address(world: World) -> None:
    graph = {"query": "{ schools { nodes { id } } }"}
    with world.serve(rate_limit_burst=3, rate_limit_per_second=0.01) as server:
        statuses = [
            _burst(server, f"made-up-token-number-{n:04d}", 1, graph)[0].status_code
            for n in range(8)
        ]
        assert statuses == [401] * 3 + [429] * 5
        with server.client() as http:
            assert http.post("/graphql", json=graph).status_code == 429  # no token at all
        # A token created after the flood, and one this process has never seen, both work.
        fresh = _new_token(world)
        assert [r.status_code for r in _burst(server, fresh, 3, graph)] == [200] * 3
        assert [r.status_code for r in _burst(server, world.tokens[1], 1, graph)] == [200]
        # Made-up tokens are still refused.
        assert _burst(server, "made-up-token-number-9999", 1, graph)[0].status_code == 429


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.access"]


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    defaults = Settings.model_construct()
    assert defaults.trusted_proxies == []
    graph = {"query": "{ schools { nodes { id } } }"}
    with world.serve(rate_limit_burst=3, rate_limit_per_second=0.01) as server:
        with caplog.at_level(logging.INFO, logger="gateway"), server.client() as http:
            http.post("/graphql", json=TYPENAME, headers={"X-Forwarded-For": "203.0.113.7"})
        assert [r.__dict__["client"] for r in _access_lines(caplog)] == ["127.0.0.1"]
        # Claiming another address for each made-up token does not give it a bucket of its own.
        statuses = []
        for n in range(6):
            with server.client(f"made-up-token-number-{n:04d}") as http:
                headers = {"X-Forwarded-For": f"203.0.113.{n}"}
                statuses.append(http.post("/graphql", json=graph, headers=headers).status_code)
        assert statuses == [401] * 3 + [429] * 3


def test_a_trusted_proxy_names_the_client(world: World, caplog: pytest.LogCaptureFixture) -> None:
    graph = {"query": "{ schools { nodes { id } } }"}
    settings = {"rate_limit_burst": 2, "rate_limit_per_second": 0.01}
    with world.serve(trusted_proxies=["127.0.0.1"], **settings) as server:
        with caplog.at_level(logging.INFO, logger="gateway"), server.client() as http:
            http.post("/graphql", json=TYPENAME, headers={"X-Forwarded-For": "203.0.113.7"})
        assert [r.__dict__["client"] for r in _access_lines(caplog)] == ["203.0.113.7"]
        # Behind the proxy, each client address has its own bucket for made-up tokens.
        statuses = []
        for n, client in enumerate(["198.51.100.1"] * 3 + ["198.51.100.2"]):
            with server.client(f"made-up-token-number-{n:04d}") as http:
                headers = {"X-Forwarded-For": client}
                statuses.append(http.post("/graphql", json=graph, headers=headers).status_code)
        assert statuses == [401, 401, 429, 401]


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert Settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    assert Settings().trusted_proxies == ["10.0.0.0/8"]
