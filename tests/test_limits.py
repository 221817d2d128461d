"""The operation limits (gateway.limits): each one refused with QUERY_TOO_COMPLEX naming the
limit and its value, each one let through at its boundary, over real HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    get_introspection_query,
    parse,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.graph.guard import root_field_names
from gateway.graph.schema import build_schema
from gateway.limits import Limits, parse_document
from gateway.selections import (
    document_fields,
    fragment_order,
    operation_aliases,
    operation_depth,
)
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

LIMITS: dict[str, Any] = {
    "max_depth": 6,
    "max_aliases": 3,
    "max_tokens": 300,
    "max_document_bytes": 4000,
    "max_cost": 1000,
    "max_body_bytes": 8000,
    "max_list_length": 10,
    "max_fields": 400,
}
TEN_IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(10)]


@dataclass
class Api:
    server: LiveServer
    token: str

    def post(
        self, query: str, variables: dict[str, Any] | None = None, *, anonymous: bool = False
    ) -> tuple[int, dict[str, Any]]:
        with self.server.client(None if anonymous else self.token) as http:
            response = http.post("/graphql", json={"query": query, "variables": variables})
        return response.status_code, response.json()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('limits') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 3, "Limits", people=20, enrollments=30)
        return await make_integration(engine, graph.source.id)

    token = run_db(url, build)
    settings = Settings(database_url=url, rate_limit_burst=10_000, **LIMITS)
    with LiveServer(settings) as server:
        yield Api(server, token)


DEEP_7 = "{ schools { nodes { classes { nodes { enrollments { nodes { id } } } } } } }"
DEEP_6 = "{ schools(first: 2) { nodes { classes(first: 2) { nodes { school { id } } } } } }"


@dataclass(frozen=True)
class Case:
    id: str
    query: str
    limit: str
    maximum: int
    actual: int | None
    setting: str
    variables: dict[str, Any] | None = None


def _doubling(levels: int, leaf: str = "__typename", on: str = "Query") -> str:
    """Fragments that each spread the next one twice: 2**levels leaves in about 40 tokens a
    level."""
    text = " ".join(f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"{text} fragment F{levels} on {on} {{ {leaf} }}"


# 298 tokens, no key more than 50 times in one selection set, 288 fields, cost 500
TOKENS_298 = (
    "{ integration { "
    + "__typename " * 40
    + "} "
    + " ".join(
        f"{root} {{ nodes {{ {'__typename ' * n}}} }}"
        for root, n in (
            ("schools", 50),
            ("people", 50),
            ("classes", 50),
            ("courses", 50),
            ("districts", 23),
        )
    )
    + " }"
)


REFUSED = [
    Case("depth", DEEP_7, "depth", 6, 7, "max_depth"),
    Case("fields", "{ ...F0 } " + _doubling(9), "fields", 400, 2**9, "max_fields"),
    Case(
        "fields-below-a-connection",
        "{ people(first: 1) { nodes { ...F0 } } } " + _doubling(9, "id", "Person"),
        "fields",
        400,
        2 + 2**9,
        "max_fields",
    ),
    Case(
        "depth-through-fragments",
        "{ ...S } fragment S on Query { schools { nodes { ...C } } }"
        " fragment C on School { classes { nodes { enrollments { nodes { id } } } } }",
        "depth",
        6,
        7,
        "max_depth",
    ),
    Case(
        "depth-in-a-fragment-named-__schema",
        "{ ...__schema } fragment __schema on Query"
        " { schools { nodes { classes { nodes { enrollments { nodes { id } } } } } } }",
        "depth",
        6,
        7,
        "max_depth",
    ),
    Case(
        "depth-beside-introspection",
        "{ __schema { queryType { name } } schools { nodes { classes { nodes"
        " { enrollments { nodes { id } } } } } } }",
        "depth",
        6,
        7,
        "max_depth",
    ),
    Case(
        "aliases",
        "{ a: __typename b: __typename c: __typename d: __typename }",
        "aliases",
        3,
        4,
        "max_aliases",
    ),
    Case(
        "aliases-counted-at-each-spread",
        "{ schools { nodes { ...F } } districts { nodes { schools { nodes { ...F } } } } }"
        " fragment F on School { x: id y: name }",
        "aliases",
        3,
        4,
        "max_aliases",
    ),
    Case("tokens", "{ " + "__typename " * 299 + "}", "tokens", 300, None, "max_tokens"),
    Case(
        "document-bytes",
        "# " + "padding " * 500 + "\n{ __typename }",
        "documentBytes",
        4000,
        4017,
        "max_document_bytes",
    ),
    Case(
        "cost-default-page-size",
        "{ schools { nodes { classes(first: 10) { nodes { id } } } } }",
        "cost",
        1000,
        100 * (1 + 10),
        "max_cost",
    ),
    Case(
        "cost-from-variables",
        "query($a: Int, $b: Int) { schools(first: $a) { nodes { classes(first: $b)"
        " { nodes { id } } } } }",
        "cost",
        1000,
        10 * (1 + 200),
        "max_cost",
        {"a": 10, "b": 200},
    ),
    # The estimate reads the values execution will use: defaults, and floats coerced to Int.
    Case(
        "cost-from-variable-defaults",
        "query($f: Int = 1000) { schools(first: 1) { nodes { classes(first: $f)"
        " { nodes { id } } } } }",
        "cost",
        1000,
        1 * (1 + 1000),
        "max_cost",
    ),
    Case(
        "cost-from-float-variables",
        "query($f: Int) { schools(first: 1) { nodes { classes(first: $f) { nodes { id } } } } }",
        "cost",
        1000,
        1 * (1 + 1000),
        "max_cost",
        {"f": 1000.0},
    ),
    Case(
        "cost-first-0-is-not-free",
        "{ schools(first: 0) { nodes { classes(first: 1000) { nodes { id } } } } }",
        "cost",
        1000,
        1 * (1 + 1000),
        "max_cost",
    ),
    Case(
        "cost-counts-list-values",
        "query($i: [ID!]) { schools(first: 100) { nodes { classes(first: 0,"
        " filter: {ids: $i, courseIds: $i}) { totalCount } } } }",
        "cost",
        1000,
        100 * (1 + 1 + 2 * 10),
        "max_cost",
        {"i": TEN_IDS},
    ),
    Case(
        "cost-counts-object-rows",
        "{ enrollments(first: 400) { nodes { person { id } class { id } } } }",
        "cost",
        1000,
        400 * (1 + 2),
        "max_cost",
    ),
    Case(
        "cost-counts-edges",
        "{ enrollments(first: 600) { edges { node { person { id } } } } }",
        "cost",
        1000,
        600 * (1 + 1),
        "max_cost",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_each_limit_refuses_with_its_name_and_value(api: Api, case: Case) -> None:
    status, body = api.post(case.query, case.variables)
    assert status == 400, body
    assert body.get("data") is None
    (error,) = body["errors"]
    expected: dict[str, Any] = {
        "code": "QUERY_TOO_COMPLEX",
        "limit": case.limit,
        "maximum": case.maximum,
    }
    if case.actual is not None:
        expected["actual"] = case.actual
    assert error["extensions"] == expected
    assert f"({case.setting}) is {case.maximum:,}" in error["message"]


ALLOWED = [
    ("depth-at-the-limit", DEEP_6, None),
    ("three-aliases", "{ a: __typename b: __typename c: __typename }", None),
    (
        "fragment-aliases-once",
        "{ schools { nodes { ...F } } } fragment F on School { x: id }",
        None,
    ),
    ("tokens-at-the-limit", TOKENS_298, None),
    ("cost-at-the-limit", "{ schools { nodes { classes(first: 9) { nodes { id } } } } }", None),
    (
        "cost-first-clamped-to-max-page",
        "query($n: Int) { people(first: $n) { totalCount } }",
        {"n": 10**9},
    ),
]


@pytest.mark.parametrize(
    ("query", "variables"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED]
)
def test_queries_within_the_limits_pass(
    api: Api, query: str, variables: dict[str, Any] | None
) -> None:
    status, body = api.post(query, variables)
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert "QUERY_TOO_COMPLEX" not in codes, body
    assert status == 200, body


TOO_LONG = [
    (
        "variable",
        "query($i: [ID!]) { schools(filter: {ids: $i}) { totalCount } }",
        {"i": [*TEN_IDS, TEN_IDS[0]]},
    ),
    (
        "inside-an-input-object-variable",
        "query($f: SchoolFilter) { schools(filter: $f) { totalCount } }",
        {"f": {"ids": [*TEN_IDS, TEN_IDS[0]]}},
    ),
    (
        "literal",
        "{ people(filter: {roles: [" + ", ".join(["STUDENT"] * 11) + "]}) { totalCount } }",
        None,
    ),
    (
        "variable-default",
        "query($r: [Role!] = [" + ", ".join(["STUDENT"] * 11) + "]) "
        "{ people(filter: {roles: $r}) { totalCount } }",
        None,
    ),
]


@pytest.mark.parametrize(
    ("query", "variables"), [c[1:] for c in TOO_LONG], ids=[c[0] for c in TOO_LONG]
)
def test_a_list_longer_than_max_list_length_is_bad_user_input(
    api: Api, query: str, variables: dict[str, Any] | None
) -> None:
    status, body = api.post(query, variables)
    assert status == 200, body  # a request error: 200 with data null under application/json
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "limit": "listLength",
        "maximum": 10,
        "actual": 11,
    }
    assert "GATEWAY_MAX_LIST_LENGTH" in error["message"]


def test_lists_at_max_list_length_pass(api: Api) -> None:
    query = "query($i: [ID!]) { schools(filter: {ids: $i}) { totalCount } }"
    status, body = api.post(query, {"i": TEN_IDS})
    assert status == 200, body
    assert body == {"data": {"schools": {"totalCount": 0}}}


def test_a_too_large_first_is_the_fields_own_error_not_a_cost_error(api: Api) -> None:
    status, body = api.post("{ people(first: 5000) { nodes { id } } }")
    assert status == 200
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


def test_the_full_introspection_query_is_exempt_from_the_depth_limit(api: Api) -> None:
    query = get_introspection_query(descriptions=True, directive_is_repeatable=True)
    assert operation_depth(*_operation(query)) == 0
    status, body = api.post(query, anonymous=True)
    assert status == 200, body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_introspection_that_nests_lists_deeply_is_refused(api: Api) -> None:
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    status, body = api.post(query, anonymous=True)
    assert status == 400
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "introspectionDepth",
        "maximum": 2,
    }


def test_a_too_costly_operation_reads_nothing(api: Api) -> None:
    """The cost check sets the result before execution: the connection's resolver never runs,
    so a filter that would fail inside it (a bad UUID) is never looked at."""
    query = '{ schools(filter: {ids: ["not-a-uuid"]}) { nodes { classes { nodes { id } } } } }'
    status, body = api.post(query)
    assert status == 400
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


def test_the_cost_is_checked_after_the_token(api: Api) -> None:
    status, body = api.post("{ schools { nodes { classes { nodes { id } } } } }", anonymous=True)
    assert status == 401
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


def test_a_body_over_max_body_bytes_is_413(api: Api) -> None:
    query = "{ __typename }" + " " * 9000
    with api.server.client(api.token) as http:
        declared = http.post("/graphql", json={"query": query})
        streamed = http.post(
            "/graphql",
            content=iter([b'{"query": "{ __typename }', b" " * 9000, b'"}']),
            headers={"content-type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"] == {
            "code": "QUERY_TOO_COMPLEX",
            "limit": "bodyBytes",
            "maximum": 8000,
        }
        assert "(max_body_bytes)" in response.json()["errors"][0]["message"]


def _stalled(server: LiveServer, token: str | None, sent: bytes = b'{"que') -> bytes:
    """Over a raw socket: a POST that declares a 100-byte body, sends `sent` of it and stops;
    what the server answers (everything up to its closing the connection)."""
    head = [
        "POST /graphql HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        "Content-Length: 100",
        *([f"Authorization: Bearer {token}"] if token else []),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize("with_token", [True, False])
def test_a_body_that_stops_coming_is_408_and_closes(db_url: str, with_token: bool) -> None:
    # A body declared and never sent held the request open for ever (found by a review: three
    # thousand of them, without a token, kept a server's file descriptors and memory).
    token = run_db(db_url, _one_integration)
    with LiveServer(Settings(database_url=db_url, body_timeout_seconds=0.5)) as server:
        started = time.monotonic()
        answer = _stalled(server, token if with_token else None)
        waited = time.monotonic() - started

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head.lower()
    error = json.loads(body)["errors"][0]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "bodySeconds",
        "maximum": 0.5,
    }
    assert "(GATEWAY_BODY_TIMEOUT_SECONDS)" in error["message"]
    assert waited >= 0.5


def test_stalled_bodies_without_a_token_spend_their_address_bucket(db_url: str) -> None:
    # A request without a token spends its address's bucket as it begins: a client cannot open
    # stalled requests without limit (a review thought they were never counted).
    settings = Settings(
        database_url=db_url,
        body_timeout_seconds=0.3,
        rate_limit_burst=2,
        rate_limit_per_second=0.01,
    )
    with LiveServer(settings) as server:
        first = [_stalled(server, None).split(b" ", 2)[1] for _ in range(2)]
        with server.client(None) as http:
            refused = http.post("/graphql", json={"query": "{ schools { totalCount } }"})

    assert first == [b"408", b"408"]
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def _one_integration(engine: AsyncEngine) -> str:
    graph = await make_source(engine, 1, "Stalled", people=2, enrollments=2)
    return await make_integration(engine, graph.source.id)


# ---------------------------------------------------------------- the walks themselves


def _operation(text: str) -> tuple[DocumentNode, OperationDefinitionNode]:
    document = parse(text)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return document, operation


def test_a_long_fragment_chain_is_walked_without_recursion() -> None:
    chain = 3000
    text = "{ ...F0 } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(chain)
    )
    text += f" fragment F{chain} on Query {{ schools {{ nodes {{ id }} }} }}"
    document, operation = _operation(text)
    assert operation_depth(document, operation) == 3
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    assert len(fragment_order(fragments)) == chain + 1


def test_fragments_spread_exponentially_are_counted_in_linear_time() -> None:
    levels = 40
    text = "{ ...F0 } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    text += f" fragment F{levels} on Query {{ a: __typename }}"
    started = time.perf_counter()
    assert operation_aliases(*_operation(text)) == 2**levels
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("token", [None, "valid"])
def test_fragments_that_double_at_each_level_are_refused_before_any_walk(
    api: Api, token: str | None
) -> None:
    # 1 KB, 250 tokens, depth 1 and no alias, but 2**26 fields: the guard's walks (the first
    # runs before the token is checked) took 36 s of the event loop for this one (a review).
    query = "query Q { ...F0 } " + _doubling(26)
    status, body = api.post(query, anonymous=token is None)
    assert status == 400, body
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "fields",
        "maximum": 400,
        "actual": 2**26,
    }


@pytest.mark.parametrize(
    "query",
    [
        "{ integration { " + "id " * 60 + "} }",
        "{ schools(first: 1) { " + " ".join(["nodes { id }"] * 51) + " } }",
        "{ schools { nodes { ...A ...B } } } fragment A on School { "
        + "name " * 26
        + "} fragment B on School { "
        + "name " * 25
        + "}",
    ],
    ids=["60-times", "nested-copies", "through-fragments"],
)
def test_a_field_selected_over_50_times_in_one_selection_set_is_refused_before_validation(
    api: Api, query: str
) -> None:
    # graphql-core's check that same-named fields can merge compares them pair by pair: 300
    # copies took a second of the event loop per request, 800 overflowed the stack into
    # "Validation aborted." (reviews). The limit is checked before validation, for any caller.
    status, body = api.post(query, anonymous=True)
    assert status == 400, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "sameField"
    assert error["extensions"]["maximum"] == 50
    assert "at most 50 times" in error["message"]


def _fragments(count: int) -> str:
    keys = ["id", "displayName", "firstName", "lastName"]
    spreads = " ".join(f"...a{n}" for n in range(count))
    defined = " ".join(f"fragment a{n} on Person {{ {keys[n % 4]} }}" for n in range(count))
    return f"{{ people(first: 1) {{ nodes {{ {spreads} }} }} }} {defined}"


def test_more_than_100_fragments_are_refused_before_validation() -> None:
    # graphql-core compares the fragments spread in one selection set pair by pair: 545
    # one-field fragments took half a second of validation, for any caller (a review).
    limits = Limits.defaults()
    assert parse_document(_fragments(100), limits) is not None
    with pytest.raises(GraphQLError) as refused:
        parse_document(_fragments(101), limits)
    assert refused.value.extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "fragments",
        "maximum": 100,
        "actual": 101,
    }


def test_a_field_may_be_selected_50_times_in_one_selection_set(api: Api) -> None:
    status, body = api.post("{ integration { " + "id " * 50 + "} }")
    assert status == 200, body
    assert "errors" not in body


def test_the_fields_limit_counts_each_spread_and_takes_the_largest_operation() -> None:
    text = (
        "query A { schools { nodes { ...S } } } query B { __typename } "
        "fragment S on School { id classes { nodes { ...C } } courses { nodes { ...C } } } "
        "fragment C on Course { id name }"  # spread on classes too: validation's concern
    )
    fields = 1 + 1 + (1 + 2 * (2 + 2))  # schools nodes; S: id, two connections of nodes + C
    assert document_fields(parse(text)) == fields
    at_most = replace(Limits.defaults(), max_fields=fields)
    assert parse_document(text, at_most) is not None
    with pytest.raises(GraphQLError) as refused:
        parse_document(text, replace(at_most, max_fields=fields - 1))
    assert refused.value.extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "fields",
        "maximum": fields - 1,
        "actual": fields,
    }


def test_the_root_field_names_read_each_fragment_once() -> None:
    # They are read before the token is checked, so any caller can send the fragments.
    text = "{ ...F0 } " + _doubling(20)
    document, operation = _operation(text)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    reads: list[str] = []

    class Counted(dict[str, FragmentDefinitionNode]):
        def get(self, key: str, default: Any = None) -> Any:
            reads.append(key)
            return super().get(key, default)

    assert root_field_names(operation.selection_set, Counted(fragments)) == {"__typename"}
    assert len(reads) <= 2 * len(fragments)


def test_fragment_cycles_do_not_hang_the_walks() -> None:
    text = "{ ...A } fragment A on Query { ...B x: __typename } fragment B on Query { ...A }"
    assert operation_aliases(*_operation(text)) == 1
    assert operation_depth(*_operation(text)) == 1


def test_a_syntax_error_is_bad_user_input_and_a_token_flood_is_too_complex() -> None:
    limits = Limits.defaults()
    with pytest.raises(GraphQLError, match="Syntax Error") as syntax:
        parse_document("{ a b", limits)
    assert syntax.value.extensions == {"code": "BAD_USER_INPUT"}
    with pytest.raises(GraphQLError, match="tokens") as flood:
        parse_document("{" + " a" * (limits.max_tokens + 5) + " }", limits)
    assert (flood.value.extensions or {})["limit"] == "tokens"


@pytest.mark.asyncio
async def test_the_schema_applies_the_limits_it_was_built_with() -> None:
    schema = build_schema(limits=Limits(100, 50, 2, 1, 10, 100, 1000))
    result = await schema.execute("{ __typename x: __typename y: __typename }")
    assert result.errors is not None
    assert [e.extensions for e in result.errors] == [
        {"code": "QUERY_TOO_COMPLEX", "limit": "aliases", "maximum": 1, "actual": 2}
    ]


def test_a_request_past_its_deadline_is_too_complex_naming_the_setting(any_db_url: str) -> None:
    """A deadline that passes at once, even during the token lookup: refused on each engine."""

    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 5, "Deadline", people=5, enrollments=5)
        return await make_integration(engine, graph.source.id)

    token = run_db(any_db_url, build)
    settings = Settings(database_url=any_db_url, request_timeout_seconds=1e-9)
    with LiveServer(settings) as server:
        status, body = server.graphql("{ schools { totalCount } }", token)
    assert status == 400, body
    assert "data" not in body or body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "requestTimeout",
        "maximum": 1e-9,
    }
    assert "(GATEWAY_REQUEST_TIMEOUT_SECONDS)" in error["message"]
