"""The Graph API (DESIGN §3, §5): batched loading, pagination arguments, lookups, errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, recorded_statements, run_db
from tests.factories import Graph, make_integration, make_source


@dataclass
class World:
    server: LiveServer
    graph: Graph
    token: str


@pytest.fixture(scope="module", params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with fresh_database(request.param, tmp_path_factory.mktemp("graph"), "graph") as url:
        yield from _serve_world(url)


def _serve_world(url: str) -> Iterator[World]:
    """Fill the database at `url` and serve it."""

    async def build(engine: AsyncEngine) -> tuple[Graph, str]:
        graph = await make_source(
            engine, 41, "Graph", schools=6, classes=40, people=300, enrollments=1500
        )
        return graph, await make_integration(engine, graph.source.id)

    graph, token = run_db(url, build)
    settings = Settings(database_url=url, max_cost=10**9, max_list_length=LONGEST_LIST)
    with LiveServer(settings) as server:
        yield World(server, graph, token)


# The largest GATEWAY_MAX_LIST_LENGTH the settings accept: every list it lets through must work.
LONGEST_LIST = 5000


@pytest.fixture
def statements(world: World) -> Iterator[list[str]]:
    with recorded_statements(world.server) as seen:
        yield seen


THREE_LEVELS = """query($n: Int) {
  schools(first: $n) {
    nodes { id name
      classes(first: $n) {
        totalCount
        nodes { id course { id } school { id }
          enrollments(first: $n) { totalCount nodes { id person { id } section { id } } }
        }
      }
    }
  }
}"""


def _count(world: World, statements: list[str], first: int) -> tuple[int, int]:
    statements.clear()
    status, body = world.server.graphql(THREE_LEVELS, world.token, {"n": first})
    assert status == 200, body
    assert "errors" not in body
    rows = sum(
        len(c["enrollments"]["nodes"])
        for s in body["data"]["schools"]["nodes"]
        for c in s["classes"]["nodes"]
    )
    return len(statements), rows


def test_statement_count_depends_on_depth_not_rows(world: World, statements: list[str]) -> None:
    small, small_rows = _count(world, statements, 5)
    large, large_rows = _count(world, statements, 500)
    assert large_rows > 10 * small_rows
    assert small == large, (small, large)
    # token lookup (3) + schools + classes page + classes count + course + school
    # + enrollments page + enrollments count + person + section
    assert large <= 14


def test_nested_first_is_applied_per_parent_in_sql(world: World, statements: list[str]) -> None:
    statements.clear()
    query = "{ classes(first: 1000) { nodes { id enrollments(first: 2) { nodes { id } } } } }"
    status, body = world.server.graphql(query, world.token)
    assert status == 200
    pages = [c["enrollments"]["nodes"] for c in body["data"]["classes"]["nodes"]]
    assert max(len(p) for p in pages) == 2
    # compiled (GATEWAY_EXECUTION=auto): one statement, each class's page a correlated
    # subquery cut by LIMIT; the resolvers: one batch of pages cut by ROW_NUMBER()
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    compiled = [s for s in reads if "enrollments.class_id = gw_p1.id" in s]
    if compiled:
        (statement,) = compiled
        assert "LIMIT" in statement.split("enrollments.class_id = gw_p1.id", 1)[1]
    else:
        window = [s for s in statements if "row_number() over" in s.lower()]
        assert window, "nested pages are cut by ROW_NUMBER() in SQL"


def test_nested_pages_continue_with_after(world: World) -> None:
    school = world.graph.ids("schools")[0]
    expected = sorted(c["id"] for c in world.graph.rows["classes"] if c["school_id"] == school)
    seen: list[str] = []
    after = None
    query = """query($id: ID!, $after: String) { school(id: $id) {
        classes(first: 2, after: $after) {
            edges { cursor node { id } } pageInfo { hasNextPage endCursor }
        }
    } }"""
    while True:
        _, body = world.server.graphql(query, world.token, {"id": school, "after": after})
        page = body["data"]["school"]["classes"]
        seen.extend(e["node"]["id"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected


def _error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ("first: -1", "`first` must be between 0 and 1000"),
        ("first: 1001", "`first` must be between 0 and 1000"),
        ('after: "not-a-cursor"', "`after`"),
        ('after: "azE6bm90LWEtdXVpZA"', "`after`"),
    ],
)
def test_bad_page_arguments_are_bad_user_input(world: World, arguments: str, fragment: str) -> None:
    status, body = world.server.graphql(
        f"{{ people({arguments}) {{ nodes {{ id }} }} }}", world.token
    )
    assert status == 200
    error = _error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert fragment in error["message"]
    assert body["data"] == {"people": None}


@pytest.mark.parametrize("arguments", ["first: -1", "first: 1001", 'after: "junk"'])
def test_a_bad_argument_inside_a_list_is_one_error_for_the_field(
    world: World, arguments: str
) -> None:
    # Every person's `schools` fails alike; a thousand identical errors (an app developer's
    # review) become one, its path without list indices, as a denied field's.
    query = f"{{ people(first: 5) {{ nodes {{ id schools({arguments}) {{ totalCount }} }} }} }}"
    status, body = world.server.graphql(query, world.token)
    assert status == 200
    error = _error(body)
    assert error["path"] == ["people", "nodes", "schools"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    nodes = body["data"]["people"]["nodes"]
    assert len(nodes) == 5
    assert all(node["schools"] is None and node["id"] for node in nodes)


def test_a_cursor_works_only_on_a_list_of_its_own_objects(world: World) -> None:
    _, body = world.server.graphql("{ schools(first: 1) { pageInfo { endCursor } } }", world.token)
    cursor = body["data"]["schools"]["pageInfo"]["endCursor"]
    query = "query($after: String) { people(after: $after) { nodes { id } } }"
    _, body = world.server.graphql(query, world.token, {"after": cursor})
    error = _error(body)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}
    assert "a cursor of a list of schools, not of people" in error["message"]
    # a cursor from a nested list of classes continues the root list of classes
    nested = """{ schools(first: 1) { nodes { classes(first: 1) { pageInfo { endCursor } } } } }"""
    _, body = world.server.graphql(nested, world.token)
    cursor = body["data"]["schools"]["nodes"][0]["classes"]["pageInfo"]["endCursor"]
    query = "query($after: String) { classes(first: 1, after: $after) { nodes { id } } }"
    status, body = world.server.graphql(query, world.token, {"after": cursor})
    assert status == 200
    assert "errors" not in body


def test_page_size_cap_is_configurable(
    tmp_path_factory: pytest.TempPathFactory, world: World
) -> None:
    url = str(world.server.app.state.settings.database_url)
    with LiveServer(Settings(database_url=url, max_page_size=10, default_page_size=3)) as small:
        _, body = small.graphql("{ people { nodes { id } } }", world.token)
        assert len(body["data"]["people"]["nodes"]) == 3
        _, body = small.graphql("{ people(first: 11) { nodes { id } } }", world.token)
        assert "between 0 and 10" in _error(body)["message"]


def test_lookup_by_id(world: World) -> None:
    person = world.graph.rows["people"][0]
    query = "query($id: ID!) { person(id: $id) { id firstName lastName email roles } }"
    _, body = world.server.graphql(query, world.token, {"id": person["id"]})
    assert body["data"]["person"] == {
        "id": person["id"],
        "firstName": person["first_name"],
        "lastName": person["last_name"],
        "email": person["email"],
        "roles": person["roles"],
    }


def test_lookup_of_a_random_uuid_is_null(world: World) -> None:
    query = "query($id: ID!) { person(id: $id) { id } node(id: $id) { id } }"
    _, body = world.server.graphql(query, world.token, {"id": str(uuid.uuid4())})
    assert body == {"data": {"person": None, "node": None}}


def test_lookup_accepts_uppercase_uuids(world: World) -> None:
    school = world.graph.ids("schools")[0]
    _, body = world.server.graphql(f'{{ school(id: "{school.upper()}") {{ id }} }}', world.token)
    assert body["data"]["school"] == {"id": school}


@pytest.mark.parametrize("field", ["person", "node", "school", "class"])
def test_a_malformed_id_is_bad_user_input(world: World, field: str) -> None:
    _, body = world.server.graphql(f'{{ {field}(id: "nope") {{ id }} }}', world.token)
    error = _error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not a UUID" in error["message"]
    assert error["path"] == [field]


def test_a_malformed_id_in_a_filter_is_bad_user_input(world: World) -> None:
    _, body = world.server.graphql(
        '{ classes(filter: {schoolIds: ["x"]}) { totalCount } }', world.token
    )
    error = _error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "filter.schoolIds" in error["message"]


@pytest.mark.parametrize(
    "query",
    [
        "query($s: String) { people(filter: {lastName: {equals: $s}}) { totalCount } }",
        "query($s: String) { people(filter: {lastName: {contains: $s}}) { totalCount } }",
        "query($s: String) { schools(filter: {name: {startsWith: $s}}) { totalCount } }",
        "query($s: String!) { classes(filter: {gradeLevels: [$s]}) { totalCount } }",
    ],
    ids=["equals", "contains", "startsWith", "gradeLevels"],
)
def test_a_nul_character_in_filter_text_is_bad_user_input(world: World, query: str) -> None:
    # PostgreSQL cannot compare text with U+0000; both engines must refuse it alike.
    _, body = world.server.graphql(query, world.token, {"s": "Sch\u0000ool"})
    error = _error(body)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter"}
    assert "NUL character" in error["message"]


@pytest.mark.parametrize(
    "query",
    [
        "query($s: String) { people(filter: {lastName: {equals: $s}}) { totalCount } }",
        "query($s: String) { people(filter: {lastName: {contains: $s}}) { totalCount } }",
        "query($s: String) { schools(filter: {name: {startsWith: $s}}) { totalCount } }",
    ],
    ids=["equals", "contains", "startsWith"],
)
def test_an_overlong_filter_text_is_bad_user_input(world: World, query: str) -> None:
    _, body = world.server.graphql(query, world.token, {"s": "%" * 60_000})
    error = _error(body)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter"}
    assert "60,000 characters long" in error["message"]
    assert "at most 1,000" in error["message"]


@pytest.mark.parametrize(
    ("moment", "matches"),
    [
        ("9999-12-31T23:59:59-14:00", None),
        ("0001-01-01T00:00:00+14:00", None),
        ("9999-12-31T23:59:59+14:00", 0),
        ("0001-01-01T00:00:00-14:00", "all"),
    ],
)
def test_updated_after_at_the_edges_of_time(world: World, moment: str, matches: Any) -> None:
    query = "query($t: DateTime) { schools(filter: {updatedAfter: $t}) { totalCount } }"
    code, body = world.server.graphql(query, world.token, {"t": moment})
    assert code == 200
    if matches is None:  # beyond year 9999 or before year 1 in UTC
        error = _error(body)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "filter.updatedAfter"}
        assert "outside the years 1 to 9999" in error["message"]
    else:
        expected = len(world.graph.ids("schools")) if matches == "all" else matches
        assert body["data"]["schools"]["totalCount"] == expected


def test_filters(world: World) -> None:
    rows = world.graph.rows
    teachers = {p["id"] for p in rows["people"] if "TEACHER" in p["roles"]}
    _, body = world.server.graphql(
        "{ people(first: 1000, filter: {roles: [TEACHER]}) { totalCount nodes { id roles } } }",
        world.token,
    )
    assert {n["id"] for n in body["data"]["people"]["nodes"]} == teachers
    assert body["data"]["people"]["totalCount"] == len(teachers)

    name = rows["people"][7]["first_name"]
    _, body = world.server.graphql(
        "query($n: String) { people(filter: {firstName: {equals: $n}}) { nodes { firstName } } }",
        world.token,
        {"n": name},
    )
    assert {n["firstName"] for n in body["data"]["people"]["nodes"]} == {name}

    _, body = world.server.graphql(
        '{ schools(filter: {name: {startsWith: "school 1"}}) { nodes { name } } }', world.token
    )
    assert [n["name"] for n in body["data"]["schools"]["nodes"]] == ["School 1"]

    # LIKE wildcards in user input are matched literally
    _, body = world.server.graphql(
        '{ schools(filter: {name: {contains: "%"}}) { totalCount } }', world.token
    )
    assert body["data"]["schools"]["totalCount"] == 0

    cutoff = "2026-06-01T00:00:00+00:00"
    expected = {e["id"] for e in rows["enrollments"] if e["updated_date"].isoformat() > cutoff}
    _, body = world.server.graphql(
        f'{{ enrollments(first: 1000, filter: {{updatedAfter: "{cutoff}"}}) {{ totalCount }} }}',
        world.token,
    )
    assert body["data"]["enrollments"]["totalCount"] == len(expected)

    primary = sum(1 for e in rows["enrollments"] if e["primary"])
    _, body = world.server.graphql(
        "{ enrollments(filter: {primary: true}) { totalCount } }", world.token
    )
    assert body["data"]["enrollments"]["totalCount"] == primary


def test_values_are_served_as_stored(world: World) -> None:
    school = world.graph.rows["schools"][2]
    query = """query($id: ID!) { school(id: $id) { id name gradeLevels createdDate
        identifiers { type value } properties address { street postalCode } } }"""
    _, body = world.server.graphql(query, world.token, {"id": school["id"]})
    got = body["data"]["school"]
    assert got["name"] == school["name"]
    assert got["gradeLevels"] == school["grade_levels"]
    assert got["identifiers"] == school["identifiers"]
    assert got["properties"] == school["properties"]
    assert got["address"] == {"street": school["address"]["street"], "postalCode": "62701"}
    assert got["createdDate"].startswith(school["created_date"].isoformat()[:19])


def _list_filters() -> list[tuple[str, str, str, str]]:
    """(connection, filter field, GraphQL list type, table of the ids) for every list filter."""
    from graphql import GraphQLInputObjectType, GraphQLList, get_named_type

    from gateway.graph.schema import schema

    query = schema._schema.query_type
    assert query is not None
    found = []
    for name, field in query.fields.items():
        argument = field.args.get("filter")
        if argument is None:
            continue
        input_type = get_named_type(argument.type)
        assert isinstance(input_type, GraphQLInputObjectType)
        for input_name, input_field in input_type.fields.items():
            of = input_field.type.of_type if hasattr(input_field.type, "of_type") else None
            if not isinstance(input_field.type, GraphQLList) and not isinstance(of, GraphQLList):
                continue
            item = get_named_type(input_field.type)
            found.append((name, input_name, f"[{item.name}!]", item.name))
    return found


def _long_list(world: World, connection: str, field: str, item: str) -> list[Any]:
    """`LONGEST_LIST` values for `field`, all distinct where the type allows it, one of them
    matching a real row where there is one to match."""
    from graphql import GraphQLEnumType

    from gateway.graph.schema import schema

    named = schema._schema.type_map[item]
    if isinstance(named, GraphQLEnumType):
        values = list(named.values)
        return [values[i % len(values)] for i in range(LONGEST_LIST)]
    if item == "String":
        return ["01"] + [f"grade-{i}" for i in range(LONGEST_LIST - 1)]
    tables = {
        "ids": connection,
        "schoolIds": "schools",
        "courseIds": "courses",
        "sessionIds": "sessions",
        "classIds": "classes",
        "sectionIds": "sections",
        "personIds": "people",
        "observerIds": "people",
        "targetIds": "people",
    }
    real = world.graph.ids(tables[field])[:1]
    return real + [str(uuid.UUID(int=i + 1)) for i in range(LONGEST_LIST - len(real))]


@pytest.mark.parametrize(
    ("connection", "field", "kind", "item"),
    _list_filters(),
    ids=[f"{c}.{f}" for c, f, _, _ in _list_filters()],
)
def test_list_filters_of_the_longest_accepted_length_work(
    world: World, connection: str, field: str, kind: str, item: str
) -> None:
    """About 1,000 values were a masked 500 on SQLite (its expression depth limit); every length
    GATEWAY_MAX_LIST_LENGTH accepts must work on each engine, and mean what a short list means."""
    values = _long_list(world, connection, field, item)
    query = f"query($v: {kind}) {{ {connection}(filter: {{{field}: $v}}) {{ totalCount }} }}"
    status, body = world.server.graphql(query, world.token, {"v": values})
    assert status == 200, body
    assert "errors" not in body, body
    # The same meaning in a few values: the distinct enum values, or the one id or grade level
    # that can match.
    short = list(dict.fromkeys(values)) if item not in ("ID", "String") else values[:1]
    status, expected = world.server.graphql(query, world.token, {"v": short})
    assert status == 200, expected
    assert body["data"][connection]["totalCount"] == expected["data"][connection]["totalCount"]
