"""The change feed, case by case: what writes events, what an integration reads of them, the
cursor, retention and prune (the replay property test is `test_events_replay.py`)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import models
from gateway.access import views
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin import service
from gateway.coltypes import utcnow
from gateway.db import write_transaction
from gateway.errors import ValidationFailed
from gateway.events import feed
from gateway.settings import Settings
from tests.conftest import LiveServer, run_db
from tests.test_events_replay import EVENTS, assert_replay_matches, read_feed, replay
from tests.test_views import District, Run, _import

REPO = Path(__file__).resolve().parent.parent
EVENT_TABLE = models.table_of(models.Event)
EVERYTHING = frozenset(ALL_SLUGS)

Make = Callable[..., LiveServer]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """A generated OneRoster district, imported by the first `setup` call."""
    return Run(District.generate(7), "Feed", (tmp_path / f"f{n}" for n in itertools.count()))


async def _first_school(engine: AsyncEngine, source_id: str) -> str:
    schools = models.table_of(models.School)
    async with engine.connect() as conn:
        query = sa.select(schools.c.id).where(schools.c.source_id == source_id)
        return str((await conn.execute(query.order_by(schools.c.id))).scalars().first())


def _setup(
    url: str,
    run: Run,
    *,
    scope: Scope = Scope.ALL,
    permissions: frozenset[str] = EVERYTHING,
    status: IntegrationStatus = IntegrationStatus.ACTIVE,
) -> tuple[str, str]:
    """Import the district and create one integration (SELECTED: the first school); returns
    its id and token."""

    async def body(engine: AsyncEngine) -> tuple[str, str]:
        await _import(engine, run, run.district.files, "bulk")
        targets = [await _first_school(engine, run.source_id)] if scope is Scope.SELECTED else []
        async with write_transaction(engine) as conn:
            created = await service.create_integration(
                conn,
                source_id=run.source_id,
                scope=scope,
                permissions=sorted(permissions),
                targets=targets,
                status=status,
            )
        return created.id, created.token

    return run_db(url, body)


def _update(url: str, integration_id: str, **changes: Any) -> None:
    async def body(engine: AsyncEngine) -> None:
        async with write_transaction(engine) as conn:
            await service.update_integration(
                conn, integration_id, service.IntegrationChanges(**changes)
            )

    run_db(url, body)


def _stored_events(url: str, integration_id: str) -> int:
    async def body(engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(EVENT_TABLE.c.integration_id == integration_id)
            return int((await conn.execute(query)).scalar_one())

    return run_db(url, body)


def _gql(server: LiveServer, token: str, query: str, **variables: Any) -> dict[str, Any]:
    _, body = server.graphql(query, token, variables)
    return body


LISTS = "{ %s { totalCount } }"


def test_the_first_materialization_is_created_for_everything_visible(
    db_url: str, run: Run, live_server: Make
) -> None:
    integration, token = _setup(db_url, run, scope=Scope.SELECTED)
    with live_server() as server:
        events = read_feed(server, token)
        assert {e["type"] for e in events} == {"CREATED"}
        by_type = Counter(e["targetType"] for e in events)
        for root, target in [("schools", "SCHOOL"), ("people", "PERSON"), ("classes", "CLASS")]:
            shown = _gql(server, token, LISTS % root)["data"][root]["totalCount"]
            assert by_type[target] == shown > 0
        total = _gql(server, token, "{ events { totalCount } }")["data"]["events"]["totalCount"]
        assert total == len(events) == _stored_events(db_url, integration)
        assert_replay_matches(server, token, EVERYTHING, "the first materialization")


def test_retargeting_deletes_what_leaves_the_view_with_its_last_data(
    db_url: str, run: Run, live_server: Make
) -> None:
    integration, token = _setup(db_url, run, scope=Scope.SELECTED)
    with live_server() as server:
        before = replay(read_feed(server, token))
        cursor = _gql(server, token, "{ events(first: 1000) { pageInfo { endCursor } } }")
        after = cursor["data"]["events"]["pageInfo"]["endCursor"]
        schools = models.table_of(models.School)

        async def other_school(engine: AsyncEngine) -> str:
            async with engine.connect() as conn:
                query = sa.select(schools.c.id).where(schools.c.source_id == run.source_id)
                return str((await conn.execute(query.order_by(schools.c.id.desc()))).scalar())

        _update(db_url, integration, targets=[run_db(db_url, other_school)])
        new = read_feed(server, token, after)
        now = replay(read_feed(server, token))
        deleted = {
            (e["targetType"], e["targetId"]): e["data"] for e in new if e["type"] == "DELETED"
        }
        created = {(e["targetType"], e["targetId"]) for e in new if e["type"] == "CREATED"}
        assert set(deleted) == set(before) - set(now)
        assert created == set(now) - set(before)
        assert deleted  # the first school and its classes left the view
        for key, data in deleted.items():  # the last state it could see
            assert {k: v for k, v in data.items() if k not in ("schoolIds", "sessionIds")} == {
                k: v for k, v in before[key].items() if k not in ("schoolIds", "sessionIds")
            }
        assert_replay_matches(server, token, EVERYTHING, "a retarget")


def test_denied_fields_are_left_out_and_unreadable_types_hidden(
    db_url: str, run: Run, live_server: Make
) -> None:
    some = frozenset({"organizations:read", "enrollments:read"})
    integration, token = _setup(db_url, run, permissions=some)
    with live_server() as server:
        events = read_feed(server, token)
        assert {e["targetType"] for e in events} == {
            "DISTRICT", "SCHOOL", "COURSE", "CLASS", "ENROLLMENT"
        }  # fmt: skip
        assert all("properties" not in e["data"] for e in events)
        enrollment = next(e["data"] for e in events if e["targetType"] == "ENROLLMENT")
        assert "personId" not in enrollment  # people:read is not granted
        assert enrollment["classId"] is not None
        course = next(e["data"] for e in events if e["targetType"] == "COURSE")
        assert "sessionId" not in course
        assert_replay_matches(server, token, some, "a partial grant")
        # Granting people:read creates the people, and the references to them.
        _update(db_url, integration, permissions=sorted(some | {"people:read"}))
        assert_replay_matches(server, token, some | {"people:read"}, "a new permission")
        # Revoking properties:read after a grant hides the old values too.
        _update(db_url, integration, permissions=sorted(EVERYTHING))
        assert any("properties" in e["data"] for e in read_feed(server, token))
        _update(db_url, integration, permissions=sorted(EVERYTHING - {"properties:read"}))
        assert all("properties" not in e["data"] for e in read_feed(server, token))
        assert_replay_matches(server, token, EVERYTHING - {"properties:read"}, "a revoke")


def test_taking_a_type_away_deletes_what_the_app_holds_of_it_and_giving_it_back_creates_it(
    db_url: str, run: Run, live_server: Make
) -> None:
    # An app that follows the feed must drop the people it may no longer read: each gets a
    # DELETED event it can read, with the id alone (found by an app developer's review: the feed
    # said nothing, and the copy kept every person).
    integration, token = _setup(db_url, run, scope=Scope.SELECTED)
    with live_server() as server:
        first = read_feed(server, token)
        copy = replay(first)
        people = {key for key in copy if key[0] == "PERSON"}
        assert people
        end = _gql(server, token, "{ events(first: 1000) { pageInfo { endCursor } } }")
        after = end["data"]["events"]["pageInfo"]["endCursor"]
        _update(db_url, integration, permissions=sorted(EVERYTHING - {"people:read"}))
        new = read_feed(server, token, after)
        deleted = [e for e in new if e["type"] == "DELETED" and e["targetType"] == "PERSON"]
        assert {("PERSON", e["targetId"]) for e in deleted} == people
        assert all(e["data"] == {"id": e["targetId"]} for e in deleted)
        assert not any(e["targetType"] == "PERSON" and e["type"] != "DELETED" for e in new)
        for event in new:  # what an app following the feed does
            key = (event["targetType"], event["targetId"])
            if event["type"] == "DELETED":
                copy.pop(key, None)
            else:
                copy[key] = event["data"]
        assert not any(key[0] == "PERSON" for key in copy)
        assert_replay_matches(server, token, EVERYTHING - {"people:read"}, "people taken away")
        end = _gql(server, token, "{ events(first: 1000) { pageInfo { endCursor } } }")
        after = end["data"]["events"]["pageInfo"]["endCursor"]
        _update(db_url, integration, permissions=sorted(EVERYTHING))
        again = read_feed(server, token, after)
        created = {("PERSON", e["targetId"]) for e in again if e["type"] == "CREATED"}
        assert created == people
        assert_replay_matches(server, token, EVERYTHING, "people given back")


def test_a_feed_of_the_release_before_shows_no_id_of_a_type_never_granted(
    any_db_url: str, run: Run
) -> None:
    # The release before followed every type in the feed whatever the permissions, and hid
    # the unreadable ones when read. Read by this release, its remembered people would have
    # been deleted for an integration without people:read at the next sync, and listed (the
    # ids of every person), as would its DELETED events of people removed at the source (a
    # security review).
    integration, token = _setup(any_db_url, run, permissions=EVERYTHING - {"people:read"})
    people = models.table_of(models.Person)
    states = models.table_of(models.EventState)
    feeds = models.table_of(models.EventFeed)

    async def as_the_release_before(engine: AsyncEngine) -> int:
        async with write_transaction(engine) as conn:
            ids = list(
                (
                    await conn.execute(
                        sa.select(people.c.id).where(people.c.source_id == run.source_id)
                    )
                ).scalars()
            )
            await conn.execute(
                states.insert(),
                [
                    {"integration_id": integration, "kind": "people", "id": i, "digest": "old"}
                    | {"data": {"id": i}}
                    for i in ids[1:]
                ],
            )
            gone = {"integration_id": integration, "type": "DELETED", "target_type": "PERSON"}
            await conn.execute(
                EVENT_TABLE.insert().values(
                    **gone, target_id=ids[0], data={"id": ids[0], "firstName": "Gone"}
                )
            )
            await conn.execute(
                feeds.update()
                .where(feeds.c.integration_id == integration)
                .values(follows_permissions=None)
            )
        async with write_transaction(engine) as conn:
            done = await feed.refresh_source(conn, run.source_id)  # as an import ends
        return sum(done.counts.values())

    assert run_db(any_db_url, as_the_release_before) == 0
    with LiveServer(Settings(database_url=any_db_url)) as server:
        events = read_feed(server, token)
        assert events
        assert not [e for e in events if e["targetType"] == "PERSON"]


def test_a_disabled_integration_accumulates_nothing_and_enabling_writes_one_diff(
    db_url: str, run: Run, live_server: Make
) -> None:
    integration, token = _setup(db_url, run)
    _update(db_url, integration, status=IntegrationStatus.DISABLED)
    written = _stored_events(db_url, integration)
    run_db(db_url, lambda engine: _import(engine, run, run.district.drop_class(0), "bulk"))
    run_db(db_url, lambda engine: _import(engine, run, run.district.move_student(1), "bulk"))
    assert _stored_events(db_url, integration) == written
    _update(db_url, integration, status=IntegrationStatus.ACTIVE)
    assert _stored_events(db_url, integration) > written
    with live_server() as server:
        assert_replay_matches(server, token, EVERYTHING, "enabling")


def test_an_inactive_integration_accumulates_events_but_cannot_read_them(
    db_url: str, run: Run, live_server: Make
) -> None:
    integration, token = _setup(db_url, run, status=IntegrationStatus.INACTIVE)
    assert _stored_events(db_url, integration) > 0
    with live_server() as server:
        status, body = server.graphql("{ events { nodes { id } } }", token)
        assert status == 403
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INTEGRATION_STATE"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        pytest.param('after: "nonsense"', "is not a cursor of `events`", id="garbage-cursor"),
        pytest.param(
            'after: "azI6c2Nob29sczo5ZjA0ZjA0Zi0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA"',
            "is not a cursor of `events`",
            id="a-schools-cursor",
        ),
        pytest.param(
            # e1:events:<an id past the 64-bit range the events table holds>
            'after: "ZTE6ZXZlbnRzOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"',
            "is not a cursor of `events`",
            id="cursor-past-64-bits",
        ),
        pytest.param(
            'filter: {after: "0001-01-01T00:00:00+05:00"}',
            "outside the years 1 to 9999",
            id="after-before-year-1-in-utc",
        ),
        pytest.param(
            'filter: {after: "9999-12-31T23:59:59-05:00"}',
            "outside the years 1 to 9999",
            id="after-past-year-9999-in-utc",
        ),
        pytest.param(
            'after: "2026-01-20T00:00:00Z"',
            "`filter: {after:",
            id="a-date-as-cursor-points-to-the-date-filter",
        ),
        pytest.param("first: 5000", "between 0 and 1000", id="first-too-large"),
        pytest.param("first: -1", "between 0 and 1000", id="first-negative"),
    ],
)
def test_bad_arguments_are_bad_user_input(
    db_url: str, run: Run, live_server: Make, arguments: str, says: str
) -> None:
    _, token = _setup(db_url, run)
    with live_server() as server:
        status, body = server.graphql(f"{{ events({arguments}) {{ nodes {{ id }} }} }}", token)
        assert status == 200
        assert body["data"] == {"events": None}
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert says in body["errors"][0]["message"]


def test_pages_follow_each_other_and_filters_narrow(
    db_url: str, run: Run, live_server: Make
) -> None:
    _, token = _setup(db_url, run)
    with live_server() as server:
        everything = read_feed(server, token)
        seen: list[str] = []
        after = None
        while True:
            page = _gql(server, token, EVENTS.replace("1000", "7"), after=after)["data"]["events"]
            seen += [e["id"] for e in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [e["id"] for e in everything]
        query = """query ($f: EventFilter) { events(first: 1000, filter: $f) {
            totalCount nodes { targetType } } }"""
        narrowed = _gql(server, token, query, f={"targetTypes": ["CLASS", "AGENT"]})
        kinds = [e["targetType"] for e in narrowed["data"]["events"]["nodes"]]
        assert set(kinds) == {"CLASS", "AGENT"}
        assert narrowed["data"]["events"]["totalCount"] == len(kinds)
        later = (utcnow() + timedelta(minutes=1)).isoformat()
        none = _gql(server, token, query, f={"after": later})["data"]["events"]
        assert none == {"totalCount": 0, "nodes": []}


def _gateway(url: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "GATEWAY_DATABASE_URL": url, "PYTHONPATH": str(REPO), **env}
    return subprocess.run(  # noqa: S603  # our own interpreter and arguments
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prune_removes_old_events_and_an_expired_cursor_asks_for_a_full_sync(
    db_url: str, run: Run, live_server: Make, tmp_path: Path
) -> None:
    integration, token = _setup(db_url, run)
    with live_server() as server:
        first = _gql(server, token, "{ events(first: 3) { pageInfo { endCursor } } }")
        old_cursor = first["data"]["events"]["pageInfo"]["endCursor"]
    run_db(db_url, lambda engine: _import(engine, run, run.district.drop_class(0), "bulk"))

    async def age(engine: AsyncEngine) -> int:  # the first materialization is 40 days old
        async with write_transaction(engine) as conn:
            first_id = sa.select(sa.func.min(EVENT_TABLE.c.id)).scalar_subquery()
            created = sa.select(EVENT_TABLE.c.date).where(EVENT_TABLE.c.id == first_id)
            when = (await conn.execute(created)).scalar_one()
            aged = await conn.execute(
                EVENT_TABLE.update()
                .where(EVENT_TABLE.c.date == when)
                .values(date=when - timedelta(days=40))
            )
            return int(aged.rowcount)

    aged = run_db(db_url, age)
    total = _stored_events(db_url, integration)
    assert 3 < aged < total
    kept = _gateway(
        db_url, tmp_path, "events", "prune", "--json", GATEWAY_EVENT_RETENTION_DAYS="41"
    )
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout) == {"deleted": 0, "retentionDays": 41}
    pruned = _gateway(db_url, tmp_path, "events", "prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout) == {"deleted": aged, "retentionDays": 30}
    assert _stored_events(db_url, integration) == total - aged
    with live_server() as server:
        status, body = server.graphql(EVENTS, token, {"after": old_cursor})
        assert status == 200
        error = body["errors"][0]
        assert error["extensions"] == {
            "code": "BAD_USER_INPUT",
            "argument": "after",
            "fullSyncRequired": True,
        }
        assert "full sync" in error["message"]
        remaining = read_feed(server, token)
        assert len(remaining) == total - aged
        last = _gql(server, token, "{ events(first: 1000) { pageInfo { endCursor } } }")
        end = last["data"]["events"]["pageInfo"]["endCursor"]
        assert read_feed(server, token, end) == []


def test_a_failed_import_writes_no_events(any_db_url: str, run: Run) -> None:
    integration, _ = _setup(any_db_url, run)
    before = _stored_events(any_db_url, integration)
    broken = run.district.drop_class(0)
    broken["enrollments"].append({**broken["enrollments"][0], "classSourcedId": "nowhere"})
    with pytest.raises(ValidationFailed):
        run_db(any_db_url, lambda engine: _import(engine, run, broken, "bulk"))
    assert _stored_events(any_db_url, integration) == before


def test_destroying_an_integration_removes_its_feed(any_db_url: str, run: Run) -> None:
    integration, _ = _setup(any_db_url, run)

    async def destroy(engine: AsyncEngine) -> list[int]:
        async with write_transaction(engine) as conn:
            await service.destroy_integration(conn, integration)
        counts = []
        async with engine.connect() as conn:
            for model in (models.Event, models.EventState, models.EventFeed):
                table = models.table_of(model)
                query = sa.select(sa.func.count()).where(table.c.integration_id == integration)
                counts.append(int((await conn.execute(query)).scalar_one()))
        return counts

    assert run_db(any_db_url, destroy) == [0, 0, 0]


def test_a_database_from_before_the_feed_gets_each_first_materialization_when_opened(
    any_db_url: str, run: Run
) -> None:
    integration, _ = _setup(any_db_url, run)
    written = _stored_events(any_db_url, integration)

    async def drop(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:  # as an older version left it: no feed tables
            for model in (models.Event, models.EventState, models.EventFeed):
                await conn.execute(sa.text(f"DROP TABLE {models.table_of(model).name}"))

    run_db(any_db_url, drop)
    assert _stored_events(any_db_url, integration) == written  # opened again: written again


def _objects(server: LiveServer, token: str) -> dict[str, Any]:
    """Every object the Graph API shows the integration, as the example keeps it."""
    found = {}
    lists = " ".join(f"{root}: {root}(first: 1000) {{ nodes {{ id updatedDate }} }}" for root in [
        "districts", "schools", "sessions", "courses", "classes", "sections", "people",
        "enrollments", "agents",
    ])  # fmt: skip
    data = _gql(server, token, f"{{ {lists} }}")["data"]
    targets = ["DISTRICT", "SCHOOL", "SESSION", "COURSE", "CLASS", "SECTION", "PERSON"]
    for target, root in zip([*targets, "ENROLLMENT", "AGENT"], data, strict=True):
        for node in data[root]["nodes"]:
            found[f"{target}:{node['id']}"] = node
    return found


def test_the_readme_sync_example_keeps_a_copy_equal_to_the_graph(
    db_url: str, run: Run, live_server: Make, tmp_path: Path
) -> None:
    _, token = _setup(db_url, run)
    state = tmp_path / "state.json"
    example = [sys.executable, str(REPO / "examples" / "sync.py")]
    with live_server() as server:

        def sync() -> str:
            done = subprocess.run(  # noqa: S603  # our own interpreter and script
                [*example, f"{server.url}/graphql", token, str(state)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            return done.stdout

        assert sync().startswith("full sync (no saved state)")
        assert json.loads(state.read_text())["objects"] == _objects(server, token)
        run_db(db_url, lambda engine: _import(engine, run, run.district.move_student(2), "bulk"))
        run_db(db_url, lambda engine: _import(engine, run, run.district.drop_class(1), "bulk"))
        out = sync()
        assert out.startswith("applied ")
        assert not out.startswith("applied 0 ")
        assert json.loads(state.read_text())["objects"] == _objects(server, token)


def test_the_readme_sync_walkthrough_on_the_demo_applies_a_change(
    db_url: str, live_server: Make, tmp_path: Path
) -> None:
    """The README's walkthrough as written: the demo, a full sync with the `selected-schools`
    token, an administrator widening that integration with the CLI, then a sync that applies
    the events it caused. (The demo source takes no OneRoster import, so an import cannot be
    the walkthrough's change: it would leave every demo feed as it was.)"""
    from gateway.demo import load_demo

    demo = run_db(db_url, lambda engine: load_demo(engine, people=40))
    chosen = next(i for i in demo.integrations if i.name == "selected-schools")
    assert chosen.token is not None
    state = tmp_path / "state.json"
    with live_server() as server:

        def sync() -> str:
            done = subprocess.run(  # noqa: S603  # our own interpreter and script
                [
                    sys.executable,
                    str(REPO / "examples" / "sync.py"),
                    f"{server.url}/graphql",
                    str(chosen.token),
                    str(state),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            return done.stdout

        assert sync().startswith("full sync (no saved state)")
        listed = _gateway(db_url, tmp_path, "integrations", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        found = json.loads(listed.stdout)["integrations"]
        integration_id = next(i["id"] for i in found if i["name"] == "selected-schools")
        widened = _gateway(
            db_url, tmp_path, "integrations", "update", integration_id, "--scope", "all"
        )
        assert widened.returncode == 0, widened.stderr
        out = sync()
        assert out.startswith("applied "), out
        assert not out.startswith("applied 0 "), out
        assert json.loads(state.read_text())["objects"] == _objects(server, chosen.token)


def test_what_an_import_can_touch_spreads_through_the_references() -> None:
    gone = feed.dirty(feed.Changes(deleted={"schools": 1}), views.Refreshed())
    # Classes go with their school (a cascade the import does not count), and with them their
    # sections and enrollments; people lose the school from their `schoolIds`.
    assert {"schools", "classes", "sections", "enrollments", "people"} <= gone
    assert "districts" not in gone
    renamed = feed.dirty(feed.Changes(updated={"people": 3}), views.Refreshed())
    assert renamed == {"people"}
    relinked = feed.dirty(feed.Changes(relinked={"person_schools": 1}), views.Refreshed())
    assert relinked == {"people"}
    entered = feed.dirty(feed.Changes(), views.Refreshed(added={"classes": 2}))
    assert entered == {"classes", "sections", "enrollments"}


def test_an_import_that_drops_a_school_with_its_classes_replays(
    db_url: str, run: Run, live_server: Make
) -> None:
    _, token = _setup(db_url, run)
    files = run.district.files
    school = next(o["sourcedId"] for o in files["orgs"] if o["type"] == "school")
    others = [
        o["sourcedId"] for o in files["orgs"] if o["type"] == "school" and o["sourcedId"] != school
    ]
    classes = {k["sourcedId"] for k in files["classes"] if k["schoolSourcedId"] == school}
    files["orgs"] = [o for o in files["orgs"] if o["sourcedId"] != school]
    files["classes"] = [k for k in files["classes"] if k["sourcedId"] not in classes]
    files["enrollments"] = [e for e in files["enrollments"] if e["classSourcedId"] not in classes]
    for course in files["courses"]:
        if course["orgSourcedId"] == school:
            course["orgSourcedId"] = others[0]
    for user in files["users"]:
        if user["orgSourcedIds"] == school:
            user["orgSourcedIds"] = others[0]
    run_db(db_url, lambda engine: _import(engine, run, files, "bulk"))
    with live_server() as server:
        events = read_feed(server, token)
        assert any(e["type"] == "DELETED" and e["targetType"] == "SCHOOL" for e in events)
        assert_replay_matches(server, token, EVERYTHING, "a school dropped")


def test_the_demo_load_writes_each_integrations_first_materialization(
    db_url: str, live_server: Make
) -> None:
    from gateway.demo import load_demo

    demo = run_db(db_url, lambda engine: load_demo(engine, people=40))
    with live_server() as server:
        for integration in demo.integrations:
            stored = _stored_events(db_url, integration.id)
            if integration.status == "DISABLED":
                assert stored == 0  # a disabled integration accumulates nothing
                continue
            assert stored > 0, integration.name
            if integration.status == "ACTIVE":
                assert integration.token is not None
                status, body = server.graphql(
                    "{ integration { permissions { slug } } }", integration.token
                )
                assert status == 200
                held = frozenset(p["slug"] for p in body["data"]["integration"]["permissions"])
                assert_replay_matches(
                    server, integration.token, held, f"the demo ({integration.name})"
                )
