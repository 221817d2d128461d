"""The token gate (DESIGN §4 steps 1-2) over real HTTP against a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import models
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.tokens import digest, new_token, parse_bearer
from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, run_db
from tests.factories import Graph, make_integration, make_source

INTEGRATION = "{ integration { id status scope targets permissions { id slug } source { name } provider { name } team { name } } }"  # noqa: E501
GRAPH = "{ schools { nodes { id } } }"
NOW = datetime.now(UTC)


class World:
    """One source, one integration per status, over a live server."""

    def __init__(self, server: LiveServer, graph: Graph, tokens: dict[str, str]) -> None:
        self.server = server
        self.graph = graph
        self.tokens = tokens


@pytest.fixture(scope="module", params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with fresh_database(request.param, tmp_path_factory.mktemp("gate"), "gate") as url:
        yield from _serve_world(url)


def _serve_world(url: str) -> Iterator[World]:
    """Fill the database at `url` and serve it."""

    async def build(engine: sa.ext.asyncio.AsyncEngine) -> tuple[Graph, dict[str, str]]:
        graph = await make_source(engine, 7, "Gate")
        sid = graph.source.id
        tokens = {
            "active": await make_integration(engine, sid),
            "inactive": await make_integration(engine, sid, status=IntegrationStatus.INACTIVE),
            "disabled": await make_integration(engine, sid, status=IntegrationStatus.DISABLED),
            "scheduled-future": await make_integration(
                engine,
                sid,
                status=IntegrationStatus.INACTIVE,
                start_date=NOW + timedelta(days=365),
            ),
            "scheduled-past": await make_integration(
                engine,
                sid,
                status=IntegrationStatus.INACTIVE,
                start_date=NOW + timedelta(days=1),
            ),
            "active-but-future-start": await make_integration(
                engine, sid, start_date=NOW + timedelta(days=1)
            ),
            "disabled-past-start": await make_integration(
                engine,
                sid,
                status=IntegrationStatus.DISABLED,
                start_date=NOW + timedelta(days=1),
            ),
        }
        # Time passes: these start dates are now behind us, and no job has run.
        table = models.Integration.__table__
        async with engine.begin() as conn:
            for name in ("scheduled-past", "disabled-past-start"):
                await conn.execute(
                    table.update()
                    .where(table.c.token_digest == digest(tokens[name]))
                    .values(start_date=NOW - timedelta(seconds=1))
                )
        return graph, tokens

    graph, tokens = run_db(url, build)
    with LiveServer(Settings(database_url=url)) as server:
        yield World(server, graph, tokens)


def _post(world: World, query: str, headers: dict[str, str]) -> tuple[int, dict[str, str], dict]:
    with world.server.client() as http:
        response = http.post("/graphql", json={"query": query}, headers=headers)
    return response.status_code, dict(response.headers), response.json()


MALFORMED = {
    "missing": {},
    "empty header": {"Authorization": ""},
    "scheme only": {"Authorization": "Bearer"},
    "two spaces": {"Authorization": "Bearer  abc"},
    "wrong scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "token without scheme": {"Authorization": "abcdef"},
    "extra parts": {"Authorization": "Bearer abc def"},
    "bad characters": {"Authorization": "Bearer abc$%^"},
    "unknown token": {"Authorization": f"Bearer {new_token()}"},
}


@pytest.mark.parametrize("query", [INTEGRATION, GRAPH], ids=["integration", "graph"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_no_valid_token_is_401_with_bearer_challenge(world: World, case: str, query: str) -> None:
    status, headers, body = _post(world, query, MALFORMED[case])
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert headers.get("x-request-id")


@pytest.mark.parametrize("spelling", ["Bearer  {}", "bearer {}", "BEARER {}"])
def test_spaces_after_the_scheme_and_its_case_do_not_matter(world: World, spelling: str) -> None:
    # RFC 6750 allows 1*SP after "Bearer"; auth schemes are case-insensitive (RFC 9110).
    authorization = spelling.format(world.tokens["active"])
    status, _, body = _post(world, INTEGRATION, {"Authorization": authorization})
    assert status == 200, body
    assert body["data"]["integration"]["status"] == "ACTIVE"


@pytest.mark.parametrize("spelling", ["Bearer tok ", " Bearer tok", "\tBearer tok\t"])
def test_whitespace_around_the_header_value_is_not_part_of_it(spelling: str) -> None:
    # RFC 9110 strips it; HTTP clients cannot even send it, but proxies can pass it on.
    assert parse_bearer(spelling) == "tok"


def test_the_token_of_another_integration_digest_is_not_a_token(world: World) -> None:
    # A stored digest presented as a token must not authenticate (tokens are hashed first).
    status, _, _ = _post(
        world, GRAPH, {"Authorization": f"Bearer {digest(world.tokens['active'])}"}
    )
    assert status == 401


EXPECTED_STATUS = {
    "active": "ACTIVE",
    "inactive": "INACTIVE",
    "disabled": "DISABLED",
    "scheduled-future": "INACTIVE",
    "scheduled-past": "ACTIVE",
    "active-but-future-start": "INACTIVE",
    "disabled-past-start": "DISABLED",
}


@pytest.mark.parametrize("name", list(EXPECTED_STATUS))
def test_integration_answers_in_every_status(world: World, name: str) -> None:
    status, _, body = _post(world, INTEGRATION, {"Authorization": f"Bearer {world.tokens[name]}"})
    assert status == 200, body
    integration = body["data"]["integration"]
    assert integration["status"] == EXPECTED_STATUS[name]
    assert integration["scope"] == Scope.ALL.value
    assert integration["targets"] == []
    assert integration["source"]["name"] == "Gate"
    assert len(integration["permissions"]) == 11
    assert "errors" not in body


@pytest.mark.parametrize("name", list(EXPECTED_STATUS))
def test_graph_fields_need_an_active_integration(world: World, name: str) -> None:
    status, _, body = _post(world, GRAPH, {"Authorization": f"Bearer {world.tokens[name]}"})
    if EXPECTED_STATUS[name] == "ACTIVE":
        assert status == 200
        assert len(body["data"]["schools"]["nodes"]) == len(world.graph.rows["schools"])
    else:
        assert status == 403
        assert body["data"] is None
        [error] = body["errors"]
        expected = {"code": "INVALID_INTEGRATION_STATE", "status": EXPECTED_STATUS[name]}
        if name.endswith("future-start") or name == "scheduled-future":
            # not yet started: the refusal says from when the integration reads
            starts = datetime.fromisoformat(error["extensions"].pop("startDate"))
            assert starts > datetime.now(UTC)
            assert starts.isoformat() in error["message"]
        assert error["extensions"] == expected


def test_integration_and_graph_together_are_refused_while_inactive(world: World) -> None:
    query = "{ integration { status } schools { nodes { id } } }"
    status, _, body = _post(world, query, {"Authorization": f"Bearer {world.tokens['inactive']}"})
    assert status == 403
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INTEGRATION_STATE"


def test_graph_field_behind_a_fragment_is_still_gated(world: World) -> None:
    query = "query { ...F } fragment F on Query { schools { nodes { id } } }"
    status, _, _ = _post(world, query, {"Authorization": f"Bearer {world.tokens['disabled']}"})
    assert status == 403
    status, _, _ = _post(world, query, {})
    assert status == 401


def test_without_a_token_a_document_is_refused_before_it_is_validated(world: World) -> None:
    # Validation costs the event loop up to tens of milliseconds a document: nobody spends
    # that without a token (a review). The same invalid document is a validation error for a
    # valid token, and introspection is still validated for anyone.
    invalid = "{ people { nodes { nonsense } } }"
    status, headers, body = _post(world, invalid, {})
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    token = next(iter(world.tokens.values()))
    for query, headers in (
        (invalid, {"Authorization": f"Bearer {token}"}),
        ("{ __schema { nonsense } }", {}),
    ):
        status, _, body = _post(world, query, headers)
        assert status != 401
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
        assert "nonsense" in body["errors"][0]["message"]


def test_introspection_needs_no_token(world: World) -> None:
    status, _, body = _post(world, "{ __schema { queryType { name } } }", {})
    assert status == 200
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_access_token_is_returned_only_to_its_own_bearer(world: World) -> None:
    token = world.tokens["active"]
    _, _, body = _post(
        world, "{ integration { accessToken } }", {"Authorization": f"Bearer {token}"}
    )
    assert body["data"]["integration"]["accessToken"] == token


def test_graphiql_is_served_to_a_browser(world: World) -> None:
    with world.server.client() as http:
        response = http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_health_and_readiness(world: World, tmp_path: Path) -> None:
    with world.server.client() as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok"}


def test_every_response_carries_a_request_id(world: World) -> None:
    with world.server.client() as http:
        echoed = http.get("/healthz", headers={"X-Request-ID": "abc-123"})
        fresh = http.get("/healthz")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(fresh.headers["x-request-id"]) >= 16
