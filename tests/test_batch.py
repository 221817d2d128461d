"""Batched requests (gateway.graph.batch) over real HTTP: off by default with a clear 400; on
with GATEWAY_MAX_BATCH, each operation judged on its own by the guard, the limits and the rate
limit, in order, one failing without spoiling the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.graph.persisted import sha256_hex
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

SCHOOLS = "{ schools(first: 2) { nodes { name } } }"
PEOPLE = "{ people(first: 1) { nodes { id } } }"
TYPENAME = "{ __typename }"
DEEP = "{ schools(first: 1) { nodes { classes(first: 1) { nodes { people { nodes { id } } } } } } }"


def op(query: str, **extra: Any) -> dict[str, Any]:
    return {"query": query, **extra}


def codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('batch') / 'gateway.db'}"


@pytest.fixture(scope="module")
def tokens(url: str) -> dict[str, str]:
    """`full`: every permission; `partial`: organizations but not people."""

    async def build(engine: AsyncEngine) -> dict[str, str]:
        graph = await make_source(engine, 29, "Batch", people=6, enrollments=6)
        source_id = str(graph.source.id)
        return {
            "full": await make_integration(engine, source_id),
            "partial": await make_integration(
                engine, source_id, permissions=["organizations:read"]
            ),
        }

    return run_db(url, build)


@pytest.fixture(scope="module")
def schools(url: str) -> dict[str, Any]:
    """The answer to SCHOOLS."""

    async def read(engine: AsyncEngine) -> list[dict[str, str]]:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT name FROM schools ORDER BY id LIMIT 2"))
            return [{"name": name} for (name,) in rows]

    return {"data": {"schools": {"nodes": run_db(url, read)}}}


@pytest.fixture
def serve(url: str) -> Callable[..., LiveServer]:
    def make(**overrides: Any) -> LiveServer:
        defaults: dict[str, Any] = {"rate_limit_burst": 1000, "max_batch": 4}
        return LiveServer(Settings(database_url=url, **(defaults | overrides)))

    return make


@pytest.fixture
def server(serve: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    with serve() as running:
        yield running


def post(server: LiveServer, token: str | None, body: Any, **headers: str) -> httpx.Response:
    with server.client(token) as http:
        return http.post("/graphql", json=body, headers=headers)


def test_batching_is_off_by_default_and_says_how_to_turn_it_on(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    with serve(max_batch=0) as server:
        response = post(server, tokens["full"], [op(SCHOOLS)])
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "Batched operations are turned off" in error["message"]
    assert "GATEWAY_MAX_BATCH=N" in error["message"]


def test_each_operation_is_answered_in_order(
    server: LiveServer, tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    response = post(server, tokens["full"], [op(SCHOOLS), op(TYPENAME), op(SCHOOLS)])
    assert response.status_code == 200
    assert response.json() == [schools, {"data": {"__typename": "Query"}}, schools]


def test_a_denied_or_too_complex_operation_spoils_none_of_the_others(
    serve: Callable[..., LiveServer], tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    with serve(max_depth=6) as server:
        response = post(server, tokens["partial"], [op(SCHOOLS), op(PEOPLE), op(DEEP), op(SCHOOLS)])
    assert response.status_code == 200
    first, denied, deep, last = response.json()
    assert first == last == schools
    assert denied["data"] == {"people": None}
    assert codes(denied) == ["FORBIDDEN"]
    assert "people:read" in denied["errors"][0]["message"]
    assert "data" in deep
    assert deep["data"] is None
    assert codes(deep) == ["QUERY_TOO_COMPLEX"]
    assert deep["errors"][0]["extensions"]["limit"] == "depth"


def test_a_malformed_operation_gets_its_own_error(
    server: LiveServer, tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    body = [op(SCHOOLS), {"query": 7}, {"variables": {}}, op("{ schools { nodes { nam } } }")]
    response = post(server, tokens["full"], body)
    assert response.status_code == 200
    good, wrong_type, no_query, invalid = response.json()
    assert good == schools
    assert wrong_type["errors"][0]["message"] == (
        "Operation 1 of the batch: `query` must be a string, not a number."
    )
    assert no_query["errors"][0]["message"] == (
        "Operation 2 of the batch: The request has no `query` parameter."
    )
    assert [codes(r) for r in (wrong_type, no_query, invalid)] == [["BAD_USER_INPUT"]] * 3
    assert "nam" in invalid["errors"][0]["message"]


def test_request_errors_have_no_data_under_graphql_response_json(
    server: LiveServer, tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    accept = "application/graphql-response+json"
    response = post(server, tokens["full"], [op(SCHOOLS), {"query": 7}], Accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(accept)
    good, bad = response.json()
    assert good == schools
    assert set(bad) == {"errors"}


def test_each_operation_spends_from_the_rate_limit(
    serve: Callable[..., LiveServer], tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    with serve(rate_limit_burst=3, rate_limit_per_second=0.001) as server:
        response = post(server, tokens["full"], [op(SCHOOLS)] * 4)
        after = post(server, tokens["full"], op(SCHOOLS))
    assert response.status_code == 200
    *served, refused = response.json()
    assert served == [schools] * 3
    assert codes(refused) == ["RATE_LIMITED"]
    assert "Rate limit exceeded" in refused["errors"][0]["message"]
    assert refused["errors"][0]["extensions"]["retryAfter"] >= 1
    assert after.status_code == 429


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "The batch is an empty array", id="empty"),
        pytest.param(
            [op(TYPENAME)] * 5,
            "The batch has 5 operations; the limit (GATEWAY_MAX_BATCH) is 4",
            id="too-long",
        ),
    ],
)
def test_an_empty_or_too_long_batch_is_refused_whole(
    server: LiveServer, tokens: dict[str, str], body: list[Any], message: str
) -> None:
    response = post(server, tokens["full"], body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


def test_a_batch_without_a_valid_token_is_refused_operation_by_operation(
    server: LiveServer,
) -> None:
    response = post(server, None, [op(TYPENAME), op(SCHOOLS)])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="gateway"'
    introspection, refused = response.json()
    assert introspection == {"data": {"__typename": "Query"}}
    assert codes(refused) == ["UNAUTHENTICATED"]


def test_persisted_queries_work_inside_a_batch(
    server: LiveServer, tokens: dict[str, str], schools: dict[str, Any]
) -> None:
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(SCHOOLS)}}}
    miss, registered = post(server, tokens["full"], [hashed, {"query": SCHOOLS, **hashed}]).json()
    assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert registered == schools
    assert post(server, tokens["full"], [hashed, hashed]).json() == [schools, schools]
