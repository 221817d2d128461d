"""Compiled execution (issue #12) against the resolver path, which stays the reference.

Two live servers read one demo database, one with GATEWAY_EXECUTION=auto and one with
`resolvers`; every operation goes to both with the same token. The answers must agree byte for
byte in `data` (serialized with key order) and in every error's message, path and code, on
SQLite and on PostgreSQL. Operations come from a generator over the real schema (aliases,
fragments, variables, nested and to-one edges, cursors, gated fields, bad arguments) and from
hypothesis-graphql; the access log tells which path answered, and a good share must have been
compiled, or the test would compare the resolvers with themselves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis_graphql
import pytest
from graphql import GraphQLObjectType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.grant import Scope
from gateway.compiled.compiler import MANY_EDGES, ONE_EDGES, ROOT_LISTS
from gateway.demo import load_demo
from gateway.graph.pagination import encode_cursor
from gateway.graph.schema import schema as graph_schema
from gateway.relations import TABLES
from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, run_db
from tests.factories import make_integration, make_source
from tests.reporting import SUMMARY

EXAMPLES = 150
MIN_COMPILED_SHARE = 0.25
GRAPHQL = graph_schema._schema
DEMO_KINDS = (
    "all",
    "selected-schools",
    "selected-courses",
    "selected-classes",
    "partial-permissions",
    "inactive",
    "disabled",
    "scheduled",
)
# Scalar fields the generator picks from, per type (object-valued ones included: they are
# answered by the resolvers, and the whole operation with them).
SCALARS: dict[str, list[str]] = {
    name: [
        f
        for f, definition in GRAPHQL.type_map[name].fields.items()  # type: ignore[union-attr]
        if (name, f) not in MANY_EDGES and (name, f) not in ONE_EDGES
    ]
    for name in TABLES
}
OBJECT_FIELDS = {"identifiers", "address", "demographics"}


class ExecutionLog(logging.Handler):
    """Which path answered each request id (from the access log's `execution` field)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_request: dict[str, str | None] = {}
        self.failures: list[str] = []  # the compiler's own failures (it falls back, logged)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "gateway.compiled" and record.levelno >= logging.ERROR:
            self.failures.append(record.getMessage())
        request_id = getattr(record, "request_id", None)
        if request_id:
            self.by_request[request_id] = getattr(record, "execution", None)


@dataclass
class Pair:
    engine: str
    auto: LiveServer
    resolvers: LiveServer
    tokens: dict[str, str]
    log: ExecutionLog
    paths: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module", params=ENGINES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    directory: Path = tmp_path_factory.mktemp(f"compiled-{request.param}")
    with fresh_database(request.param, directory, "compiled") as url:

        async def build(engine: AsyncEngine) -> dict[str, str]:
            demo = await load_demo(engine, people=40)
            return {i.name: i.token for i in demo.integrations}

        with _pair_of_servers(request.param, url, run_db(url, build)) as found:
            yield found
        SUMMARY.append(
            f"compiled vs resolvers on {request.param}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(found.paths.items()))
        )


@contextlib.contextmanager
def _pair_of_servers(engine: str, url: str, tokens: dict[str, str]) -> Iterator[Pair]:
    """A server on each path over the database at `url`, and the log of which path answered."""
    log = ExecutionLog()
    access = logging.getLogger("gateway.access")
    access.addHandler(log)
    compiled = logging.getLogger("gateway.compiled")
    compiled.addHandler(log)
    common = {"database_url": url, "rate_limit_burst": 10**9, "max_cost": 10**7}
    try:
        with (
            LiveServer(Settings(**common, execution="auto")) as auto,
            LiveServer(Settings(**common, execution="resolvers")) as resolvers,
        ):
            yield Pair(engine, auto, resolvers, tokens, log)
    finally:
        access.removeHandler(log)
        compiled.removeHandler(log)


PAIRED_EDGES = sorted(key for key, edge in MANY_EDGES.items() if edge.pairs is not None)


@pytest.fixture(scope="module", params=ENGINES)
def paired(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Pair, int]]:
    """Both paths over a random source (not the demo) in which some people hold several
    enrollments in one class, with an ALL token and a SELECTED one (one school); and how many
    (class, person) pairs are held more than once."""
    directory: Path = tmp_path_factory.mktemp(f"compiled-paired-{request.param}")
    with fresh_database(request.param, directory, "paired") as url:

        async def build(engine: AsyncEngine) -> tuple[dict[str, str], int]:
            graph = await make_source(engine, 12, "paired", enrollments=400)
            held = Counter((e["class_id"], e["person_id"]) for e in graph.rows["enrollments"])
            school = graph.ids("schools")[0]
            tokens = {
                "all": await make_integration(engine, graph.source.id),
                "selected": await make_integration(
                    engine, graph.source.id, scope=Scope.SELECTED, targets=[school]
                ),
            }
            return tokens, sum(n > 1 for n in held.values())

        tokens, doubled = run_db(url, build)
        with _pair_of_servers(request.param, url, tokens) as found:
            yield found, doubled


@pytest.mark.parametrize("edge", PAIRED_EDGES, ids=[".".join(e) for e in PAIRED_EDGES])
def test_a_paired_edge_lists_each_child_once_in_id_order(
    paired: tuple[Pair, int], edge: tuple[str, str]
) -> None:
    """A paired edge reads its link table (person_schools, enrollments, class_sessions): a
    person enrolled twice in one class is one of its people (and it one of their classes),
    counted once, paged by id with cursors, on both paths."""
    pair, doubled = paired
    assert doubled > 0  # the case this is about is in the data
    type_name, field_name = edge
    root = TABLES[type_name].name
    target = MANY_EDGES[edge].table.name
    page = "totalCount pageInfo { hasNextPage startCursor endCursor } edges { cursor node { id } }"
    for kind in ("all", "selected"):
        token = pair.tokens[kind]
        query = (
            f"{{ {root}(first: 100) {{ nodes {{ id {field_name}(first: 100) {{ {page} }} }} }} }}"
        )
        assert compare(pair, query, token) == "compiled"
        status, body = pair.resolvers.graphql(query, token)
        assert status == 200, body
        children = [
            edge["node"]["id"]
            for parent in body["data"][root]["nodes"]
            for edge in parent[field_name]["edges"]
        ]
        for parent in body["data"][root]["nodes"]:
            ids = [e["node"]["id"] for e in parent[field_name]["edges"]]
            assert ids == sorted(set(ids))
            assert parent[field_name]["totalCount"] == len(ids)
        for child in sorted(set(children))[:: max(1, len(set(children)) // 5)]:
            cursor = encode_cursor(target, child)
            after = (
                f"{{ {root}(first: 100) {{ nodes {{ id {field_name}(first: 2, after: "
                f'"{cursor}") {{ {page} }} }} }} }}'
            )
            assert compare(pair, after, token) == "compiled"


def _canonical_errors(body: dict[str, Any]) -> list[Any]:
    errors = []
    for error in body.get("errors") or ():
        extensions = dict(error.get("extensions") or {})
        extensions.pop("requestId", None)
        errors.append((error.get("message"), error.get("path"), extensions))
    # the resolver path adds errors of sibling root fields in whichever order they finish
    return sorted(errors, key=repr)


JSON_BODY = {"Content-Type": "application/json"}


def compare(pair: Pair, query: str, token: str, variables: dict[str, Any] | None = None) -> str:
    """Send `query` to both servers; assert the answers agree; return the path auto took."""
    answers = []
    for server in (pair.auto, pair.resolvers):
        # the standard library's JSON, which writes NaN and ±Infinity as clients may
        body = json.dumps({"query": query, "variables": variables})
        with server.client(token) as http:
            response = http.post("/graphql", content=body, headers=JSON_BODY)
        answers.append(response)
    auto, reference = answers
    assert auto.status_code == reference.status_code, (query, auto.text, reference.text)
    a, r = auto.json(), reference.json()
    # `data` byte for byte, key order included
    assert json.dumps(a.get("data")) == json.dumps(r.get("data")), (query, variables, a, r)
    assert _canonical_errors(a) == _canonical_errors(r), (query, a, r)
    assert not pair.log.failures, (query, pair.log.failures)  # a fallback that hides a bug
    path = pair.log.by_request.get(auto.headers["x-request-id"]) or "none"
    pair.paths[path] += 1
    return path


# ---------------------------------------------------------------- generated operations


@dataclass
class Doc:
    """An operation being generated: its variables and fragments."""

    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    aliases: int = 0


def _page_args(draw: Any, doc: Doc, kind: str) -> str:
    args = []
    choice = draw(st.sampled_from(["none", "first", "var", "bad", "after", "badafter"]))
    if choice == "first":
        args.append(f"first: {draw(st.integers(0, 4))}")
    elif choice == "var":
        name = f"v{len(doc.variables)}"
        doc.variables[name] = draw(st.integers(0, 4))
        doc.definitions.append(f"${name}: Int")
        args.append(f"first: ${name}")
    elif choice == "bad":
        args.append(f"first: {draw(st.sampled_from([-1, 100000]))}")
    elif choice == "after":
        cursor = encode_cursor(kind, str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))))
        name = f"v{len(doc.variables)}"
        doc.variables[name] = cursor
        doc.definitions.append(f"${name}: String")
        args.append(f"first: {draw(st.integers(1, 3))}, after: ${name}")
    elif choice == "badafter":
        args.append('after: "bm90IGEgY3Vyc29y"')
    return f"({', '.join(args)})" if args else ""


def _key(draw: Any, doc: Doc, name: str) -> str:
    if draw(st.integers(0, 4)) == 0:
        doc.aliases += 1
        return f"a{doc.aliases}: {name}"
    return name


def _object(draw: Any, doc: Doc, type_name: str, depth: int) -> str:
    parts = []
    scalars = [
        f for f in SCALARS[type_name] if f not in OBJECT_FIELDS or draw(st.integers(0, 9)) == 0
    ]
    for name in draw(st.lists(st.sampled_from(scalars), min_size=1, max_size=4)):
        parts.append(_key(draw, doc, name))
    if depth > 0:
        edges = [(f, e) for (t, f), e in MANY_EDGES.items() if t == type_name]
        ones = [(f, e) for (t, f), e in ONE_EDGES.items() if t == type_name]
        for name, many in draw(st.lists(st.sampled_from(edges), max_size=1)) if edges else []:
            target = _type_of(many.table.name)
            inner = _connection(draw, doc, target, depth - 1)
            parts.append(f"{_key(draw, doc, name)}{_page_args(draw, doc, many.table.name)} {inner}")
        for name, one in draw(st.lists(st.sampled_from(ones), max_size=1)) if ones else []:
            target = _type_of(one.table.name)
            parts.append(f"{_key(draw, doc, name)} {{ {_object(draw, doc, target, depth - 1)} }}")
    if draw(st.integers(0, 5)) == 0:
        fragment = f"F{len(doc.fragments)}"
        body = " ".join(draw(st.lists(st.sampled_from(SCALARS[type_name]), min_size=1, max_size=2)))
        doc.fragments.append(f"fragment {fragment} on {type_name} {{ id {body} }}")
        parts.append(f"...{fragment}")
    if draw(st.integers(0, 6)) == 0:
        parts.append(f"... on {type_name} {{ __typename id }}")
    if draw(st.integers(0, 6)) == 0:
        parts.append("id @skip(if: true) __typename @include(if: true)")
    return " ".join(parts)


def _connection(draw: Any, doc: Doc, type_name: str, depth: int) -> str:
    parts = []
    wanted = draw(
        st.lists(
            st.sampled_from(["nodes", "edges", "pageInfo", "totalCount", "__typename"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    for name in wanted:
        if name == "nodes":
            parts.append(f"{_key(draw, doc, 'nodes')} {{ {_object(draw, doc, type_name, depth)} }}")
        elif name == "edges":
            node = _object(draw, doc, type_name, depth)
            parts.append(f"{_key(draw, doc, 'edges')} {{ cursor node {{ {node} }} }}")
        elif name == "pageInfo":
            info = " ".join(
                draw(
                    st.lists(
                        st.sampled_from(
                            ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]
                        ),
                        min_size=1,
                        max_size=4,
                        unique=True,
                    )
                )
            )
            parts.append(f"pageInfo {{ {info} }}")
        else:
            parts.append(_key(draw, doc, name))
    return "{ " + " ".join(parts) + " }"


_TYPE_OF = {table.name: type_name for type_name, table in TABLES.items()}


def _type_of(kind: str) -> str:
    return _TYPE_OF[kind]


@st.composite
def operations(draw: Any) -> tuple[str, dict[str, Any]]:
    doc = Doc()
    roots = []
    for root in draw(st.lists(st.sampled_from(sorted(ROOT_LISTS)), min_size=1, max_size=2)):
        type_name = ROOT_LISTS[root]
        args = _page_args(draw, doc, root)
        roots.append(f"{_key(draw, doc, root)}{args} {_connection(draw, doc, type_name, 2)}")
    if draw(st.integers(0, 5)) == 0:
        roots.append("__typename")
    header = f"query Q({', '.join(doc.definitions)})" if doc.definitions else "query Q"
    query = header + " { " + " ".join(roots) + " } " + " ".join(doc.fragments)
    return query, doc.variables


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_generated_operations_agree(pair: Pair) -> None:
    taken: Counter[str] = Counter()

    @PROPERTY
    @given(operations(), st.sampled_from(DEMO_KINDS))
    def check(operation: tuple[str, dict[str, Any]], kind: str) -> None:
        query, variables = operation
        taken[compare(pair, query, pair.tokens[kind], variables)] += 1

    check()
    total = sum(taken.values())
    assert taken["compiled"] / total >= MIN_COMPILED_SHARE, taken


def test_hypothesis_graphql_operations_agree(pair: Pair) -> None:
    @settings(PROPERTY, max_examples=60)
    @given(
        hypothesis_graphql.queries(GRAPHQL, fields=sorted(ROOT_LISTS)),
        st.sampled_from(DEMO_KINDS[:5]),
    )
    def check(query: str, kind: str) -> None:
        compare(pair, query, pair.tokens[kind])

    check()


# ---------------------------------------------------------------- hand-written cases


def _edge_query(type_name: str, field_name: str, kind: str) -> str:
    root = TABLES[type_name].name
    many = (type_name, field_name) in MANY_EDGES
    target = MANY_EDGES[(type_name, field_name)] if many else ONE_EDGES[(type_name, field_name)]
    node_type = GRAPHQL.type_map[_type_of(target.table.name)]
    assert isinstance(node_type, GraphQLObjectType)
    scalars = " ".join(
        f for f in SCALARS[node_type.name] if f not in OBJECT_FIELDS and f != "properties"
    )
    inner = (
        f"(first: 2) {{ totalCount pageInfo {{ hasNextPage startCursor endCursor }} "
        f"edges {{ cursor node {{ {scalars} }} }} }}"
        if many
        else f"{{ {scalars} }}"
    )
    return f"{{ {root}(first: 5) {{ nodes {{ id {field_name} {inner} }} }} }}"


EDGES = sorted([*MANY_EDGES, *ONE_EDGES])


@pytest.mark.parametrize("edge", EDGES, ids=[".".join(e) for e in EDGES])
def test_every_edge_is_compiled_and_agrees(pair: Pair, edge: tuple[str, str]) -> None:
    for kind in DEMO_KINDS[:5]:
        path = compare(pair, _edge_query(*edge, kind), pair.tokens[kind])
        assert path == "compiled"


def test_every_edge_agrees_with_its_nested_json_wrapped_or_not(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nested value is wrapped in `json(…)` or not, as the SQLite in use needs
    (`subtype_crosses_scalar_subqueries`); the other way answers alike, so that an SQLite that
    needs the wrapping gets answers as right as this one."""
    if pair.engine != "sqlite":
        pytest.skip("the wrapping is SQLite's")
    from gateway.compiled import dispatch, sqljson

    used = sqljson.DIALECTS["sqlite"]
    assert isinstance(used, sqljson.SQLite)
    monkeypatch.setitem(
        sqljson.DIALECTS, "sqlite", sqljson.SQLite(wraps_nested=not used.wraps_nested)
    )
    caches = (dispatch.PLANS, dispatch.CLEAN, dispatch.BY_TOKEN)
    for cache in caches:
        monkeypatch.setattr(cache, "_plans", type(cache._plans)())  # compiled anew, dropped after
    for edge in EDGES:
        for kind in ("all", "selected-schools"):
            assert compare(pair, _edge_query(*edge, kind), pair.tokens[kind]) == "compiled"


def test_the_probe_tells_an_sqlite_that_loses_the_json_subtype_across_a_subquery() -> None:
    from gateway.compiled import sqljson
    from gateway.compiled.sqljson import subtype_crosses_scalar_subqueries

    class Losing(sqlite3.Connection):
        """As an SQLite would be that writes a subquery's JSON into its parent as text."""

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            text = sql.replace("(SELECT json_object(", "(SELECT '' || json_object(")
            return super().execute(text, *args)

    def broken(path: str) -> sqlite3.Connection:
        raise sqlite3.OperationalError("no such function: json_object")

    assert (
        subtype_crosses_scalar_subqueries(lambda path: sqlite3.connect(path, factory=Losing))
        is False
    )
    assert subtype_crosses_scalar_subqueries(broken) is False
    # this machine's answer is the one the compiler uses
    used = sqljson.DIALECTS["sqlite"]
    assert isinstance(used, sqljson.SQLite)
    assert used.wraps_nested is not subtype_crosses_scalar_subqueries()


@pytest.mark.parametrize("type_name", sorted(TABLES))
def test_every_scalar_and_lookup_agrees(pair: Pair, type_name: str) -> None:
    root = TABLES[type_name].name
    scalars = " ".join(SCALARS[type_name])
    compiled = " ".join(f for f in SCALARS[type_name] if f not in OBJECT_FIELDS)
    for kind in DEMO_KINDS[:5]:
        token = pair.tokens[kind]
        assert compare(pair, f"{{ {root}(first: 3) {{ nodes {{ {compiled} }} }} }}", token) == (
            "compiled"
        )
        compare(pair, f"{{ {root}(first: 3) {{ nodes {{ {scalars} }} }} }}", token)
    ids = pair.auto.graphql(f"{{ {root}(first: 2) {{ nodes {{ id }} }} }}", pair.tokens["all"])
    for node in ids[1]["data"][root]["nodes"]:
        lookup = (
            f'{{ x: {type_name[0].lower() + type_name[1:]}(id: "{node["id"]}") {{ {compiled} }} }}'
        )
        for kind in DEMO_KINDS[:5]:
            assert compare(pair, lookup, pair.tokens[kind]) == "compiled"


@pytest.mark.parametrize(
    "query",
    [
        '{ people(first: 2, after: "garbage") { nodes { id } } }',
        "{ people(first: -1) { nodes { id } } }",
        '{ person(id: "not-a-uuid") { id } }',
        "{ schools(first: 1, after: "
        '"azI6cGVvcGxlOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA") { nodes { id } } }',
        '{ people(filter: {email: "x@example.com"}) { nodes { id email } } }',
        "{ people(first: 3) { nodes { email phone demographics { birthday } "
        "address { city } identifiers { type value } properties } } }",
        "{ integration { name } people(first: 1) { totalCount } }",
    ],
)
def test_bad_input_and_gated_fields_get_the_same_errors(pair: Pair, query: str) -> None:
    for kind in DEMO_KINDS:
        compare(pair, query, pair.tokens[kind])


def test_denied_field_is_null_with_forbidden_on_the_compiled_path(pair: Pair) -> None:
    token = pair.tokens["partial-permissions"]
    query = "{ people(first: 2) { nodes { id email } } }"
    assert compare(pair, query, token) == "compiled"
    status, body = pair.auto.graphql(query, token)
    assert status == 200
    assert all(node["email"] is None for node in body["data"]["people"]["nodes"])
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


def test_resolvers_setting_never_compiles(pair: Pair) -> None:
    with pair.resolvers.client(pair.tokens["all"]) as http:
        response = http.post("/graphql", json={"query": "{ people(first: 1) { totalCount } }"})
    assert pair.log.by_request[response.headers["x-request-id"]] == "resolvers"


def test_a_clean_compiled_answer_is_served_again_without_strawberry(pair: Pair) -> None:
    from gateway.compiled import dispatch

    query = "query Again { schools(first: 2) { nodes { id name } } }"
    token = pair.tokens["all"]
    compare(pair, query, token)  # compiled and proven clean
    before = len(dispatch.CLEAN._plans)
    assert compare(pair, query, token) == "compiled"
    assert len(dispatch.CLEAN._plans) == before  # served from the clean plans, not added again
    assert any(key[0] == query for key in dispatch.CLEAN._plans)
    # an answer with a denied field is never served that way: the guard runs every time
    denied = "query Denied { people(first: 2) { nodes { id email } } }"
    for _ in range(2):
        compare(pair, denied, pair.tokens["partial-permissions"])
    assert not any(key[0] == denied for key in dispatch.CLEAN._plans)
    # nor for an integration that may not read: its grant is refused before any plan
    status, body = pair.auto.graphql(query, pair.tokens["disabled"])
    assert status == 403
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INTEGRATION_STATE"


ACCEPT_JSON = {"Accept": "application/json"}  # a GET accepting anything gets GraphiQL's page


def test_a_clean_answer_over_get_and_by_persisted_hash(pair: Pair) -> None:
    """GET requests and persisted-query hashes reach the clean answers too, with the same
    response as the resolvers give."""
    import hashlib

    query = "query ByHash { schools(first: 2) { nodes { id name } } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}})
    bodies = {}
    for name, server in (("auto", pair.auto), ("resolvers", pair.resolvers)):
        with server.client(pair.tokens["all"]) as http:
            registered = http.post(
                "/graphql", json={"query": query, "extensions": json.loads(extensions)}
            )
            assert registered.status_code == 200, registered.text
            for _ in range(3):
                response = http.get(
                    "/graphql", params={"extensions": extensions}, headers=ACCEPT_JSON
                )
                assert response.status_code == 200, response.text
                bodies[name] = (response.headers["content-type"], response.content)
            served = pair.log.by_request[response.headers["x-request-id"]]
            assert served == ("compiled" if name == "auto" else "resolvers")
            plain = http.get("/graphql", params={"query": query}, headers=ACCEPT_JSON)
            assert plain.content == response.content
    assert bodies["auto"] == bodies["resolvers"]


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": None}
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("kind", ["made-up", "disabled", "inactive", "all"])
@pytest.mark.parametrize(
    "variables",
    [{"x": 10**30}, _deep(300), {"x": float("nan")}],
    ids=["integer-past-64-bits", "nested-300-deep", "nan"],
)
def test_variables_orjson_cannot_write_get_the_resolvers_answer(
    pair: Pair, kind: str, variables: dict[str, Any]
) -> None:
    """Values the request's JSON lets in but orjson writes as null or refuses (the cache keys
    were orjson's): a made-up or refused token still gets its 401 or 403, not a 500."""
    token = pair.tokens.get(kind, "made-up-token-0123456789")
    compare(pair, "query Unused { people(first: 1) { nodes { id } } }", token, variables)


def test_nan_and_infinity_are_not_null_to_the_clean_answers(pair: Pair) -> None:
    """NaN and ±Infinity variables do not share a cache key with null: once the answer for
    null is clean, they are still refused as the resolvers refuse them."""
    query = "query N($n: Int) { people(first: $n) { nodes { id } } }"
    for _ in range(2):
        compare(pair, query, pair.tokens["all"], {"n": None})
    for value in (float("nan"), float("inf"), float("-inf")):
        compare(pair, query, pair.tokens["all"], {"n": value})
        status, _ = _status(pair.auto, query, pair.tokens["all"], {"n": value})
        assert status == 200  # an error in the body, as the resolvers give


def _status(
    server: LiveServer, query: str, token: str, variables: dict[str, Any]
) -> tuple[int, Any]:
    request = json.dumps({"query": query, "variables": variables})
    with server.client(token) as http:
        response = http.post("/graphql", content=request, headers=JSON_BODY)
    body = response.json()
    assert body.get("errors"), body
    return response.status_code, body


@contextlib.contextmanager
def _changed(pair: Pair, token: str, change: str, undo: str) -> Iterator[None]:
    """The integration of `token` changed by the statement `change` while this lasts, and
    changed back by `undo` afterwards (both with its id bound as :id)."""
    import sqlalchemy as sa

    from gateway.access.tokens import digest

    url = pair.auto.app.state.settings.database_url

    async def find(engine: AsyncEngine) -> Any:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text("SELECT id FROM integrations WHERE token_digest = :d"),
                {"d": digest(token)},
            )
            return found.scalar_one()

    integration = run_db(url, find)

    def run(sql: str) -> None:
        async def body(engine: AsyncEngine) -> None:
            async with engine.begin() as conn:
                await conn.execute(sa.text(sql), {"id": integration})

        run_db(url, body)

    run(change)
    try:
        yield
    finally:
        run(undo)


def test_a_new_token_of_the_integration_gets_the_clean_answer_in_one_call(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a token is replaced, the new one is answered from the clean plans (through the
    grant it has) and then, like the old one, in one call with its grant; the old one is 401."""
    from gateway.access.tokens import digest

    old, new = pair.tokens["all"], "a-new-token-of-the-all-integration-0123"
    query = "query Rotated { schools(first: 3) { nodes { id name } } }"
    for _ in range(2):
        compare(pair, query, old)
    calls = _watched_reads(monkeypatch)
    rotate = f"UPDATE integrations SET token_digest = '{digest(new)}' WHERE id = :id"
    back = f"UPDATE integrations SET token_digest = '{digest(old)}' WHERE id = :id"
    with _changed(pair, old, rotate, back):
        status, _ = pair.auto.graphql(query, old)
        assert status == 401
        for _ in range(3):
            status, body = pair.auto.graphql(query, new)
            assert status == 200
            assert "errors" not in body, body
        monkeypatch.undo()
        assert compare(pair, query, new) == "compiled"
    if pair.engine == "sqlite":
        # the old token: its grant and the plan in one statement (its grant found none); the
        # new one: its grant, then the clean plans; then both in one statement, twice
        assert calls == ["gated", "grant", "plans", "gated", "gated"]


def test_a_changed_grant_is_never_answered_from_the_clean_plans(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clean plans are read with the grant, in one statement on SQLite's driver; a grant
    that changed since (disabled, a permission taken away) gets no data from them, and on SQLite
    their statements do not even run (`test_the_gated_statement_reads_the_plans_only_for_the_
    grant_they_were_proven_for`): the statement's row says so, and the grant is read again for
    the full execution."""
    from gateway import request_db

    token = pair.tokens["all"]
    query = "query Changed { people(first: 3) { nodes { id email } } }"
    compare(pair, query, token)
    assert compare(pair, query, token) == "compiled"  # proven clean, served so
    runs: list[tuple[str, Any]] = []  # (kind of call, whether the gate held) per call
    real = request_db._run_statements

    def counted(connection: Any, begin: bool, statements: Any, *rest: Any) -> Any:
        out = real(connection, begin, statements, *rest)
        kind = _kind_of_call(statements)
        runs.append((kind, _gate_and_values(out[0][0]) if kind == "gated" else None))
        return out

    monkeypatch.setattr(request_db, "_run_statements", counted)
    disable = "UPDATE integrations SET status = 'DISABLED' WHERE id = :id"
    enable = "UPDATE integrations SET status = 'ACTIVE' WHERE id = :id"
    with _changed(pair, token, disable, enable):
        status, body = pair.auto.graphql(query, token)
        assert status == 403, body
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INTEGRATION_STATE"
        assert "data" not in body or body["data"] is None
    if pair.engine == "sqlite":
        # the grant and the plan asked for, the gate shut, the plan not read; the grant again
        assert runs == [("gated", (0, [None])), ("grant", None)], runs
    runs.clear()
    take = (
        "DELETE FROM integration_permissions WHERE integration_id = :id AND permission_id IN "
        "(SELECT id FROM permissions WHERE slug = 'emails:read')"
    )
    give = (
        "INSERT INTO integration_permissions (integration_id, permission_id) "
        "SELECT :id, id FROM permissions WHERE slug = 'emails:read'"
    )
    with _changed(pair, token, take, give):
        status, body = pair.auto.graphql(query, token)
        assert status == 200
        assert all(node["email"] is None for node in body["data"]["people"]["nodes"]), body
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        compare(pair, query, token)
    if pair.engine == "sqlite":
        assert runs[:2] == [("gated", (0, [None])), ("grant", None)], runs
    assert compare(pair, query, token) == "compiled"  # restored: clean again


def test_an_integration_whose_start_date_has_passed_is_answered_in_one_call(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start date that has passed leaves the integration ACTIVE, the grant its clean plans
    were proven for: the grant and the plans are still read in one statement. One still to come
    makes it INACTIVE: the gate stays shut and no plan is read."""
    from gateway import request_db

    token = pair.tokens["all"]
    query = "query Scheduled { schools(first: 2) { nodes { id name } } }"
    compare(pair, query, token)
    assert compare(pair, query, token) == "compiled"
    runs: list[tuple[str, Any]] = []
    real = request_db._run_statements

    def counted(connection: Any, begin: bool, statements: Any, *rest: Any) -> Any:
        out = real(connection, begin, statements, *rest)
        kind = _kind_of_call(statements)
        runs.append((kind, _gate_and_values(out[0][0])[0] if kind == "gated" else None))
        return out

    monkeypatch.setattr(request_db, "_run_statements", counted)
    undo = "UPDATE integrations SET start_date = NULL WHERE id = :id"
    passed = "UPDATE integrations SET start_date = '2001-01-01 00:00:00.000000' WHERE id = :id"
    with _changed(pair, token, passed, undo):
        for _ in range(2):
            status, body = pair.auto.graphql(query, token)
            assert status == 200
            assert "errors" not in body, body
    if pair.engine == "sqlite":
        assert runs == [("gated", 1), ("gated", 1)], runs
    runs.clear()
    to_come = "UPDATE integrations SET start_date = '2999-01-01 00:00:00.000000' WHERE id = :id"
    with _changed(pair, token, to_come, undo):
        status, body = pair.auto.graphql(query, token)
        assert status == 403, body
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INTEGRATION_STATE"
    if pair.engine == "sqlite":
        assert runs == [("gated", 0), ("grant", None)], runs


def _kind_of_call(statements: list[tuple[str, Any]]) -> str:
    """What a call into SQLite's driver read: a token's grant, its grant and clean plans in one
    statement (`gated_statement`), or plans."""
    from gateway.access import authentication

    sql = statements[0][0]
    if sql == authentication._PREPARED["sqlite"].sql:
        return "grant"
    return "gated" if sql.startswith("SELECT g.*,") else "plans"


def _watched_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each call into SQLite's driver reads from now on (`_kind_of_call`), in order."""
    from gateway import request_db

    reads: list[str] = []
    real = request_db._run_statements

    def read(connection: Any, begin: bool, statements: Any, *rest: Any) -> Any:
        reads.append(_kind_of_call(statements))
        return real(connection, begin, statements, *rest)

    monkeypatch.setattr(request_db, "_run_statements", read)
    return reads


def _gate_and_values(row: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """A gated statement's row: whether its gate held, and the plans' values."""
    from gateway.access.authentication import _GrantRow

    width = len(_GrantRow._fields)
    return row[width], list(row[width + 1 :])


# ---------------------------------------------------------------- SQLite's driver path

# On SQLite the token lookup and a compiled answer run on aiosqlite's connection directly
# (`RequestDB.read`), unless something watches SQLAlchemy's statements. Both ways must answer
# alike, and the driver path must cost what it was built to cost: one read for the grant, one
# for the plans (or one for both), on the event loop's thread while they are short.


@contextlib.contextmanager
def _sqlalchemy_path(server: LiveServer) -> Iterator[None]:
    """`server` reads through SQLAlchemy while this lasts (a cursor listener turns the driver
    path off: `RequestDB.on_driver`)."""

    def watch(*args: Any) -> None:
        pass

    engine = server.app.state.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", watch)
    try:
        yield
    finally:
        sa_event.remove(engine, "before_cursor_execute", watch)


def _body(response: Any) -> tuple[int, Any, Any, list[Any]]:
    """A response as `compare` judges it: the status, `data` byte for byte (key order included),
    and the errors in a canonical order (the resolver path adds the errors of fields resolved
    concurrently in whichever order they finish: a run in CI once failed on that alone)."""
    body = response.json()
    rest = {key: value for key, value in body.items() if key not in ("data", "errors")}
    return response.status_code, json.dumps(body.get("data")), rest, _canonical_errors(body)


def test_the_driver_path_answers_as_sqlalchemy_does(pair: Pair) -> None:
    """On SQLite the grant, the plans and a clean answer with its grant are read on the
    driver; on PostgreSQL a clean answer with its grant (the second time an operation is
    sent). Each must answer as SQLAlchemy's path does."""

    @settings(PROPERTY, max_examples=40)
    @given(operations(), st.sampled_from(DEMO_KINDS))
    def check(operation: tuple[str, dict[str, Any]], kind: str) -> None:
        query, variables = operation
        request = {"query": query, "variables": variables}
        with pair.auto.client(pair.tokens[kind]) as http:
            driver = _body(http.post("/graphql", json=request))
            again = _body(http.post("/graphql", json=request))  # read with its grant if clean
            with _sqlalchemy_path(pair.auto):
                reference = _body(http.post("/graphql", json=request))
        assert driver == reference, (query, variables)
        assert again == reference, (query, variables)

    check()


# Headers that differ between any two responses, whichever path sends them.
_PER_RESPONSE = frozenset({"date", "x-request-id"})


def _sent(response: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    """A response as the client receives it: status, body bytes and headers (in order)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k not in _PER_RESPONSE]
    return response.status_code, response.content, headers


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "application/graphql-response+json",
        "text/html;q=0.9, application/graphql-response+json;q=0.5, */*;q=0.1",
    ],
)
def test_a_known_answer_from_the_scope_is_the_response_the_view_sends(
    pair: Pair, accept: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A POST or GET whose answer is known clean for its token is answered from the ASGI scope
    (`GraphView.answer_known`), past Starlette's request and Strawberry's view: what the client
    gets must be what the resolver path sends, byte for byte and header for header, in the
    media type it asked for; a browser's GET still gets the GraphiQL page."""
    from gateway.graph.view import GraphView

    answered: list[bool] = []
    real = GraphView.answer_known

    async def spied(self: GraphView, scope: Any, body: bytes) -> Any:
        response = await real(self, scope, body)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(GraphView, "answer_known", spied)
    name = f"Known{uuid.uuid4().hex}"  # not known yet, whatever ran before
    query = (
        f"query {name}($n: Int) {{ people(first: $n) {{ totalCount nodes {{ id "
        "given: firstName schools(first: 1) { nodes { name } } } "
        "pageInfo { hasNextPage endCursor } } }"
    )
    request = {"query": query, "variables": {"n": 3}, "operationName": name}
    headers = {"accept": accept} if accept else {}
    for kind in ("all", "selected-schools"):
        token = pair.tokens[kind]
        with pair.resolvers.client(token) as http:
            reference = _sent(http.post("/graphql", json=request, headers=headers))
        with pair.auto.client(token) as http:
            first = http.post("/graphql", json=request, headers=headers)
            known = http.post("/graphql", json=request, headers=headers)
            params = {**request, "variables": json.dumps({"n": 3})}
            got = http.get("/graphql", params=params, headers=headers)
        assert reference[0] == 200, reference
        assert _sent(first) == reference
        assert _sent(known) == reference
        browser = "text/html" in (accept or "")  # then a GET gets the GraphiQL page
        if not browser:
            assert _sent(got) == reference
            assert pair.log.by_request[got.headers["x-request-id"]] == "compiled"
        # the first was not known yet
        assert answered[-3:] == [False, True, not browser], answered
        assert pair.log.by_request[known.headers["x-request-id"]] == "compiled"


def test_stored_json_in_a_form_orjson_does_not_write_is_answered_as_the_resolvers_write_it(
    pair: Pair,
) -> None:
    """`properties` stored by a writer other than the gateway in a form orjson does not write
    (`1.50`, `1e2`, `\\u00e9`, `\\/`) reaches the client as the resolvers write it, from the
    full execution and from a known answer alike: the known answer sent SQLite's text as
    stored (found by a review), not the same bytes."""
    import sqlalchemy as sa

    url = pair.auto.app.state.settings.database_url
    stored = '{"f":1.50,"e":1e2,"s":"Jos\\u00e9\\/","n":[1.0e0, 2]}'

    async def swap(engine: AsyncEngine, new: Any, person: str | None) -> tuple[str, Any]:
        if new is not None and not isinstance(new, str):
            new = json.dumps(new)  # as PostgreSQL's driver read it back: parsed
        async with engine.begin() as conn:
            if person is None:
                found = await conn.execute(
                    sa.text("SELECT id, properties FROM people ORDER BY id LIMIT 1")
                )
                person, old = found.one()
            else:
                old = None
            cast = "CAST(:p AS JSON)" if engine.dialect.name == "postgresql" else ":p"
            await conn.execute(
                sa.text(f"UPDATE people SET properties = {cast} WHERE id = :id"),
                {"p": new, "id": person},
            )
            return str(person), old

    person, old = run_db(url, lambda engine: swap(engine, stored, None))
    try:
        request = {
            "query": "query Stored($id: ID!) { person(id: $id) { id properties } }",
            "variables": {"id": person},
        }
        token = pair.tokens["all"]
        with pair.resolvers.client(token) as http:
            reference = _sent(http.post("/graphql", json=request))
        with pair.auto.client(token) as http:
            answers = [_sent(http.post("/graphql", json=request)) for _ in range(3)]
        assert reference[0] == 200, reference
        assert b'"f":1.5,' in reference[1], reference  # written again, as orjson does
        assert answers == [reference] * 3
    finally:
        run_db(url, lambda engine: swap(engine, old, person))


def test_a_known_answer_is_read_from_a_body_sent_in_chunks(pair: Pair) -> None:
    """The body of a POST comes in as many messages as the client sends (chunked transfer
    encoding here): `GraphEndpoint` reads it whole for a known answer and gives the same
    messages again to the view for any other request."""
    query = "query Chunked { people(first: 2) { nodes { id lastName } } }"
    body = json.dumps({"query": query}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    token = pair.tokens["all"]
    with pair.resolvers.client(token) as http:
        reference = _sent(http.post("/graphql", json={"query": query}))
    typed = {"content-type": "application/json"}
    with pair.auto.client(token) as http:
        answers = [_sent(http.post("/graphql", content=chunks(), headers=typed)) for _ in range(3)]
    assert reference[0] == 200, reference
    assert answers == [reference] * 3


def test_a_request_past_the_known_answers_reads_its_grant_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`answer_known` reads the grant of every POST with a token; a request it leaves to the
    view (an answer not known yet, a denied field, a bad document) is answered with that grant,
    not a second lookup."""
    if pair.engine != "sqlite":
        pytest.skip("the reads counted are SQLite's driver path")
    reads = _watched_reads(monkeypatch)
    documents = [
        f"query Fresh{uuid.uuid4().hex} {{ people(first: 2) {{ nodes {{ id }} }} }}",
        "{ people(first: 2) { nodes { id demographics { birthday } } } }",
        "{ people(first: 2) { nodes { nope } } }",
    ]
    for document in documents:
        status, body = pair.auto.graphql(document, pair.tokens["partial-permissions"])
        assert status in (200, 400), body
        assert reads.count("grant") == 1, (document, reads)
        reads.clear()


def test_a_clean_answer_is_one_statement_on_postgresql(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once proven clean, an operation is read with its grant in one statement on asyncpg's
    connection, outside any transaction: nothing through SQLAlchemy (the pool's ping aside)."""
    if pair.engine != "postgres":
        pytest.skip("PostgreSQL's path (SQLite's is counted in calls into its thread below)")
    import asyncpg
    from sqlalchemy.dialects.postgresql import asyncpg as sa_asyncpg

    raw: list[str] = []
    through: list[str] = []
    real_fetch = asyncpg.Connection.fetch
    real_execute = sa_asyncpg.AsyncAdapt_asyncpg_cursor._prepare_and_execute

    async def fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        raw.append(query)
        return await real_fetch(self, query, *args, **kwargs)

    async def execute(self: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
        through.append(operation)
        return await real_execute(self, operation, *args, **kwargs)

    query = "query One { people(first: 5) { nodes { id schools(first: 1) { nodes { name } } } } }"
    for kind in ("all", "selected-schools"):
        for clean in (False, True, True):
            monkeypatch.setattr(asyncpg.Connection, "fetch", fetch)
            monkeypatch.setattr(
                sa_asyncpg.AsyncAdapt_asyncpg_cursor, "_prepare_and_execute", execute
            )
            status, body = pair.auto.graphql(query, pair.tokens[kind])
            monkeypatch.undo()
            assert status == 200
            assert "errors" not in body, body
            if clean:
                assert (len(raw), through) == (1, []), (raw, through)
            else:
                assert raw == []  # a full execution, through SQLAlchemy
                assert through
            raw.clear()
            through.clear()


def test_a_compiled_answer_takes_one_read_and_no_call_into_the_drivers_thread_once_clean(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a small answer's statements run on the event loop's own thread once they are
    prepared on the connection (their first run, in aiosqlite's thread): then not one call into
    that thread (each a thread switch and back), from the grant's read to the connection's
    return to the pool; a clean answer is one read, its grant and plans in one statement."""
    if pair.engine != "sqlite":
        pytest.skip("the driver path is SQLite's")
    import aiosqlite.core

    from gateway import request_db

    calls: list[str] = []  # into aiosqlite's thread, whoever makes them
    reads: list[str] = []
    real_execute = aiosqlite.core.Connection._execute
    real_run = request_db._run_statements

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real_execute(self, fn, *args, **kwargs)

    def read(connection: Any, begin: bool, statements: Any, *rest: Any) -> Any:
        reads.append(_kind_of_call(statements))
        return real_run(connection, begin, statements, *rest)

    query = "query Three { people(first: 5) { nodes { id schools(first: 1) { nodes { name } } } } }"
    for kind in ("all", "selected-schools"):
        # a full execution (the grant, then the plans, which end the read transaction, so the
        # pool has nothing to roll back), then the clean plans read with the grant
        # one request at a time, so the pool gives the same connection back each time: the
        # first run of each statement prepares it, in the driver's thread; the third request
        # reads with none
        seen = []
        for _ in range(3):
            monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
            monkeypatch.setattr(request_db, "_run_statements", read)
            status, body = pair.auto.graphql(query, pair.tokens[kind])
            monkeypatch.undo()
            assert status == 200
            assert "errors" not in body, body
            assert len(calls) <= len(reads), (reads, calls)  # none but the reads' own
            seen.append((list(reads), len(calls)))
            reads.clear()
            calls.clear()
        assert [r for r, _ in seen] == [["grant", "plans"], ["gated"], ["gated"]], seen
        assert seen[-1][1] == 0, seen


# ---------------------------------------------------------------- work per request

# A nested `totalCount` whose parent rows repeat (the one district of every person, the school
# of every enrollment's class) is one count per parent row in a correlated subquery, while the
# resolvers count each distinct parent once. At 20,000 demo people the first operation below
# ran into the 10 s request deadline (HTTP 400, QUERY_TOO_COMPLEX) on the compiled path and took
# 0.4 s on the resolvers. SQLite's virtual-machine steps measure the work deterministically:
# the statements each server ran are replayed with a progress handler counting them.
WORK_PEOPLE = 400
REPEATED_PARENT_COUNTS = [
    pytest.param(
        "{ people(first: 400) { nodes { district { people(first: 1) { totalCount } } } } }",
        id="under-a-to-one-edge",
    ),
    pytest.param(
        "{ people(first: 400) { nodes { schools(first: 1) { nodes { people(first: 1) "
        "{ totalCount } } } } } }",
        id="under-a-nested-connection",
    ),
    pytest.param(
        "{ enrollments(first: 400) { nodes { class { school { people(first: 1) "
        "{ totalCount } } } } } }",
        id="two-edges-down",
    ),
]


@dataclass
class Sized:
    path: Path
    auto: LiveServer
    resolvers: LiveServer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sized]:
    directory = tmp_path_factory.mktemp("compiled-work")
    with fresh_database("sqlite", directory, "work") as url:

        async def build(engine: AsyncEngine) -> dict[str, str]:
            demo = await load_demo(engine, people=WORK_PEOPLE)
            return {i.name: i.token for i in demo.integrations if i.token is not None}

        tokens = run_db(url, build)
        common = {"database_url": url, "rate_limit_burst": 10**9}
        with (
            LiveServer(Settings(**common, execution="auto")) as auto,
            LiveServer(Settings(**common, execution="resolvers")) as resolvers,
        ):
            yield Sized(directory / "gateway.db", auto, resolvers, tokens)


def _steps(sized: Sized, server: LiveServer, query: str, token: str) -> tuple[int, Any]:
    """SQLite VM steps (in thousands) of the SELECTs `server` ran to answer `query`, and the
    answer's `data`."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        seen.append((statement, parameters))

    engine = server.app.state.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        status, body = server.graphql(query, token)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert status == 200, body
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with contextlib.closing(sqlite3.connect(sized.path)) as replay:
        replay.set_progress_handler(tick, 1000)
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                replay.execute(statement, parameters or ()).fetchall()
    return steps, body["data"]


@pytest.mark.parametrize("query", REPEATED_PARENT_COUNTS)
@pytest.mark.parametrize("kind", ["all", "selected-schools"])
def test_a_count_under_repeated_parents_costs_what_the_resolvers_pay(
    sized: Sized, query: str, kind: str
) -> None:
    token = sized.tokens[kind]
    compiled, compiled_data = _steps(sized, sized.auto, query, token)
    reference, reference_data = _steps(sized, sized.resolvers, query, token)
    assert json.dumps(compiled_data) == json.dumps(reference_data)
    assert compiled <= 3 * reference + 50, (compiled, reference)


def test_an_object_wider_than_one_sql_function_call_is_answered_without_a_failed_statement(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL passes at most 100 arguments to a function, so one `json_build_object` holds
    at most 50 keys; 30 aliases on a person's fields make more. The answer must not come from a
    statement that failed (an ERROR with a stack trace in the log, and the SQL run twice)."""
    scalars = " ".join(f for f in SCALARS["Person"] if f not in OBJECT_FIELDS)
    aliases = " ".join(f"n{i}: displayName" for i in range(30))
    edges = (
        "__typename district { id } schools { totalCount } classes { totalCount } "
        "enrollments { totalCount } agents { totalCount }"
    )
    query = f"{{ people(first: 2) {{ nodes {{ {scalars} {aliases} {edges} }} }} }}"
    assert len(SCALARS["Person"]) + 30 + 6 > 50
    with caplog.at_level(logging.ERROR, logger="gateway.compiled"):
        compare(pair, query, pair.tokens["all"])
    assert not [r for r in caplog.records if r.name == "gateway.compiled"]


def _enrollments(inner: str) -> str:
    return f"id enrollments(first: 2) {{ nodes {{ id {inner} }} }}"


def _person(inner: str) -> str:
    return f"person {{ id {inner} }}"


DEEPER_THAN_SQLITE_PARSES = {
    # enrollments → person three times: its statement alone is too deep for SQLite's parser
    # (100 deep before 3.46), within the gateway's depth limit (15)
    "statement": _enrollments(_person(_enrollments(_person(_enrollments(_person("")))))),
    # one level less: its statement runs, not once wrapped with the grant (`grant_and_clean`)
    "with-its-grant": _enrollments(_person(_enrollments(_person(_enrollments(""))))),
}


@pytest.mark.parametrize("case", list(DEEPER_THAN_SQLITE_PARSES))
def test_an_operation_nested_deeper_than_sqlite_parses_is_one_warning_then_the_resolvers(
    pair: Pair, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """Found by a review: each such request logged an ERROR with a stack trace (a compiled
    statement that failed, then the resolvers), on every request. Now: one warning, and the
    resolvers answer it from then on, as they answer what the compiler does not support."""
    query = f"{{ people(first: 2) {{ nodes {{ {DEEPER_THAN_SQLITE_PARSES[case]} }} }} }}"
    with caplog.at_level(logging.WARNING, logger="gateway.compiled"):
        paths = [compare(pair, query, pair.tokens["all"]) for _ in range(4)]
    records = [r for r in caplog.records if r.name == "gateway.compiled"]
    if pair.engine == "sqlite":
        assert [(r.levelname, r.exc_info) for r in records] == [("WARNING", None)], records
        assert "deeper than the database parses" in records[0].getMessage()
        assert paths[-2:] == ["resolvers", "resolvers"]
    else:  # PostgreSQL parses it
        assert records == []
        assert paths[-1] == "compiled"


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Person") { name fields { name } } }',
        "{ __typename __schema { queryType { name } } schools(first: 1) { nodes { id } } }",
        '{ __type(name: "School") { name } schools(first: 1) { nodes { id } } }',
        "query IntrospectionQuery { __schema { types { name } } }",
    ],
)
def test_introspection_with_a_token_is_left_to_the_resolvers(pair: Pair, query: str) -> None:
    """GraphiQL, codegen tools and Apollo's devtools introspect with the Authorization header
    set: `__schema` and `__type` are no fields of the query type, and must not reach the
    compiler's root lookup (that was an INTERNAL_SERVER_ERROR)."""
    assert compare(pair, query, pair.tokens["all"]) == "resolvers"
    status, body = pair.auto.graphql(query, pair.tokens["all"])
    assert status == 200
    assert "errors" not in body, body


# ---------------------------------------------------------------- SQLite's JSON, verbatim

# A clean answer's JSON goes into the response as SQLite wrote it (`dispatch._data`), so SQLite
# must write what orjson would: the same escapes, no spaces; for any text, integer, boolean or
# null (the compiled fields hold nothing else).


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_sqlite_writes_json_as_orjson_does(text: str, number: int) -> None:
    import orjson

    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        (written,) = conn.execute(
            "SELECT json_object('s', ?, 'n', ?, 'a', json_array(?, json('true'), json('false'),"
            " NULL), 'o', json(json_object(?, json_group_array(?))))",
            (text, number, text, text, text),
        ).fetchone()
    expected = {"s": text, "n": number, "a": [text, True, False, None], "o": {text: [text]}}
    assert written == orjson.dumps(expected).decode()
