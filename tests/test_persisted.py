"""Apollo's automatic persisted queries (gateway.graph.persisted) over real HTTP: a miss, the
registration, hits by POST and by GET, refusals, the store's bound, and a stored document
judged by the guard, the limits and the rate limit exactly as a sent one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.graph.persisted import PersistedQueries, sha256_hex
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

SCHOOLS = "{ schools(first: 2) { nodes { name } } }"
PEOPLE = "{ people(first: 1) { nodes { id } } }"
NO_CACHE = "private, no-cache, must-revalidate"


def persisted(query: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256_hex(query)}}


def hashed(query: str) -> dict[str, Any]:
    """The request an Apollo client sends first: the hash alone."""
    return {"extensions": persisted(query)}


def registering(query: str) -> dict[str, Any]:
    """The request an Apollo client sends after a miss: the query and its hash."""
    return {"query": query, "extensions": persisted(query)}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('apq') / 'gateway.db'}"


@pytest.fixture(scope="module")
def tokens(url: str) -> dict[str, str]:
    """`full`: every permission; `partial`: organizations but not people."""

    async def build(engine: AsyncEngine) -> dict[str, str]:
        graph = await make_source(engine, 23, "Apq", people=6, enrollments=6)
        source_id = str(graph.source.id)
        return {
            "full": await make_integration(engine, source_id),
            "partial": await make_integration(
                engine, source_id, permissions=["organizations:read"]
            ),
        }

    return run_db(url, build)


@pytest.fixture(scope="module")
def school_names(url: str) -> list[dict[str, str]]:
    async def read(engine: AsyncEngine) -> list[dict[str, str]]:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT name FROM schools ORDER BY id LIMIT 2"))
            return [{"name": name} for (name,) in rows]

    return run_db(url, read)


@pytest.fixture
def serve(url: str) -> Callable[..., LiveServer]:
    def make(**overrides: Any) -> LiveServer:
        return LiveServer(Settings(database_url=url, **({"rate_limit_burst": 1000} | overrides)))

    return make


@pytest.fixture
def server(serve: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    with serve() as running:
        yield running


def post(server: LiveServer, token: str | None, body: Any, **headers: str) -> httpx.Response:
    with server.client(token) as http:
        return http.post("/graphql", json=body, headers=headers)


def get(server: LiveServer, token: str | None, **params: Any) -> httpx.Response:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    with server.client(token) as http:
        return http.get("/graphql", params=encoded, headers={"Accept": "application/json"})


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_an_unknown_hash_is_the_miss_apollo_clients_retry_on(
    server: LiveServer, tokens: dict[str, str], accept: str
) -> None:
    response = post(server, tokens["full"], hashed(SCHOOLS), Accept=accept)
    # 200, as Apollo Server answers: a 400 makes Apollo Link turn persisted queries off.
    assert response.status_code == 200
    assert response.headers["cache-control"] == NO_CACHE
    [error] = response.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert "send the request again with the `query`" in error["extensions"]["hint"]


def test_a_registered_query_is_served_by_hash_over_post_and_get(
    server: LiveServer, tokens: dict[str, str], school_names: list[dict[str, str]]
) -> None:
    expected = {"data": {"schools": {"nodes": school_names}}}
    assert post(server, tokens["full"], hashed(SCHOOLS)).json()["errors"][0]["message"] == (
        "PersistedQueryNotFound"
    )
    registered = post(server, tokens["full"], registering(SCHOOLS))
    assert (registered.status_code, registered.json()) == (200, expected)

    by_post = post(server, tokens["full"], hashed(SCHOOLS))
    assert (by_post.status_code, by_post.json()) == (200, expected)
    by_get = get(server, tokens["full"], extensions=persisted(SCHOOLS))
    assert (by_get.status_code, by_get.json()) == (200, expected)
    # The URL a CDN keys on holds the hash, not the document.
    assert "schools" not in str(by_get.request.url)


@pytest.mark.parametrize("token", [None, "made-up-token"])
@pytest.mark.parametrize("query", [SCHOOLS, "{ __typename }"])
def test_only_a_request_with_a_valid_token_registers_a_query(
    server: LiveServer, tokens: dict[str, str], token: str | None, query: str
) -> None:
    # Anyone could register documents without a token (refused 401, or answered when only
    # introspection), churning every application's entries out of the store (found by a review).
    post(server, token, registering(query))
    missed = post(server, tokens["full"], hashed(query))
    assert missed.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    post(server, tokens["partial"], registering(query))  # a valid token, even with fewer rights
    assert "errors" not in post(server, tokens["full"], hashed(query)).json()


def test_a_hash_in_upper_case_names_the_same_document(
    server: LiveServer, tokens: dict[str, str], school_names: list[dict[str, str]]
) -> None:
    """Hex digits in either case are one hash: a query registered under its upper-case hash is
    found by it, and by the lower-case one (it was accepted, then never found: a review)."""
    expected = {"data": {"schools": {"nodes": school_names}}}
    query = SCHOOLS.replace("first: 2", "first: 2 ")  # a document no other test registers
    upper = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query).upper()}}
    registered = post(server, tokens["full"], {"query": query, "extensions": upper})
    assert (registered.status_code, registered.json()) == (200, expected)
    for extensions in (upper, persisted(query)):
        found = post(server, tokens["full"], {"extensions": extensions})
        assert (found.status_code, found.json()) == (200, expected)


@pytest.mark.parametrize("accept", ["*/*", None])
def test_a_hash_asked_for_by_get_is_graphql_whatever_the_client_accepts(
    server: LiveServer,
    tokens: dict[str, str],
    school_names: list[dict[str, str]],
    accept: str | None,
) -> None:
    # curl sends `Accept: */*`: a GET without `query` then got the GraphiQL page (an app
    # developer's review); a persisted query's `extensions` make it a GraphQL request.
    post(server, tokens["full"], registering(SCHOOLS))
    params = {"extensions": json.dumps(persisted(SCHOOLS))}
    headers = {} if accept is None else {"Accept": accept}
    with server.client(tokens["full"]) as http:
        response = http.get("/graphql", params=params, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/")
    assert response.json() == {"data": {"schools": {"nodes": school_names}}}


def test_a_query_can_be_registered_by_get_too(
    server: LiveServer, tokens: dict[str, str], school_names: list[dict[str, str]]
) -> None:
    registered = get(server, tokens["full"], query=SCHOOLS, extensions=persisted(SCHOOLS))
    assert registered.json() == {"data": {"schools": {"nodes": school_names}}}
    assert get(server, tokens["full"], extensions=persisted(SCHOOLS)).json() == registered.json()


def test_a_hash_that_is_not_the_querys_is_refused_and_nothing_is_stored(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    body = {"query": PEOPLE, "extensions": persisted(SCHOOLS)}
    response = post(server, tokens["full"], body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert sha256_hex(PEOPLE) in error["message"]
    assert "hash the query's exact UTF-8 text" in error["message"]
    # Neither the sent hash nor the query's own hash now names the document.
    for query in (SCHOOLS, PEOPLE):
        miss = post(server, tokens["full"], hashed(query)).json()
        assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        pytest.param(
            {"version": 2, "sha256Hash": "0" * 64},
            "Unsupported persisted query version 2",
            id="version-2",
        ),
        pytest.param(
            {"sha256Hash": "0" * 64}, "Unsupported persisted query version None", id="no-version"
        ),
        pytest.param({"version": 1, "sha256Hash": "abc"}, "is not a SHA-256 hash", id="short-hash"),
        pytest.param({"version": 1}, "None is not a SHA-256 hash", id="no-hash"),
        pytest.param("abc", "must be an object", id="not-an-object"),
    ],
)
def test_a_malformed_extension_is_refused_clearly(
    server: LiveServer, tokens: dict[str, str], extension: Any, message: str
) -> None:
    response = post(server, tokens["full"], {"extensions": {"persistedQuery": extension}})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert message in error["message"]


def test_the_store_keeps_the_most_recently_used_documents_up_to_its_size(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    first, second, third = (f"{{ schools(first: {n}) {{ nodes {{ id }} }} }}" for n in (1, 2, 3))
    with serve(persisted_queries_max=2) as server:
        for query in (first, second):
            assert "data" in post(server, tokens["full"], registering(query)).json()
        assert "data" in post(server, tokens["full"], hashed(first)).json()  # now the newest
        assert "data" in post(server, tokens["full"], registering(third)).json()
        codes = {
            query: post(server, tokens["full"], hashed(query)).json().get("errors")
            for query in (first, second, third)
        }
    assert codes[first] is None
    assert codes[third] is None
    assert codes[second] is not None
    assert codes[second][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_the_store_holds_each_document_once() -> None:
    store = PersistedQueries(max_size=2, max_document_bytes=1000)
    for _ in range(3):
        store.put(sha256_hex(SCHOOLS), SCHOOLS)
    assert len(store) == 1
    assert store.get(sha256_hex(SCHOOLS)) == SCHOOLS
    assert store.get(sha256_hex(PEOPLE)) is None


def test_a_document_over_the_size_limit_is_refused_and_not_stored(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    padded = SCHOOLS + " " * 200  # within the body limit, past the document limit
    with serve(max_document_bytes=100) as server:
        registered = post(server, tokens["full"], registering(padded))
        again = post(server, tokens["full"], hashed(padded))
    assert registered.status_code == 400
    assert registered.json()["errors"][0]["extensions"]["limit"] == "documentBytes"
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_turned_off_every_hash_is_answered_not_supported(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    with serve(persisted_queries_max=0) as server:
        for body in (hashed(SCHOOLS), registering(SCHOOLS)):
            response = post(server, tokens["full"], body)
            assert response.status_code == 200
            [error] = response.json()["errors"]
            assert error["message"] == "PersistedQueryNotSupported"
            assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
            assert "GATEWAY_PERSISTED_QUERIES_MAX=0" in error["extensions"]["hint"]
        # A plain query is unaffected.
        assert "data" in post(server, tokens["full"], {"query": SCHOOLS}).json()


def test_a_stored_document_passes_the_gate_as_a_sent_one_does(
    server: LiveServer, tokens: dict[str, str]
) -> None:
    assert "data" in post(server, tokens["full"], registering(PEOPLE)).json()

    anonymous = post(server, None, hashed(PEOPLE))
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for response in (get(server, None, extensions=persisted(PEOPLE)),):
        assert response.status_code == 401

    partial = post(server, tokens["partial"], hashed(PEOPLE)).json()
    sent = post(server, tokens["partial"], {"query": PEOPLE}).json()
    assert partial == sent
    assert partial["data"] == {"people": None}
    assert [e["extensions"]["code"] for e in partial["errors"]] == ["FORBIDDEN"]


def test_a_stored_document_meets_the_limits_as_a_sent_one_does(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    with serve(max_depth=2) as server:
        registered = post(server, tokens["full"], registering(SCHOOLS))
        by_hash = post(server, tokens["full"], hashed(SCHOOLS))
    assert registered.status_code == by_hash.status_code == 400
    assert registered.json() == by_hash.json()
    assert by_hash.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_a_request_by_hash_spends_from_the_rate_limit(
    serve: Callable[..., LiveServer], tokens: dict[str, str]
) -> None:
    with serve(rate_limit_burst=3, rate_limit_per_second=0.001) as server:
        statuses = [post(server, tokens["full"], hashed(SCHOOLS)).status_code]
        statuses.append(post(server, tokens["full"], registering(SCHOOLS)).status_code)
        statuses.append(post(server, tokens["full"], hashed(SCHOOLS)).status_code)
        refused = post(server, tokens["full"], hashed(SCHOOLS))
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
