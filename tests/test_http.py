"""GraphQL over HTTP (gateway.graph.http, the view, gateway.middleware): media types, status
codes, malformed requests, switches, CORS and security headers, over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.graph.http import GRAPHQL_RESPONSE_JSON, JSON, negotiate
from gateway.settings import Settings
from tests.admin_factories import make_admin_key
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

GRAPH_RESPONSE = "application/graphql-response+json; charset=utf-8"
APP_JSON = "application/json; charset=utf-8"


@dataclass
class Api:
    server: LiveServer
    token: str

    def client(self, **kwargs: Any) -> httpx.Client:
        return self.server.client(self.token, **kwargs)

    def post(self, body: Any, accept: str | None = None, **headers: str) -> httpx.Response:
        if accept is not None:
            headers["Accept"] = accept
        with self.client() as http:
            return http.post("/graphql", json=body, headers=headers)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('http') / 'gateway.db'}"


@pytest.fixture(scope="module")
def token(url: str) -> str:
    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 11, "Http", people=10, enrollments=10)
        return await make_integration(engine, graph.source.id)

    return run_db(url, build)


@pytest.fixture(scope="module")
def partial_token(url: str) -> str:
    """A token that may read organizations but not people."""

    async def build(engine: AsyncEngine) -> str:
        async with engine.connect() as conn:
            source_id = (await conn.execute(sa.text("SELECT id FROM sources"))).scalar_one()
        return await make_integration(engine, str(source_id), permissions=["organizations:read"])

    return run_db(url, build)


@pytest.fixture(scope="module")
def api(url: str, token: str) -> Iterator[Api]:
    settings = Settings(
        database_url=url, rate_limit_burst=100_000, cors_origins=["https://app.example"]
    )
    with LiveServer(settings) as server:
        yield Api(server, token)


@pytest.fixture(scope="module")
def locked(url: str, token: str) -> Iterator[Api]:
    """Introspection and GraphiQL off."""
    settings = Settings(database_url=url, introspection=False, graphiql=False)
    with LiveServer(settings) as server:
        yield Api(server, token)


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


# ---------------------------------------------------------------- media types


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("application/json, application/graphql-response+json", JSON),
        ("application/json;q=0.5, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GRAPHQL_RESPONSE_JSON),
        ("text/html", JSON),
        ("application/graphql-response+json;q=0, application/json", JSON),
        ("application/graphql-response+json;q=oops", JSON),
    ],
    ids=lambda value: repr(value),
)
def test_accept_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, APP_JSON),
        ("*/*", APP_JSON),
        ("application/json", APP_JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPH_RESPONSE),
    ],
    ids=["no-accept", "any", "json", "graphql-response"],
)
def test_a_query_answers_in_the_media_type_asked_for(
    api: Api, accept: str | None, content_type: str
) -> None:
    response = api.post({"query": "{ schools { nodes { id } } }"}, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert len(response.json()["data"]["schools"]["nodes"]) >= 1


# ---------------------------------------------------------------- status codes of errors

REQUEST_ERRORS = {
    "parse": {"query": "{"},
    "validation": {"query": "{ nosuchfield }"},
    "variables": {"query": "query($id: ID!) { school(id: $id) { id } }", "variables": {}},
    "mutation-over-post": {"query": "mutation { __typename }"},
    "unknown-operation-name": {"query": "query A { __typename }", "operationName": "B"},
    "several-operations-unnamed": {"query": "query A { __typename } { schools { totalCount } }"},
    # A null condition on a nested field was an INTERNAL_SERVER_ERROR with a stack in the log.
    "skip-if-null": {
        "query": "query($s: Boolean = false) { schools { nodes @skip(if: $s) { id } } }",
        "variables": {"s": None},
    },
    "include-if-null-in-a-fragment": {
        "query": "query($s: Boolean = true) { schools { ...F } }"
        " fragment F on SchoolConnection { nodes { id @include(if: $s) } }",
        "variables": {"s": None},
    },
}


@pytest.mark.parametrize("body", REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
def test_request_errors_are_400_without_data_under_graphql_response_json(
    api: Api, body: dict[str, Any]
) -> None:
    response = api.post(body, GRAPHQL_RESPONSE_JSON)
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPH_RESPONSE
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"] * len(codes(response))


@pytest.mark.parametrize("body", REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
def test_request_errors_keep_the_legacy_200_under_application_json(
    api: Api, body: dict[str, Any]
) -> None:
    response = api.post(body, "application/json")
    if body.get("operationName") == "B":
        assert response.status_code == 400  # not a GraphQL request at all: no such operation
    else:
        assert response.status_code == 200
        assert response.json()["data"] is None
    assert set(codes(response)) == {"BAD_USER_INPUT"}


@pytest.mark.parametrize("which", ["all-permissions", "no-people-read"])
def test_a_variable_error_is_a_request_error_whatever_the_token_may_read(
    api: Api, partial_token: str, which: str
) -> None:
    """Variables are coerced before any permission is decided: a denied field beside a bad
    variable was a 200 with a FORBIDDEN error for an operation that never ran."""
    token = api.token if which == "all-permissions" else partial_token
    body = {
        "query": "query($n: Int) { schools(first: $n) { totalCount } people { totalCount } }",
        "variables": {"n": "x"},
    }
    with api.server.client(token) as http:
        response = http.post("/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE_JSON})
    assert response.status_code == 400, response.text
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "$n" in response.json()["errors"][0]["message"]


def test_operation_name_picks_one_of_several_operations(api: Api) -> None:
    query = "query A { __typename } query B { schools { totalCount } }"
    response = api.post({"query": query, "operationName": "B"})
    assert response.status_code == 200
    assert response.json()["data"]["schools"]["totalCount"] >= 1
    refused = api.post({"query": query}).json()
    assert refused["errors"][0]["message"] == (
        "The document holds 2 operations ('A', 'B'): send `operationName` to say which one to run."
    )
    assert refused["errors"][0]["extensions"]["argument"] == "operationName"


def test_a_field_error_keeps_its_data_and_200_in_both_media_types(api: Api) -> None:
    body = {"query": '{ schools { totalCount } school(id: "nope") { id } }'}
    for accept in (JSON, GRAPHQL_RESPONSE_JSON):
        response = api.post(body, accept)
        assert response.status_code == 200
        assert response.json()["data"]["school"] is None
        assert response.json()["data"]["schools"]["totalCount"] >= 1
        assert codes(response) == ["BAD_USER_INPUT"]


def test_the_guards_401_keeps_its_status_and_www_authenticate(api: Api) -> None:
    for accept in (JSON, GRAPHQL_RESPONSE_JSON):
        with api.server.client() as http:
            response = http.post(
                "/graphql", json={"query": "{ schools { totalCount } }"}, headers={"Accept": accept}
            )
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert codes(response) == ["UNAUTHENTICATED"]


def test_a_mutation_over_get_is_405(api: Api) -> None:
    for accept in (JSON, GRAPHQL_RESPONSE_JSON):
        with api.client() as http:
            response = http.get(
                "/graphql", params={"query": "mutation { __typename }"}, headers={"Accept": accept}
            )
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert codes(response) == ["BAD_USER_INPUT"]


def test_a_query_over_get_works_with_variables(api: Api) -> None:
    with api.client() as http:
        response = http.get(
            "/graphql",
            params={
                "query": "query($n: Int) { schools(first: $n) { nodes { id } } }",
                "variables": json.dumps({"n": 1}),
                "operationName": "",
            },
            headers={"Accept": GRAPHQL_RESPONSE_JSON},
        )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["schools"]["nodes"]) == 1


# ---------------------------------------------------------------- malformed requests


@dataclass(frozen=True)
class Malformed:
    id: str
    content: bytes
    content_type: str | None
    status: int
    message: str


MALFORMED = [
    Malformed("no-content-type", b'{"query": "{ __typename }"}', None, 415, "no Content-Type"),
    Malformed("text-plain", b'{"query": "{ __typename }"}', "text/plain", 415, "`text/plain`"),
    Malformed(
        "form",
        b"query=%7B__typename%7D",
        "application/x-www-form-urlencoded",
        415,
        "application/x-www-form-urlencoded",
    ),
    Malformed(
        "latin-1",
        b'{"query": "{ __typename }"}',
        "application/json; charset=latin-1",
        415,
        "charset",
    ),
    Malformed("empty-body", b"", JSON, 400, "empty"),
    Malformed("not-json", b'{ "not a JSON', JSON, 400, "not valid JSON: Unterminated string"),
    Malformed("invalid-utf-8", b'{"query": "{ \xff }"}', JSON, 400, "not valid UTF-8"),
    Malformed("deep-json", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "nests arrays and objects"),
    Malformed("too-large", b" " * 1_000_001, JSON, 413, "(max_body_bytes)"),
    Malformed("batch", b'[{"query": "{ __typename }"}]', JSON, 400, "Batched"),
    Malformed("scalar", b"42", JSON, 400, "not a number"),
    Malformed("no-query", b'{"qeury": "{ __typename }"}', JSON, 400, "no `query`"),
    Malformed("blank-query", b'{"query": "  "}', JSON, 400, "empty"),
    Malformed("query-object", b'{"query": {"a": 1}}', JSON, 400, "`query` must be a string"),
    Malformed(
        "variables-string",
        b'{"query": "{ __typename }", "variables": "{}"}',
        JSON,
        400,
        "`variables` must be an object",
    ),
    Malformed(
        "operation-name-number",
        b'{"query": "{ __typename }", "operationName": 1}',
        JSON,
        400,
        "`operationName` must be a string",
    ),
    Malformed(
        "operation-name-false",
        b'{"query": "{ __typename }", "operationName": false}',
        JSON,
        400,
        "not a boolean",
    ),
    Malformed(
        "extensions-array",
        b'{"query": "{ __typename }", "extensions": []}',
        JSON,
        400,
        "`extensions` must be an object",
    ),
    Malformed(
        "lone-surrogate",
        b'{"query": "{ __typename }", "variables": {"a": "\\ud800"}}',
        JSON,
        400,
        "surrogate",
    ),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
def test_malformed_requests_get_a_clear_coded_error(api: Api, case: Malformed) -> None:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    with api.client() as http:
        response = http.post("/graphql", content=case.content, headers=headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == APP_JSON
    assert response.headers["x-request-id"]
    (error,) = response.json()["errors"]
    expected = "QUERY_TOO_COMPLEX" if case.status == 413 else "BAD_USER_INPUT"
    assert error["extensions"]["code"] == expected
    assert case.message in error["message"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_other_methods_are_405_with_allow(api: Api, method: str) -> None:
    """Every other method gets the GraphQL error body and `Allow: GET, POST` (OPTIONS and
    TRACE got Starlette's plain-text 405 listing methods the view refuses: a review)."""
    with api.client() as http:
        response = http.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert codes(response) == ["BAD_USER_INPUT"]


# ---------------------------------------------------------------- switches


def test_graphiql_is_served_to_browsers_with_its_csp(api: Api) -> None:
    with api.server.client() as http:
        response = http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    # Its own policy (the whole of it: tests/test_graphiql.py), not the API's "nothing".
    assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def page_constant(page: str, name: str) -> str:
    """The string constant `name` of the GraphiQL page's script."""
    found = re.search(rf"const {name} = (.*);", page)
    assert found is not None, name
    value = json.loads(found[1])
    assert isinstance(value, str)
    return value


# What a browser sends when it loads a page (a reloaded or shared GraphiQL link included).
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
GRAPH_QUERY = "{ schools { nodes { id } } }"


def test_graphiql_is_the_gateways_page_and_keeps_headers_out_of_the_browser(api: Api) -> None:
    with api.server.client() as http:
        response = http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    page = response.text
    assert "<title>Rostering gateway · GraphiQL</title>" in page
    assert "Strawberry" not in page
    assert "shouldPersistHeaders: true" not in page
    assert "shouldPersistHeaders: false" in page
    # The headers editor holds the Authorization header's place; the default query explains it.
    assert page_constant(page, "DEFAULT_HEADERS") == (
        '{\n  "Authorization": "Bearer <your integration token>"\n}'
    )
    assert '{"Authorization": "Bearer <your integration token>"}' in page_constant(
        page, "DEFAULT_QUERY"
    )
    # Every bundle comes from the gateway itself, pinned by its SRI hash.
    bundles = re.findall(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(/graphiql/[^\"]+)\"", page)
    assert len(bundles) == 6  # react, react-dom, graphiql and its explorer (scripts, styles)
    assert page.count('integrity="sha384-') == len(bundles)


def test_a_browser_loading_a_graphiql_link_with_a_query_gets_the_page(api: Api) -> None:
    with api.server.client() as http:  # no token: as GraphQL, this request would be a 401
        response = http.get(
            "/graphql", params={"query": GRAPH_QUERY}, headers={"Accept": BROWSER_ACCEPT}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Rostering gateway · GraphiQL</title>" in response.text


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/graphql-response+json",
        "text/html, application/json",
        "application/json, text/html;q=0.9",
    ],
)
def test_a_get_with_a_query_from_anything_but_a_browser_is_graphql(
    api: Api, accept: str | None
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    with api.server.client() as http:
        refused = http.get("/graphql", params={"query": GRAPH_QUERY}, headers=headers)
    assert refused.status_code == 401
    assert codes(refused) == ["UNAUTHENTICATED"]
    with api.client() as http:
        answered = http.get("/graphql", params={"query": GRAPH_QUERY}, headers=headers)
    assert answered.status_code == 200
    assert answered.json()["data"]["schools"]["nodes"]


def test_graphiql_off_is_a_coded_404(locked: Api) -> None:
    with locked.server.client() as http:
        response = http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "GATEWAY_GRAPHIQL" in response.json()["errors"][0]["message"]


def test_introspection_on_answers_and_suggests_fields(api: Api) -> None:
    ok = api.post({"query": "{ __schema { queryType { name } } }"})
    assert ok.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    typo = api.post({"query": "{ school { nam } }"})
    assert "Did you mean" in json.dumps(typo.json())


def test_introspection_off_refuses_it_and_suggests_nothing(locked: Api) -> None:
    refused = locked.post({"query": "{ __schema { queryType { name } } }"}, GRAPHQL_RESPONSE_JSON)
    assert refused.status_code == 400
    assert "introspection" in refused.json()["errors"][0]["message"].lower()
    typo = locked.post({"query": '{ school(id: "x") { nam } }'})
    assert typo.json()["errors"]
    assert "Did you mean" not in json.dumps(typo.json())
    works = locked.post({"query": "{ schools(first: 1) { nodes { id } } }"})
    assert works.status_code == 200
    assert works.json()["data"]["schools"]["nodes"]


# ---------------------------------------------------------------- headers


def test_large_graph_answers_are_gzipped_for_clients_that_accept_it(api: Api) -> None:
    body = {"query": "{ people(first: 1000) { nodes { id displayName email roles } } }"}
    with api.client() as http:
        zipped = http.post("/graphql", json=body, headers={"Accept-Encoding": "gzip"})
        plain = http.post("/graphql", json=body, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.json() == plain.json()  # httpx decodes it
    assert "content-encoding" not in plain.headers
    assert zipped.headers["x-request-id"]


def test_admin_answers_are_never_compressed(api: Api, url: str) -> None:
    # They can carry a new access token beside caller-chosen text (BREACH).
    query = "{ __schema { types { name description } } }"
    with api.server.client(make_admin_key(url).key) as http:
        answer = http.post(
            "/admin/graphql", json={"query": query}, headers={"Accept-Encoding": "gzip"}
        )
    assert answer.status_code == 200
    assert len(answer.content) > 4096
    assert "content-encoding" not in answer.headers


def test_every_answer_has_the_security_headers_and_no_store(api: Api) -> None:
    with api.client() as http:
        answers = [
            http.post("/graphql", json={"query": "{ __typename }"}),
            http.post("/graphql", content=b"nope", headers={"Content-Type": "text/plain"}),
            http.get("/healthz"),
        ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-request-id"]


def test_cors_allows_the_configured_origin_only(api: Api) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with api.server.client() as http:
        allowed = http.options("/graphql", headers={"Origin": "https://app.example", **preflight})
        denied = http.options("/graphql", headers={"Origin": "https://evil.example", **preflight})
        simple = http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://app.example"},
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_without_cors_origins_no_cross_origin_read_is_allowed(locked: Api) -> None:
    with locked.server.client() as http:
        response = http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://app.example"}
        )
    assert "access-control-allow-origin" not in response.headers
