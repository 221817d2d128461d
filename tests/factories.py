"""Deterministic random graphs for tests, inserted through the real tables, plus plain-Python
facts about them that the oracle reads."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.access import views
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin.service import CreatedSource, create_integration, create_source

ROLES = ("STUDENT", "TEACHER", "ADMINISTRATOR", "STAFF", "GUARDIAN", "PARENT", "AIDE", "TA")
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Graph:
    """Every row of one generated source, as plain dicts keyed by table name."""

    source: CreatedSource
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def ids(self, table: str) -> list[str]:
        """Ids of the rows of `table`."""
        return [r["id"] for r in self.rows[table]]


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _stamp(rng: random.Random) -> datetime:
    return BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))


def _common(rng: random.Random, source_id: str) -> dict[str, Any]:
    created = _stamp(rng)
    return {
        "id": _id(rng),
        "source_id": source_id,
        "created_date": created,
        "updated_date": created + timedelta(days=rng.randrange(0, 30)),
        "identifiers": [{"type": "sis_id", "value": str(rng.randrange(10**6))}],
        "properties": {"raw": rng.randrange(1000)},
    }


def generate(
    rng: random.Random,
    source: CreatedSource,
    *,
    schools: int = 4,
    courses: int = 8,
    classes: int = 14,
    sessions: int = 6,
    people: int = 60,
    enrollments: int = 120,
    agents: int = 14,
) -> Graph:
    """A random source with every odd case the scope rules care about: district-wide sessions
    and courses, classes without a course, classes whose course is another school's, people in
    several schools or none, guardians known only through agents."""
    sid = source.id
    g = Graph(source)
    district = {
        **_common(rng, sid),
        "name": f"District {rng.randrange(100)}",
        "locale": "en-US",
        "time_zone": "America/Chicago",
        "address": {"city": "Springfield"},
    }
    g.rows["districts"] = [district]
    did = district["id"]
    g.rows["schools"] = [
        {
            **_common(rng, sid),
            "district_id": did,
            "name": f"School {i}",
            "grade_levels": ["01"],
            "address": {"street": f"{i} Main St", "postalCode": "62701"},
        }
        for i in range(schools)
    ]
    school_ids = g.ids("schools")
    g.rows["sessions"] = [
        {
            **_common(rng, sid),
            "district_id": did,
            "school_id": rng.choice([None, *school_ids]),
            "name": f"Term {i}",
            "start_date": date(2026, 1 + i % 12, 1),
            "end_date": date(2026, 1 + i % 12, 28),
            "state": rng.choice(["ACTIVE", "UPCOMING", "COMPLETED"]),
            "type": rng.choice(["TERM", "SEMESTER", "SCHOOL_YEAR", "GRADING_PERIOD"]),
        }
        for i in range(sessions)
    ]
    session_ids = g.ids("sessions")
    g.rows["courses"] = [
        {
            **_common(rng, sid),
            "district_id": did,
            "school_id": rng.choice([None, *school_ids]),
            "session_id": rng.choice([None, *session_ids]),
            "name": f"Course {i}",
            "code": f"C{i}",
            "grade_levels": ["01", "02"],
            "subjects": ["Math"],
        }
        for i in range(courses)
    ]
    course_ids = g.ids("courses")
    g.rows["classes"] = [
        {
            **_common(rng, sid),
            "school_id": rng.choice(school_ids),
            "course_id": rng.choice([None, *course_ids]),
            "name": f"Class {i}",
            "state": "ACTIVE",
            "grade_levels": ["01"],
            "subjects": [],
            "periods": ["1"],
        }
        for i in range(classes)
    ]
    class_ids = g.ids("classes")
    g.rows["class_sessions"] = [
        {"class_id": c, "session_id": s, "source_id": sid}
        for c in class_ids
        for s in rng.sample(session_ids, rng.randrange(0, 3))
    ]
    g.rows["sections"] = [
        {
            **_common(rng, sid),
            "class_id": rng.choice(class_ids),
            "name": f"Section {i}",
            "state": "ACTIVE",
            "periods": [],
        }
        for i in range(max(1, classes // 2))
    ]
    g.rows["people"] = [
        {
            **_common(rng, sid),
            "district_id": did,
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "display_name": f"First{i} Last{i}",
            "roles": [rng.choice(ROLES)],
            "email": f"p{i}@example.org",
            "phone": f"555-{i:04d}",
            "grade_levels": [],
            "demographics": {"gender": "female", "birthday": "2010-01-01"},
            "address": {"street": f"{i} Elm", "phone": f"555-9{i:03d}"},
        }
        for i in range(people)
    ]
    people_ids = g.ids("people")
    memberships = {
        (p, s) for p in people_ids for s in rng.sample(school_ids, rng.choice([0, 1, 1, 2]))
    }
    g.rows["person_schools"] = [
        {"person_id": p, "school_id": s, "source_id": sid} for p, s in sorted(memberships)
    ]
    sections_by_class: dict[str, list[str]] = {}
    for section in g.rows["sections"]:
        sections_by_class.setdefault(section["class_id"], []).append(section["id"])
    g.rows["enrollments"] = []
    for _ in range(enrollments):
        class_id = rng.choice(class_ids)
        g.rows["enrollments"].append(
            {
                **_common(rng, sid),
                "person_id": rng.choice(people_ids),
                "class_id": class_id,
                "section_id": rng.choice([None, *sections_by_class.get(class_id, [])]),
                "role": rng.choice(["STUDENT", "TEACHER"]),
                "primary": rng.random() < 0.2,
                "state": "ACTIVE",
            }
        )
    g.rows["agents"] = [
        {
            **_common(rng, sid),
            "observer_id": rng.choice(people_ids),
            "target_id": rng.choice(people_ids),
            "relationship": rng.choice(["PARENT", "GUARDIAN"]),
            "flags": [],
        }
        for _ in range(agents)
    ]
    return g


INSERT_ORDER = (
    "districts",
    "schools",
    "sessions",
    "courses",
    "classes",
    "class_sessions",
    "sections",
    "people",
    "person_schools",
    "enrollments",
    "agents",
)


async def insert(conn: AsyncConnection, graph: Graph) -> None:
    """Write every row of `graph`, and refresh the stored views of its source's integrations
    (as every writer of graph rows does, in the same transaction)."""
    tables = models.SQLModel.metadata.tables
    for name in INSERT_ORDER:
        if graph.rows.get(name):
            await conn.execute(sa.insert(tables[name]), graph.rows[name])
    await views.refresh_source(conn, graph.source.id)


async def make_source(engine: AsyncEngine, seed: int, name: str, **sizes: int) -> Graph:
    """Create a source named `name` holding a random graph from `seed`."""
    async with engine.begin() as conn:
        source = await create_source(conn, name)
        graph = generate(random.Random(seed), source, **sizes)
        await insert(conn, graph)
    return graph


async def make_integration(
    engine: AsyncEngine,
    source_id: str,
    *,
    scope: Scope = Scope.ALL,
    targets: Sequence[str] = (),
    permissions: Sequence[str] | None = None,
    status: IntegrationStatus = IntegrationStatus.ACTIVE,
    start_date: datetime | None = None,
) -> str:
    """Create an integration and return its token."""
    async with engine.begin() as conn:
        created = await create_integration(
            conn,
            source_id=source_id,
            scope=scope,
            permissions=sorted(ALL_SLUGS) if permissions is None else permissions,
            targets=targets,
            status=status,
            start_date=start_date,
        )
    return created.token
