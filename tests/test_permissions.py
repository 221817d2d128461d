"""Permissions (DESIGN §4 step 4) and the gate as a whole: the matrix over every root field,
denied fields, filters by denied fields, and proof that a denied operation runs no graph SQL."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.gates import FILTER_PERMISSIONS, TYPE_PERMISSIONS
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, recorded_statements, run_db
from tests.factories import INSERT_ORDER, Graph, make_integration, make_source
from tests.oracle import TABLES, visible

TYPE_SLUGS = sorted(set(TYPE_PERMISSIONS.values()))
STATUSES = [IntegrationStatus.ACTIVE, IntegrationStatus.INACTIVE, IntegrationStatus.DISABLED]
GRAPH_TABLES = INSERT_ORDER  # every table of graph data


def _scopes(graph: Graph) -> dict[str, set[str] | None]:
    schools, courses, classes = graph.ids("schools"), graph.ids("courses"), graph.ids("classes")
    return {
        "all": None,
        "by-school": {schools[0]},
        "by-course": {courses[0], courses[1]},
        "by-class": {classes[0], classes[3]},
        "mixed": {schools[1], courses[2], classes[4]},
    }


@dataclass
class World:
    server: LiveServer
    graph: Graph
    # (scope name, status, missing slug or "") -> token; and ("all", "ACTIVE", "all but
    # people:read")
    tokens: dict[tuple[str, str, str], str]
    partial: str


@pytest.fixture(scope="module", params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with fresh_database(request.param, tmp_path_factory.mktemp("perm"), "perm") as url:
        yield from _serve_world(url)


def _serve_world(url: str) -> Iterator[World]:
    """Fill the database at `url` and serve it."""

    async def build(engine: AsyncEngine) -> tuple[Graph, dict[tuple[str, str, str], str], str]:
        graph = await make_source(engine, 21, "Permissions")
        tokens = {}
        for (scope_name, targets), status, missing in itertools.product(
            _scopes(graph).items(), STATUSES, ["", *TYPE_SLUGS]
        ):
            tokens[(scope_name, status.value, missing)] = await make_integration(
                engine,
                graph.source.id,
                scope=Scope.ALL if targets is None else Scope.SELECTED,
                targets=sorted(targets or ()),
                status=status,
                permissions=sorted(ALL_SLUGS - {missing}),
            )
        partial = await make_integration(
            engine,
            graph.source.id,
            permissions=sorted(
                ALL_SLUGS
                - {
                    "emails:read",
                    "phones:read",
                    "demographics:read",
                    "identifiers:read",
                    "properties:read",
                    "enrollments:read",
                }
            ),
        )
        # people:read alone: a person's `classes` needs two permissions it lacks
        tokens[("all", "ACTIVE", "all but people:read")] = await make_integration(
            engine, graph.source.id, permissions=["people:read"]
        )
        return graph, tokens, partial

    graph, tokens, partial = run_db(url, build)
    with LiveServer(Settings(database_url=url)) as server:
        yield World(server, graph, tokens, partial)


MATRIX = list(
    itertools.product(
        TABLES,
        ["all", "by-school", "by-course", "by-class", "mixed"],
        ["granted", "not-granted"],
        [s.value for s in STATUSES],
    )
)


@pytest.mark.parametrize(
    ("type_name", "scope_name", "permission", "status"),
    MATRIX,
    ids=["-".join(case) for case in MATRIX],
)
def test_root_field_matrix(
    world: World, type_name: str, scope_name: str, permission: str, status: str
) -> None:
    slug = TYPE_PERMISSIONS[type_name]
    missing = "" if permission == "granted" else slug
    token = world.tokens[(scope_name, status, missing)]
    root = TABLES[type_name]
    code, body = world.server.graphql(
        f"{{ {root}(first: 1000) {{ totalCount nodes {{ id }} }} }}", token
    )
    if status != "ACTIVE":
        assert code == 403
        assert body == {
            "data": None,
            "errors": [
                {
                    "message": body["errors"][0]["message"],
                    "extensions": {"code": "INVALID_INTEGRATION_STATE", "status": status},
                }
            ],
        }
        return
    assert code == 200
    if permission == "not-granted":
        assert body["data"] == {root: None}
        [error] = body["errors"]
        assert error["path"] == [root]
        assert error["extensions"] == {
            "code": "FORBIDDEN",
            "permission": slug,
            "permissions": [slug],
        }
        return
    expected = visible(world.graph, _scopes(world.graph)[scope_name]).ids[type_name]
    assert "errors" not in body
    assert {n["id"] for n in body["data"][root]["nodes"]} == expected
    assert body["data"][root]["totalCount"] == len(expected)


def _errors_by_path(body: dict[str, Any]) -> dict[str, str]:
    return {
        "/".join(str(p) for p in e["path"]): e["extensions"]["permission"]
        for e in body.get("errors", [])
        if e["extensions"]["code"] == "FORBIDDEN"
    }


def test_each_denied_field_is_null_with_one_error(world: World) -> None:
    query = """{
      people(first: 50) {
        nodes {
          id firstName email phone
          address { street phone }
          demographics { gender }
          identifiers { type value }
          properties
          enrollments { nodes { id } }
          classes { nodes { id } }
          schools { nodes { id name properties } }
        }
      }
    }"""
    code, body = world.server.graphql(query, world.partial)
    assert code == 200
    assert _errors_by_path(body) == {
        "people/nodes/email": "emails:read",
        "people/nodes/phone": "phones:read",
        "people/nodes/address/phone": "phones:read",
        "people/nodes/demographics": "demographics:read",
        "people/nodes/identifiers": "identifiers:read",
        "people/nodes/properties": "properties:read",
        "people/nodes/enrollments": "enrollments:read",
        "people/nodes/classes": "enrollments:read",
        "people/nodes/schools/nodes/properties": "properties:read",
    }
    nodes = body["data"]["people"]["nodes"]
    assert len(nodes) == 50
    for node in nodes:
        for field in (
            "email",
            "phone",
            "demographics",
            "identifiers",
            "properties",
            "enrollments",
            "classes",
        ):
            assert node[field] is None
        assert node["firstName"]
        assert node["address"]["street"]
        assert node["address"]["phone"] is None
        for school in node["schools"]["nodes"]:
            assert school["name"]
            assert school["properties"] is None


def test_denied_field_through_fragments_reports_each_path_once(world: World) -> None:
    query = """
      query { people(first: 3) { nodes { ...P ...P } } a: people(first: 2) { nodes { ...P } } }
      fragment P on Person { id email }
    """
    code, body = world.server.graphql(query, world.partial)
    assert code == 200
    assert _errors_by_path(body) == {
        "people/nodes/email": "emails:read",
        "a/nodes/email": "emails:read",
    }
    assert len(body["errors"]) == 2
    assert all(n["email"] is None and n["id"] for n in body["data"]["people"]["nodes"])


def test_an_alias_does_not_unlock_a_denied_field(world: World) -> None:
    _, body = world.server.graphql("{ people(first: 2) { nodes { mail: email } } }", world.partial)
    assert _errors_by_path(body) == {"people/nodes/mail": "emails:read"}
    assert all(n["mail"] is None for n in body["data"]["people"]["nodes"])


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ people(filter: {email: {contains: "@"}}) { totalCount } }', None),
        (
            "query($f: PersonFilter) { people(filter: $f) { totalCount } }",
            {"f": {"email": {"contains": "@"}}},
        ),
        (
            "query($s: StringFilter) { people(filter: {email: $s}) { totalCount } }",
            {"s": {"startsWith": "p"}},
        ),
        (
            'query($f: PersonFilter = {email: {contains: "@"}}) '
            "{ people(filter: $f) { totalCount } }",
            None,
        ),
        (
            'query($s: StringFilter = {startsWith: "p"}) '
            "{ people(filter: {email: $s}) { totalCount } }",
            {},
        ),
    ],
    ids=["literal", "variable", "nested-variable", "variable-default", "nested-default"],
)
def test_filtering_by_a_denied_field_is_denied(
    world: World, query: str, variables: dict[str, Any] | None
) -> None:
    code, body = world.server.graphql(query, world.partial, variables)
    assert code == 200
    assert body["data"] == {"people": None}
    assert _errors_by_path(body) == {"people": "emails:read"}


@pytest.mark.parametrize(
    ("query", "variables", "denied"),
    [
        ("{ people(first: 2) { nodes { id email @skip(if: true) } } }", None, False),
        ("{ people(first: 2) { nodes { id email @skip(if: false) } } }", None, True),
        (
            "query($on: Boolean!) { people(first: 2) { nodes { id email @include(if: $on) } } }",
            {"on": False},
            False,
        ),
        (
            "query($on: Boolean!) { people(first: 2) { nodes { id email @include(if: $on) } } }",
            {"on": True},
            True,
        ),
        (
            "query($on: Boolean = false) "
            "{ people(first: 2) { nodes { id ...E @include(if: $on) } } }"
            " fragment E on Person { email }",
            {},
            False,
        ),
        (
            "query($off: Boolean = true) "
            "{ people(first: 2) { nodes { id ... on Person @skip(if: $off) { email } } } }",
            {"off": False},
            True,
        ),
    ],
    ids=["skip", "not-skipped", "include-off", "include-on", "spread-default", "inline-sent"],
)
def test_a_field_left_out_by_skip_or_include_is_not_denied(
    world: World, query: str, variables: dict[str, Any] | None, denied: bool
) -> None:
    code, body = world.server.graphql(query, world.partial, variables)
    assert code == 200
    if denied:
        assert _errors_by_path(body) == {"people/nodes/email": "emails:read"}
        assert all(n["email"] is None for n in body["data"]["people"]["nodes"])
    else:
        assert "errors" not in body, body["errors"]
        assert all(set(n) == {"id"} for n in body["data"]["people"]["nodes"])


def test_the_error_names_the_filter_field_that_needs_the_permission(world: World) -> None:
    query = '{ people(filter: {email: {contains: "@"}}) { totalCount } }'
    _, body = world.server.graphql(query, world.partial)
    (error,) = body["errors"]
    assert error["message"] == (
        "Filtering `Query.people` by `filter.email` needs the permission emails:read, "
        "which this integration was not granted."
    )


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ people(filter: {email: null}) { totalCount } }", None),
        ("query($s: StringFilter) { people(filter: {email: $s}) { totalCount } }", {"s": None}),
        ("query($s: StringFilter) { people(filter: {email: $s}) { totalCount } }", {}),
        ("query($f: PersonFilter) { people(filter: $f) { totalCount } }", {"f": {"email": None}}),
    ],
    ids=["literal-null", "null-variable", "unsent-variable", "null-in-variable"],
)
def test_a_gated_filter_field_left_null_filters_nothing_and_is_allowed(
    world: World, query: str, variables: dict[str, Any] | None
) -> None:
    # One query template serves every integration: `people(filter: {email: $email})` must work
    # for one without emails:read as long as it sends no email.
    code, body = world.server.graphql(query, world.partial, variables)
    assert code == 200
    assert "errors" not in body, body["errors"]
    assert body["data"]["people"]["totalCount"] == len(world.graph.ids("people"))


def test_filtering_by_classes_needs_enrollments(world: World) -> None:
    query = "query($ids: [ID!]) { people(filter: {classIds: $ids}) { totalCount } }"
    _, body = world.server.graphql(query, world.partial, {"ids": world.graph.ids("classes")[:1]})
    assert _errors_by_path(body) == {"people": "enrollments:read"}


def test_a_field_that_needs_two_permissions_names_both(world: World) -> None:
    # A developer who asked only for the first would be refused again (an app developer's
    # review): the message and `extensions.permissions` name every one it lacks.
    token = world.tokens[("all", "ACTIVE", "all but people:read")]
    _, body = world.server.graphql("{ people { nodes { classes { totalCount } } } }", token)
    (error,) = body["errors"]
    assert error["path"] == ["people", "nodes", "classes"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "permission": "organizations:read",
        "permissions": ["organizations:read", "enrollments:read"],
    }
    assert error["message"] == (
        "`Person.classes` needs the permissions organizations:read and enrollments:read, "
        "which this integration was not granted."
    )


def test_node_does_not_return_objects_of_ungranted_types(world: World) -> None:
    token = world.tokens[("all", "ACTIVE", "people:read")]
    person = world.graph.ids("people")[0]
    school = world.graph.ids("schools")[0]
    query = (
        f'{{ p: node(id: "{person}") {{ id ... on Person {{ firstName }} }} '
        f's: node(id: "{school}") {{ id }} }}'
    )
    code, body = world.server.graphql(query, token)
    assert code == 200
    assert body["data"]["p"] is None
    assert body["data"]["s"] == {"id": school}
    assert _errors_by_path(body) == {"p/firstName": "people:read"}


@pytest.fixture
def statements(world: World) -> Iterator[list[str]]:
    with recorded_statements(world.server) as seen:
        yield seen


def _touches_graph(statement: str) -> bool:
    return any(re.search(rf"\b{table}\b", statement) for table in GRAPH_TABLES)


@pytest.mark.parametrize(
    ("who", "query", "status"),
    [
        ("nobody", "{ people { nodes { id email } } }", 401),
        ("inactive", "{ people { nodes { id } } schools { nodes { id } } }", 403),
        ("disabled", "{ enrollments { nodes { id } } }", 403),
        ("partial", "{ enrollments { nodes { id } } }", 200),
        ("no-people", "{ people { totalCount nodes { id } } }", 200),
    ],
)
def test_a_denied_operation_runs_no_graph_sql(
    world: World, statements: list[str], who: str, query: str, status: int
) -> None:
    token = {
        "nobody": None,
        "inactive": world.tokens[("all", "INACTIVE", "")],
        "disabled": world.tokens[("all", "DISABLED", "")],
        "partial": world.partial,
        "no-people": world.tokens[("all", "ACTIVE", "people:read")],
    }[who]
    code, _ = world.server.graphql(query, token)
    assert code == status
    assert not [s for s in statements if _touches_graph(s)]
    # the control: an allowed query does touch graph tables, so the check can fail
    world.server.graphql("{ schools { nodes { id } } }", world.tokens[("all", "ACTIVE", "")])
    assert [s for s in statements if _touches_graph(s)]


def test_random_denials_never_leak_values(world: World) -> None:
    # Every subset-of-permissions token sees null for each field it lacks, whatever the query.
    rng = random.Random(5)
    for _ in range(10):
        scope_name = rng.choice(list(_scopes(world.graph)))
        missing = rng.choice(TYPE_SLUGS)
        token = world.tokens[(scope_name, "ACTIVE", missing)]
        query = "{ classes(first: 5) { nodes { id school { id } course { id } sessions { nodes { id } } people { nodes { id } } enrollments { nodes { id person { id } } } } } }"  # noqa: E501
        _, body = world.server.graphql(query, token)
        denied = _errors_by_path(body)
        assert set(denied.values()) <= {missing}
        if missing == "organizations:read":
            assert body["data"] == {"classes": None}


FILTER_ROOTS = {
    "SessionFilter": "sessions",
    "CourseFilter": "courses",
    "ClassFilter": "classes",
    "PersonFilter": "people",
    "EnrollmentFilter": "enrollments",
    "AgentFilter": "agents",
}


@pytest.mark.parametrize(
    ("filter_type", "field", "slug"),
    [
        (filter_type, field, slug)
        for (filter_type, field), slugs in FILTER_PERMISSIONS.items()
        for slug in slugs
        if slug in TYPE_SLUGS
    ],
)
def test_filtering_by_related_ids_needs_what_reading_the_relation_needs(
    world: World, filter_type: str, field: str, slug: str
) -> None:
    # `agents(filter: {observerIds: …})` without people:read would tell who observes whom.
    root = FILTER_ROOTS[filter_type]
    token = world.tokens[("all", "ACTIVE", slug)]
    query = f"query($ids: [ID!]) {{ {root}(filter: {{{field}: $ids}}) {{ totalCount }} }}"
    code, body = world.server.graphql(query, token, {"ids": [world.graph.ids("people")[0]]})
    assert code == 200
    assert body["data"] == {root: None}
    assert _errors_by_path(body) == {root: slug}
