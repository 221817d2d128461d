"""The Graph API over the demo data, with the demo's own tokens (issue: foundation + Graph API):
every root connection pages through its whole table, nested edges agree with the foreign keys
both ways, lookups work, and the inactive, disabled and scheduled tokens are refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import models
from gateway.demo import load_demo
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.oracle import TABLES


@dataclass
class World:
    server: LiveServer
    tokens: dict[str, str]
    ids: dict[str, list[str]]
    links: dict[str, set[tuple[str, str]]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> tuple[dict[str, str], dict[str, list[str]], Any]:
        demo = await load_demo(engine, people=300)
        tokens = {i.name: i.token for i in demo.integrations}
        ids: dict[str, list[str]] = {}
        links: dict[str, set[tuple[str, str]]] = {}
        async with engine.connect() as conn:
            for table in TABLES.values():
                t = models.SQLModel.metadata.tables[table]
                ids[table] = sorted((await conn.execute(sa.select(t.c.id))).scalars())
            classes = models.table_of(models.Class)
            enrollments = models.table_of(models.Enrollment)
            for name, statement in (
                ("class.school", sa.select(classes.c.id, classes.c.school_id)),
                ("enrollment.class", sa.select(enrollments.c.id, enrollments.c.class_id)),
            ):
                links[name] = {(a, b) for a, b in (await conn.execute(statement)).all()}
        return tokens, ids, links

    tokens, ids, links = run_db(url, build)
    # whole-table nested pages cost more than the default limit allows
    with LiveServer(Settings(database_url=url, max_cost=10**7)) as server:
        yield World(server, tokens, ids, links)


def _ok(world: World, query: str, token: str, variables: dict[str, Any] | None = None) -> Any:
    status, body = world.server.graphql(query, token, variables)
    assert status == 200, body
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize("root", list(TABLES.values()))
def test_every_root_connection_pages_through_its_table(world: World, root: str) -> None:
    token = world.tokens["all"]
    seen: list[str] = []
    after = None
    total = None
    while True:
        query = (
            f"query($after: String) {{ {root}(first: 97, after: $after) "
            "{ totalCount nodes { id } pageInfo { hasNextPage endCursor } } }"
        )
        page = _ok(world, query, token, {"after": after})[root]
        total = page["totalCount"]
        seen.extend(n["id"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))
    assert seen == world.ids[root]
    assert total == len(world.ids[root])


def test_nested_edges_agree_with_foreign_keys_both_ways(world: World) -> None:
    token = world.tokens["all"]
    data = _ok(
        world,
        "{ schools { nodes { id classes(first: 1000) { nodes { id school { id } } } } } }",
        token,
    )
    down = {(c["id"], s["id"]) for s in data["schools"]["nodes"] for c in s["classes"]["nodes"]}
    up = {
        (c["id"], c["school"]["id"])
        for s in data["schools"]["nodes"]
        for c in s["classes"]["nodes"]
    }
    assert down == up == world.links["class.school"]

    data = _ok(
        world,
        "{ classes(first: 1000) { nodes { id "
        "enrollments(first: 1000) { nodes { id class { id } } } } } }",
        token,
    )
    pairs = {
        (e["id"], c["id"]) for c in data["classes"]["nodes"] for e in c["enrollments"]["nodes"]
    }
    back = {
        (e["id"], e["class"]["id"])
        for c in data["classes"]["nodes"]
        for e in c["enrollments"]["nodes"]
    }
    assert pairs == back == world.links["enrollment.class"]


def test_lookup_by_id_returns_the_object(world: World) -> None:
    token = world.tokens["all"]
    person = world.ids["people"][17]
    data = _ok(world, f'{{ person(id: "{person}") {{ id }} node(id: "{person}") {{ id }} }}', token)
    assert data == {"person": {"id": person}, "node": {"id": person}}


@pytest.mark.parametrize(
    ("name", "status"),
    [("inactive", "INACTIVE"), ("disabled", "DISABLED"), ("scheduled", "INACTIVE")],
)
def test_demo_tokens_that_may_not_read(world: World, name: str, status: str) -> None:
    code, body = world.server.graphql("{ schools { nodes { id } } }", world.tokens[name])
    assert code == 403
    extensions = body["errors"][0]["extensions"]
    # the scheduled one also says when it starts
    assert ("startDate" in extensions) is (name == "scheduled")
    extensions.pop("startDate", None)
    assert extensions == {"code": "INVALID_INTEGRATION_STATE", "status": status}
    assert _ok(world, "{ integration { status } }", world.tokens[name]) == {
        "integration": {"status": status}
    }


def test_selected_demo_tokens_see_less(world: World) -> None:
    everything = len(world.ids["people"])
    for name in ("selected-schools", "selected-courses", "selected-classes"):
        data = _ok(world, "{ people { totalCount } classes { totalCount } }", world.tokens[name])
        assert 0 < data["people"]["totalCount"] < everything, name
        assert 0 < data["classes"]["totalCount"] < len(world.ids["classes"]), name
