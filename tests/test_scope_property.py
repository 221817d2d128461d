"""Random queries built from the schema (hypothesis-graphql), run with SELECTED tokens that lack
some permissions: no response ever holds an id outside the token's visible set, nor a value of a
field it was not granted."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import graphql
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.grant import Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.graph.schema import schema as graph_schema
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.factories import Graph, make_integration, make_source
from tests.oracle import visible
from tests.reporting import SUMMARY

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROOT_FIELDS = [name for name in graph_schema._schema.query_type.fields if name != "integration"]
EXAMPLES = 300
FIELD_SLUGS = frozenset(
    {
        "emails:read",
        "phones:read",
        "addresses:read",
        "demographics:read",
        "identifiers:read",
        "properties:read",
    }
)


@dataclass
class Token:
    token: str
    permissions: frozenset[str]
    visible_ids: set[str]


@dataclass
class World:
    server: LiveServer
    graph: Graph
    tokens: list[Token]
    all_ids: list[str]
    secrets: dict[str, set[str]]
    seen_fields: set[str] = field(default_factory=set)
    queries: int = 0


def _secrets(graph: Graph) -> dict[str, set[str]]:
    people = graph.rows["people"]
    return {
        "emails:read": {p["email"] for p in people},
        "phones:read": {p["phone"] for p in people} | {p["address"]["phone"] for p in people},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('prop') / 'gateway.db'}"
    rng = random.Random(99)

    async def build(engine: AsyncEngine) -> tuple[Graph, Graph, list[Token]]:
        mine = await make_source(engine, 31, "Mine", people=40, enrollments=80)
        other = await make_source(engine, 32, "Other", people=40, enrollments=80)
        tokens = []
        schools, courses, classes = mine.ids("schools"), mine.ids("courses"), mine.ids("classes")
        for targets in (
            {schools[0]},
            {courses[0], courses[3]},
            {classes[1], classes[2]},
            {schools[2], courses[1], classes[6]},
        ):
            # two sensitive-field permissions, and for half the tokens one type permission too
            dropped = set(rng.sample(sorted(FIELD_SLUGS), 2))
            if len(tokens) % 2:
                dropped.add(rng.choice(sorted(ALL_SLUGS - FIELD_SLUGS)))
            permissions = frozenset(ALL_SLUGS - dropped)
            token = await make_integration(
                engine,
                mine.source.id,
                scope=Scope.SELECTED,
                targets=sorted(targets),
                permissions=sorted(permissions),
            )
            tokens.append(Token(token, permissions, visible(mine, targets).all()))
        return mine, other, tokens

    mine, other, tokens = run_db(url, build)
    all_ids = [
        row_id
        for graph in (mine, other)
        for rows in graph.rows.values()
        for row in rows
        for row_id in [row.get("id")]
        if row_id
    ]
    settings_ = Settings(database_url=url, max_cost=10**9, max_aliases=10_000, max_depth=50)
    with LiveServer(settings_) as server:
        yield World(server, mine, tokens, all_ids, _secrets(mine))
    SUMMARY.append(
        f"property test (hypothesis-graphql): {world_stats['queries']} generated queries, "
        f"{len(world_stats['fields'])} distinct fields covered, "
        f"{world_stats['with_ids']} returned ids"
    )


world_stats: dict[str, Any] = {"queries": 0, "fields": set(), "with_ids": 0, "codes": []}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _fields(document: str) -> set[str]:
    type_info = graphql.TypeInfo(graph_schema._schema)
    seen: set[str] = set()

    class Collect(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                seen.add(f"{parent.name}.{node.name.value}")

    graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(type_info, Collect()))
    return seen


class _Tame(graphql.Visitor):
    """Random cursors are simply invalid and random `first` values mostly out of range: drop
    `after` and keep `first` small, so that queries reach data instead of BAD_USER_INPUT."""

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
        if node.name.value == "after":
            return graphql.REMOVE
        if node.name.value == "first":
            value = node.value
            small = int(value.value) % 5 + 1 if isinstance(value, graphql.IntValueNode) else 3
            return graphql.ArgumentNode(
                name=node.name, value=graphql.IntValueNode(value=str(small))
            )
        return None


class _WithIds(graphql.Visitor):
    """Select `id` wherever the type has one, so every object reached shows who it is."""

    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info

    def leave_selection_set(self, node: graphql.SelectionSetNode, *_: Any) -> Any:
        parent = self.type_info.get_parent_type()
        fields = getattr(parent, "fields", None)
        if not fields or "id" not in fields:
            return None
        if any(isinstance(s, graphql.FieldNode) and s.name.value == "id" for s in node.selections):
            return None
        id_field = graphql.FieldNode(name=graphql.NameNode(value="id"), arguments=(), directives=())
        return graphql.SelectionSetNode(selections=(*node.selections, id_field))


def _tame(query: str) -> str:
    document = graphql.visit(graphql.parse(query), _Tame())
    type_info = graphql.TypeInfo(graph_schema._schema)
    document = graphql.visit(document, graphql.TypeInfoVisitor(type_info, _WithIds(type_info)))
    return graphql.print_ast(document)


def _ids(world_ids: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return st.sampled_from(world_ids).map(lambda v: graphql.StringValueNode(value=v))


@pytest.fixture(scope="module")
def strategy(world: World) -> st.SearchStrategy[str]:
    return hypothesis_graphql.queries(
        graph_schema.as_str(),
        fields=ROOT_FIELDS,
        custom_scalars={
            "ID": _ids(world.all_ids),
            "DateTime": st.sampled_from(["2026-03-01T00:00:00Z", "2026-09-01T00:00:00+00:00"]).map(
                lambda v: graphql.StringValueNode(value=v)
            ),
        },
        allow_x00=False,
    )


def test_random_queries_never_leak(world: World, strategy: st.SearchStrategy[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(query=strategy, which=st.integers(min_value=0, max_value=len(world.tokens) - 1))
    def check(query: str, which: int) -> None:
        query = _tame(query)
        token = world.tokens[which]
        status, body = world.server.graphql(query, token.token)
        world_stats["queries"] += 1
        world_stats["fields"] |= _fields(query)
        assert status in (200, 400), body
        for error in body.get("errors", []):
            assert error["extensions"]["code"] in {
                "FORBIDDEN",
                "BAD_USER_INPUT",
                "QUERY_TOO_COMPLEX",
            }, error
        data = body.get("data") or {}
        strings = set(_strings(data))
        ids = {s for s in strings if UUID.fullmatch(s)}
        world_stats["with_ids"] += bool(ids)
        world_stats["codes"].extend(e["extensions"]["code"] for e in body.get("errors", []))
        leaked = ids - token.visible_ids
        assert not leaked, f"ids outside the scope: {sorted(leaked)[:3]} for {query}"
        for slug, values in world.secrets.items():
            if slug not in token.permissions:
                assert not (strings & values), f"value of a {slug} field leaked: {query}"
        if "properties:read" not in token.permissions:
            assert "raw" not in _json_keys(data), f"properties leaked: {query}"

    check()
    # The check can only fail if queries reach data: most of them must return some ids.
    assert world_stats["with_ids"] >= world_stats["queries"] // 3, (
        world_stats["with_ids"],
        Counter(world_stats["codes"]),
    )


def _json_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_json_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_json_keys(v) for v in value)) if value else set()
    return set()
