"""The SELECTED closure (DESIGN §4 step 5) checked against a plain-Python oracle.

On generated data with two sources, for several target sets, everything a token can reach —
every page of every root connection, every nested edge of every visible object, lookups by id
and `node` of every id in the database — must be exactly the oracle's visible set.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.grant import Scope
from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, run_db
from tests.factories import Graph, make_integration, make_source
from tests.oracle import TABLES, Visible, visible

LOOKUPS = {
    "District": "district",
    "School": "school",
    "Session": "session",
    "Course": "course",
    "Class": "class",
    "Section": "section",
    "Person": "person",
    "Enrollment": "enrollment",
    "Agent": "agent",
}

Rows = dict[str, list[dict[str, Any]]]
Related = Callable[[Rows, str], set[str]]


def _fk(table: str, column: str) -> Related:
    return lambda rows, parent: {r["id"] for r in rows[table] if r[column] == parent}


def _link(table: str, parent: str, child: str) -> Related:
    return lambda rows, p: {r[child] for r in rows[table] if r[parent] == p}


def _one(table: str, column: str) -> Related:
    def related(rows: Rows, parent: str) -> set[str]:
        value = next(r[column] for r in rows[table] if r["id"] == parent)
        return {value} if value else set()

    return related


# (type, field) -> (child type, many?, which children the parent relates to before scope)
EDGES: dict[tuple[str, str], tuple[str, bool, Related]] = {
    ("District", "schools"): ("School", True, _fk("schools", "district_id")),
    ("District", "sessions"): ("Session", True, _fk("sessions", "district_id")),
    ("District", "people"): ("Person", True, _fk("people", "district_id")),
    ("School", "district"): ("District", False, _one("schools", "district_id")),
    ("School", "sessions"): ("Session", True, _fk("sessions", "school_id")),
    ("School", "courses"): ("Course", True, _fk("courses", "school_id")),
    ("School", "classes"): ("Class", True, _fk("classes", "school_id")),
    ("School", "people"): ("Person", True, _link("person_schools", "school_id", "person_id")),
    ("Session", "district"): ("District", False, _one("sessions", "district_id")),
    ("Session", "school"): ("School", False, _one("sessions", "school_id")),
    ("Course", "district"): ("District", False, _one("courses", "district_id")),
    ("Course", "school"): ("School", False, _one("courses", "school_id")),
    ("Course", "session"): ("Session", False, _one("courses", "session_id")),
    ("Course", "classes"): ("Class", True, _fk("classes", "course_id")),
    ("Class", "school"): ("School", False, _one("classes", "school_id")),
    ("Class", "course"): ("Course", False, _one("classes", "course_id")),
    ("Class", "sessions"): ("Session", True, _link("class_sessions", "class_id", "session_id")),
    ("Class", "sections"): ("Section", True, _fk("sections", "class_id")),
    ("Class", "enrollments"): ("Enrollment", True, _fk("enrollments", "class_id")),
    ("Class", "people"): ("Person", True, _link("enrollments", "class_id", "person_id")),
    ("Section", "class"): ("Class", False, _one("sections", "class_id")),
    ("Section", "enrollments"): ("Enrollment", True, _fk("enrollments", "section_id")),
    ("Person", "district"): ("District", False, _one("people", "district_id")),
    ("Person", "schools"): ("School", True, _link("person_schools", "person_id", "school_id")),
    ("Person", "enrollments"): ("Enrollment", True, _fk("enrollments", "person_id")),
    ("Person", "classes"): ("Class", True, _link("enrollments", "person_id", "class_id")),
    ("Person", "agents"): (
        "Agent",
        True,
        lambda rows, p: {
            a["id"] for a in rows["agents"] if p in (a["observer_id"], a["target_id"])
        },
    ),
    ("Enrollment", "person"): ("Person", False, _one("enrollments", "person_id")),
    ("Enrollment", "class"): ("Class", False, _one("enrollments", "class_id")),
    ("Enrollment", "section"): ("Section", False, _one("enrollments", "section_id")),
    ("Agent", "observer"): ("Person", False, _one("agents", "observer_id")),
    ("Agent", "target"): ("Person", False, _one("agents", "target_id")),
}


@dataclass
class Case:
    """One integration: its token and what the oracle says it sees."""

    name: str
    token: str
    expected: Visible


@dataclass
class World:
    server: LiveServer
    mine: Graph
    other: Graph
    cases: dict[str, Case]


def _target_sets(graph: Graph, rng: random.Random) -> dict[str, set[str] | None]:
    schools, courses, classes = graph.ids("schools"), graph.ids("courses"), graph.ids("classes")
    return {
        "all": None,
        "one-school": {schools[0]},
        "two-schools": set(schools[1:3]),
        "one-course": {courses[0]},
        "courses": set(rng.sample(courses, 3)),
        "one-class": {classes[0]},
        "classes": set(rng.sample(classes, 4)),
        "mixed": {schools[3], courses[1], classes[2], classes[5]},
    }


@pytest.fixture(scope="module", params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with fresh_database(request.param, tmp_path_factory.mktemp("scope"), "scope") as url:
        yield from _serve_world(url)


def _serve_world(url: str) -> Iterator[World]:
    """Fill the database at `url` and serve it."""

    async def build(engine: AsyncEngine) -> tuple[Graph, Graph, dict[str, Case]]:
        mine = await make_source(engine, 11, "Mine")
        other = await make_source(engine, 12, "Other")
        cases = {}
        for name, targets in _target_sets(mine, random.Random(3)).items():
            token = await make_integration(
                engine,
                mine.source.id,
                scope=Scope.ALL if targets is None else Scope.SELECTED,
                targets=sorted(targets or ()),
            )
            cases[name] = Case(name, token, visible(mine, targets))
        return mine, other, cases

    mine, other, cases = run_db(url, build)
    with LiveServer(Settings(database_url=url, max_aliases=10_000, max_cost=10**9)) as server:
        yield World(server, mine, other, cases)


CASES = [
    "all",
    "one-school",
    "two-schools",
    "one-course",
    "courses",
    "one-class",
    "classes",
    "mixed",
]


def _ok(server: LiveServer, query: str, token: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = server.graphql(query, token, variables)
    assert status == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def _all_pages(server: LiveServer, token: str, root: str, page: int) -> tuple[list[str], int]:
    ids: list[str] = []
    after = None
    total = -1
    while True:
        query = (
            f"query($after: String) {{ {root}(first: {page}, after: $after) "
            "{ totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"
        )
        data = _ok(server, query, token, {"after": after})[root]
        total = data["totalCount"]
        ids.extend(edge["node"]["id"] for edge in data["edges"])
        if data["edges"]:
            assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        if not data["pageInfo"]["hasNextPage"]:
            return ids, total
        after = data["pageInfo"]["endCursor"]


@pytest.mark.parametrize("case", CASES)
def test_root_connections_page_through_exactly_the_visible_set(world: World, case: str) -> None:
    expected = world.cases[case].expected
    for type_name, root in TABLES.items():
        ids, total = _all_pages(world.server, world.cases[case].token, root, page=7)
        assert len(ids) == len(set(ids)), f"{root}: duplicate ids across pages"
        assert ids == sorted(ids), f"{root}: pages are not in id order"
        assert set(ids) == expected.ids[type_name], f"{case}: {root}"
        assert total == len(expected.ids[type_name]), f"{case}: {root}.totalCount"


def _edge_selection(type_name: str) -> str:
    parts = []
    for (parent, field), (_, many, _) in EDGES.items():
        if parent != type_name:
            continue
        if many:
            parts.append(f"{field}(first: 1000) {{ totalCount nodes {{ id }} }}")
        else:
            parts.append(f"{field} {{ id }}")
    return " ".join(parts)


@pytest.mark.parametrize("case", CASES)
def test_nested_edges_show_only_visible_related_rows(world: World, case: str) -> None:
    expected = world.cases[case].expected
    rows = world.mine.rows
    for type_name, root in TABLES.items():
        query = f"{{ {root}(first: 1000) {{ nodes {{ id {_edge_selection(type_name)} }} }} }}"
        nodes = _ok(world.server, query, world.cases[case].token)[root]["nodes"]
        assert {n["id"] for n in nodes} == expected.ids[type_name]
        for node in nodes:
            for (parent, field), (child, many, related) in EDGES.items():
                if parent != type_name:
                    continue
                want = related(rows, node["id"]) & expected.ids[child]
                value = node[field]
                if many:
                    got = [n["id"] for n in value["nodes"]]
                    assert len(got) == len(set(got)), f"{type_name}.{field} repeats a row"
                    assert set(got) == want, f"{case}: {type_name}.{field} of {node['id']}"
                    assert value["totalCount"] == len(want)
                else:
                    got_one = {value["id"]} if value else set()
                    assert got_one == want, f"{case}: {type_name}.{field} of {node['id']}"


def _lookup_batches(ids: list[tuple[str, str]], size: int = 200) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@pytest.mark.parametrize("case", CASES)
def test_lookups_and_node_answer_only_for_visible_ids(world: World, case: str) -> None:
    expected = world.cases[case].expected
    everything = [
        (type_name, row_id)
        for graph in (world.mine, world.other)
        for type_name, table in TABLES.items()
        for row_id in graph.ids(table)
    ]
    for batch in _lookup_batches(everything):
        fields = []
        for index, (type_name, row_id) in enumerate(batch):
            fields.append(f'l{index}: {LOOKUPS[type_name]}(id: "{row_id}") {{ id }}')
            fields.append(f'n{index}: node(id: "{row_id}") {{ id __typename }}')
        data = _ok(world.server, "{ " + " ".join(fields) + " }", world.cases[case].token)
        for index, (type_name, row_id) in enumerate(batch):
            seen = row_id in expected.ids[type_name]
            assert (data[f"l{index}"] is not None) == seen, f"{case}: {type_name} {row_id}"
            node = data[f"n{index}"]
            assert (node is not None) == seen, f"{case}: node {type_name} {row_id}"
            if node is not None:
                assert node == {"id": row_id, "__typename": type_name}


def test_no_row_of_another_source_is_reachable(world: World) -> None:
    theirs = {row_id for table in TABLES.values() for row_id in world.other.ids(table)}
    for case in world.cases.values():
        assert not (case.expected.all() & theirs)
        for root in TABLES.values():
            ids, _ = _all_pages(world.server, case.token, root, page=1000)
            assert not (set(ids) & theirs), f"{case.name}: {root} leaked another source's rows"


def test_filters_apply_inside_the_scope(world: World) -> None:
    case = world.cases["one-school"]
    school = next(iter(world.mine.ids("schools")))
    query = "query($ids: [ID!]) { classes(filter: {schoolIds: $ids}) { totalCount nodes { id } } }"
    data = _ok(world.server, query, case.token, {"ids": world.mine.ids("schools")})["classes"]
    assert {n["id"] for n in data["nodes"]} == case.expected.ids["Class"]
    assert data["totalCount"] == len(case.expected.ids["Class"])
    del school


def test_ids_of_another_source_in_filters_find_nothing(world: World) -> None:
    case = world.cases["all"]
    query = "query($ids: [ID!]) { schools(filter: {ids: $ids}) { totalCount nodes { id } } }"
    data = _ok(world.server, query, case.token, {"ids": world.other.ids("schools")})["schools"]
    assert data == {"totalCount": 0, "nodes": []}


# root, filter field -> (the related type, which rows of the root relate to one related id)
RELATED_ID_FILTERS: dict[tuple[str, str], tuple[str, Related]] = {
    ("sessions", "schoolIds"): ("School", _fk("sessions", "school_id")),
    ("courses", "schoolIds"): ("School", _fk("courses", "school_id")),
    ("courses", "sessionIds"): ("Session", _fk("courses", "session_id")),
    ("classes", "schoolIds"): ("School", _fk("classes", "school_id")),
    ("classes", "courseIds"): ("Course", _fk("classes", "course_id")),
    ("classes", "sessionIds"): ("Session", _link("class_sessions", "session_id", "class_id")),
    ("sections", "classIds"): ("Class", _fk("sections", "class_id")),
    ("people", "schoolIds"): ("School", _link("person_schools", "school_id", "person_id")),
    ("people", "classIds"): ("Class", _link("enrollments", "class_id", "person_id")),
    ("enrollments", "classIds"): ("Class", _fk("enrollments", "class_id")),
    ("enrollments", "sectionIds"): ("Section", _fk("enrollments", "section_id")),
    ("enrollments", "personIds"): ("Person", _fk("enrollments", "person_id")),
    ("agents", "observerIds"): ("Person", _fk("agents", "observer_id")),
    ("agents", "targetIds"): ("Person", _fk("agents", "target_id")),
}
ROOT_TYPES = {table: type_name for type_name, table in TABLES.items()}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("root", "field"), list(RELATED_ID_FILTERS))
def test_filters_by_related_ids_match_only_through_visible_objects(
    world: World, case: str, root: str, field: str
) -> None:
    # A filter by an invisible school's id must find what a made-up id finds: nothing. Else
    # which visible people match would tell who belongs to a school the token cannot see.
    expected = world.cases[case].expected
    related_type, relates = RELATED_ID_FILTERS[(root, field)]
    mine = world.mine.ids(TABLES[related_type])
    rng = random.Random(f"{case}/{root}/{field}")
    ids = rng.sample(mine, min(len(mine), 25)) + world.other.ids(TABLES[related_type])[:3]
    aliases = " ".join(
        f'f{i}: {root}(first: 1000, filter: {{{field}: ["{id_}"]}}) {{ totalCount nodes {{ id }} }}'
        for i, id_ in enumerate(ids)
    )
    data = _ok(world.server, f"{{ {aliases} }}", world.cases[case].token)
    seen = expected.ids[ROOT_TYPES[root]]
    for i, id_ in enumerate(ids):
        related_visible = id_ in expected.ids[related_type]
        want = relates(world.mine.rows, id_) & seen if related_visible else set()
        got = data[f"f{i}"]
        assert {n["id"] for n in got["nodes"]} == want, (root, field, id_, related_visible)
        assert got["totalCount"] == len(want)
