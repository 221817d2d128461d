"""Replaying an integration's change feed rebuilds exactly what the Graph API shows it.

A property test drives random sequences of OneRoster imports (changed copies of a generated
folder, bulk and delta) and administrative changes (create, targets, scope, permissions,
disable, enable, destroy) through the real importer and service. After every step, for each
ACTIVE integration of the source, the whole feed is read through the Graph API (`events`, page
by page) and applied in order to an empty map (CREATED and UPDATED set the object, DELETED
removes it), and the result must equal what the Graph API's lists show that integration: the
same ids per type and, per object, the same fields and referenced ids. Both engines, one live
server each.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.gates import TYPE_PERMISSIONS
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin import service
from gateway.db import write_transaction
from gateway.settings import Settings
from tests.conftest import ENGINES, LiveServer, fresh_database, run_db
from tests.reporting import SUMMARY
from tests.test_views import CHANGES, District, Run, _import, _targets

EXAMPLES = 10
STEPS = 8

# ---------------------------------------------------------------- what the Graph API shows

_ADDRESS = "street unit city state postalCode country latitude longitude"
_DEMOGRAPHICS = (
    "birthday gender races hispanicOrLatinoEthnicity englishLanguageLearner "
    "individualizedEducationPlan economicallyDisadvantaged section504 giftedTalented migrant "
    "homeless fosterCare militaryConnected primaryLanguage countryOfBirth stateOfBirth cityOfBirth"
)
_COMMON = "id createdDate updatedDate"

# Per type: its root list, its fields, and its references (alias, field, target type; a
# connection when the alias ends in `Ids`). Each gated field names its permission.
FIELDS: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "District": (
        "districts",
        f"name locale timeZone address {{ {_ADDRESS} phone }}",
        [],
    ),
    "School": (
        "schools",
        f"name gradeLevels locale timeZone address {{ {_ADDRESS} phone }}",
        [("districtId", "district", "District")],
    ),
    "Session": (
        "sessions",
        "name startDate endDate state type",
        [("districtId", "district", "District"), ("schoolId", "school", "School")],
    ),
    "Course": (
        "courses",
        "name code gradeLevels subjects",
        [
            ("districtId", "district", "District"),
            ("schoolId", "school", "School"),
            ("sessionId", "session", "Session"),
        ],
    ),
    "Class": (
        "classes",
        "name description state gradeLevels subjects periods locale timeZone",
        [
            ("schoolId", "school", "School"),
            ("courseId", "course", "Course"),
            ("sessionIds", "sessions", "Session"),
        ],
    ),
    "Section": ("sections", "name description state periods", [("classId", "class", "Class")]),
    "Person": (
        "people",
        "firstName middleName lastName displayName pictureUrl roles locale timeZone "
        "graduationYear gradeLevels",
        [("districtId", "district", "District"), ("schoolIds", "schools", "School")],
    ),
    "Enrollment": (
        "enrollments",
        "role primary state startDate endDate",
        [
            ("personId", "person", "Person"),
            ("classId", "class", "Class"),
            ("sectionId", "section", "Section"),
        ],
    ),
    "Agent": (
        "agents",
        "relationship flags",
        [("observerId", "observer", "Person"), ("targetId", "target", "Person")],
    ),
}

_PERSON_GATED = {
    "email": "emails:read",
    "phone": "phones:read",
    "identifiers { type value }": "identifiers:read",
    f"demographics {{ {_DEMOGRAPHICS} }}": "demographics:read",
}


def graph_query(permissions: frozenset[str]) -> tuple[str, list[str]]:
    """One document reading every type the permissions cover, with every field they allow
    (nothing denied is asked for, so the answer has no FORBIDDEN errors)."""
    parts = []
    readable = [name for name in FIELDS if TYPE_PERMISSIONS[name] in permissions]
    for name in readable:
        root, fields, references = FIELDS[name]
        selection = [_COMMON, fields]
        if "properties:read" in permissions:
            selection.append("properties")
        if name != "Person":
            selection.append("identifiers { type value }")
        else:
            selection += [field for field, slug in _PERSON_GATED.items() if slug in permissions]
            if "addresses:read" in permissions:
                phone = " phone" if "phones:read" in permissions else ""
                selection.append(f"address {{ {_ADDRESS}{phone} }}")
        for alias, field, target in references:
            if TYPE_PERMISSIONS[target] not in permissions:
                continue
            if alias.endswith("Ids"):
                selection.append(f"{alias}: {field}(first: 10) {{ nodes {{ id }} }}")
            else:
                selection.append(f"{alias}: {field} {{ id }}")
        nodes = " ".join(selection)
        parts.append(f"{root}(first: 1000) {{ pageInfo {{ hasNextPage }} nodes {{ {nodes} }} }}")
    return "{ " + " ".join(parts) + " }", readable


def _normal(key: str, value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"nodes"}:
        return sorted(node["id"] for node in value["nodes"])
    if isinstance(value, dict) and set(value) == {"id"}:
        return value["id"]
    if key in ("address", "demographics") and isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


def _normal_data(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _normal(key, value) for key, value in data.items()}


def graph_view(server: LiveServer, token: str, permissions: frozenset[str]) -> dict[str, Any]:
    """What the Graph API shows: (type, id) → the object's fields, references as ids."""
    query, readable = graph_query(permissions)
    shown: dict[tuple[str, str], Any] = {}
    if not readable:
        return shown
    status, body = server.graphql(query, token)
    assert status == 200, body
    assert "errors" not in body, body
    for name in readable:
        assert not body["data"][FIELDS[name][0]]["pageInfo"]["hasNextPage"], "a larger page"
        for node in body["data"][FIELDS[name][0]]["nodes"]:
            shown[(name.upper(), node["id"])] = _normal_data(node)
    return shown


EVENTS = """
query Feed($after: String) {
  events(first: 1000, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id type targetType targetId data date }
  }
}
"""


def read_feed(server: LiveServer, token: str, after: str | None = None) -> list[dict[str, Any]]:
    """Every event of the integration after `after`, page by page."""
    events: list[dict[str, Any]] = []
    while True:
        status, body = server.graphql(EVENTS, token, {"after": after})
        assert status == 200, body
        assert "errors" not in body, body
        page = body["data"]["events"]
        events += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return events
        after = page["pageInfo"]["endCursor"]


def replay(events: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Apply `events` in order to an empty map; a CREATED of an object present, or an UPDATED
    or DELETED of one absent, is a broken feed, except the DELETED (id alone) of an object of
    a type the integration may no longer read, whose CREATED it is not shown any more."""
    seen: dict[tuple[str, str], Any] = {}
    ids = [int(event["id"]) for event in events]
    assert ids == sorted(set(ids)), "event ids must grow"
    for event in events:
        key = (event["targetType"], event["targetId"])
        assert event["data"]["id"] == event["targetId"]
        if event["type"] == "CREATED":
            assert key not in seen, f"CREATED twice: {key}"
            seen[key] = _normal_data(event["data"])
        elif event["type"] == "UPDATED":
            assert key in seen, f"UPDATED before CREATED: {key}"
            seen[key] = _normal_data(event["data"])
        elif event["data"] == {"id": event["targetId"]}:
            seen.pop(key, None)
        else:
            assert key in seen, f"DELETED before CREATED: {key}"
            del seen[key]
    return seen


def assert_replay_matches(
    server: LiveServer, token: str, permissions: frozenset[str], after: str
) -> int:
    """The replayed feed equals the Graph API's view; returns how many objects were compared."""
    shown = graph_view(server, token, permissions)
    replayed = replay(read_feed(server, token))
    missing = sorted(set(shown) - set(replayed))[:3]
    extra = sorted(set(replayed) - set(shown))[:3]
    assert not missing, f"after {after}: the feed lacks {missing}"
    assert not extra, f"after {after}: the feed has {extra} that the Graph API does not show"
    for key, fields in shown.items():
        assert replayed[key] == fields, f"after {after}: {key}: {replayed[key]} != {fields}"
    return len(shown)


# ---------------------------------------------------------------- random steps

Step = tuple[str, int, int]
ACTIONS = ["import", "create", "retarget", "rescope", "permissions", "disable", "enable", "destroy"]
steps = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 10**6), st.integers(0, 10**6)),
    min_size=1,
    max_size=STEPS,
)


class Tokens(dict[str, str]):
    """Integration id → its token (shown only when it was created)."""


def _permissions(pick: int) -> list[str]:
    rng = random.Random(pick)
    return sorted(rng.sample(sorted(ALL_SLUGS), rng.randint(1, len(ALL_SLUGS))))


async def _apply(engine: AsyncEngine, run: Run, tokens: Tokens, step: Step) -> None:
    action, pick, choice = step
    if action == "import":
        name = sorted(CHANGES)[choice % len(CHANGES)]
        files = CHANGES[name](run.district, pick)
        await _import(engine, run, files, "delta" if name == "delta_delete" else "bulk")
        return
    async with write_transaction(engine) as conn:
        if action == "create" or not run.integrations:
            selected = choice % 3 != 0
            created = await service.create_integration(
                conn,
                source_id=run.source_id,
                scope=Scope.SELECTED if selected else Scope.ALL,
                permissions=sorted(ALL_SLUGS) if choice % 2 else _permissions(pick),
                targets=await _targets(conn, run.source_id, pick) if selected else (),
            )
            run.integrations.append(created.id)
            tokens[created.id] = created.token
            return
        integration = run.integrations[choice % len(run.integrations)]
        before = await service.require_integration(conn, integration)
        changes: service.IntegrationChanges | None = None
        if action == "destroy":
            await service.destroy_integration(conn, integration)
            run.integrations.remove(integration)
        elif action == "disable":
            await service.disable_integration(conn, integration)
        elif action == "enable":
            await service.enable_integration(conn, integration)
        elif action == "permissions":
            changes = service.IntegrationChanges(permissions=_permissions(pick))
        elif action == "rescope" and before.scope is Scope.SELECTED:
            changes = service.IntegrationChanges(scope=Scope.ALL)
        else:  # retarget, or rescope from ALL to SELECTED
            targets = await _targets(conn, run.source_id, pick)
            changes = service.IntegrationChanges(scope=Scope.SELECTED, targets=targets)
        if changes is not None:
            await service.update_integration(conn, integration, changes)


stats: dict[str, int] = {"examples": 0, "steps": 0, "checks": 0, "objects": 0}


async def _active(engine: AsyncEngine, run: Run) -> list[tuple[str, frozenset[str]]]:
    """The ACTIVE integrations of the run with their permissions."""
    found = []
    async with engine.connect() as conn:
        for integration in run.integrations:
            record = await service.require_integration(conn, integration)
            if record.configured_status is IntegrationStatus.ACTIVE:
                found.append((integration, frozenset(record.permissions)))
    return found


def _check(server: LiveServer, engine_url: str, run: Run, tokens: Tokens, after: str) -> None:
    for integration, permissions in run_db(engine_url, lambda engine: _active(engine, run)):
        stats["objects"] += assert_replay_matches(server, tokens[integration], permissions, after)
        stats["checks"] += 1


@pytest.fixture(scope="module", params=ENGINES)
def replay_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, LiveServer]]:
    """One database and one live server per engine; each example has its own source."""
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database(request.param, Path(folder), "events_replay") as url,
    ):
        before = dict(stats)
        settings_ = Settings(database_url=url, max_aliases=200, rate_limit_per_second=10_000.0)
        with LiveServer(settings_) as server:
            yield url, server
    SUMMARY.append(
        f"events replay property test on {request.param}: "
        f"{stats['examples'] - before['examples']} examples, "
        f"{stats['steps'] - before['steps']} random steps, "
        f"{stats['checks'] - before['checks']} feed replays compared with the Graph API "
        f"({stats['objects'] - before['objects']} objects)"
    )


counter = itertools.count()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # No shrinking: a failure names its whole plan, and shrinking a sequence of imports against
    # a live server takes many minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32), plan=steps)
def test_replaying_the_feed_rebuilds_what_the_graph_shows(
    replay_server: tuple[str, LiveServer], seed: int, plan: list[Step]
) -> None:
    engine_url, server = replay_server
    tokens = Tokens()
    with tempfile.TemporaryDirectory() as folder:
        folders = (Path(folder) / f"f{n}" for n in itertools.count())
        run = Run(District.generate(seed), f"Replay {next(counter)}", folders)

        async def first(engine: AsyncEngine) -> None:
            await _import(engine, run, run.district.files, "bulk")
            for choice in (1, 3, 2):  # SELECTED with every permission, ALL, SELECTED with some
                await _apply(engine, run, tokens, ("create", seed, choice))

        run_db(engine_url, first)
        _check(server, engine_url, run, tokens, "the first import")
        for step in plan:
            run_db(engine_url, lambda engine, step=step: _apply(engine, run, tokens, step))
            _check(server, engine_url, run, tokens, f"{step} of {plan}")
    stats["examples"] += 1
    stats["steps"] += len(plan)
