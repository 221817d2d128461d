"""What a source holds, and destroying it: its integrations, its graph rows, its team and entity.

`destroy_source` runs on the caller's connection, inside the caller's transaction, like every
service function: the integrations (through `service.destroy_integration`, so each is audited
and its stored view deleted), every graph row, the source and its `source.destroy` audit entry
commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.admin import audit, records, service
from gateway.admin.audit import Actor

COUNTED: dict[str, sa.Table] = {
    name: models.table_of(model)
    for name, model in (
        ("districts", models.District),
        ("schools", models.School),
        ("sessions", models.Session),
        ("courses", models.Course),
        ("classes", models.Class),
        ("sections", models.Section),
        ("people", models.Person),
        ("enrollments", models.Enrollment),
        ("agents", models.Agent),
    )
}
"""The nine graph types, as the `counts` of an import name them (DESIGN §7)."""

_DELETION_ORDER = tuple(
    models.table_of(model)
    for model in (
        models.Agent,
        models.Enrollment,
        models.Section,
        models.ClassSession,
        models.PersonSchool,
        models.Class,
        models.Course,
        models.Session,
        models.Person,
        models.School,
        models.District,
    )
)
"""Every table of graph rows, each before the tables it points to, so no foreign key has to
cascade or set anything to null on the way."""

_sources = models.table_of(models.Source)
_teams = models.table_of(models.Team)
_entities = models.table_of(models.Entity)


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """A source, how many rows of each graph type it holds, and its integrations."""

    source: records.Source
    counts: dict[str, int]
    integrations: list[records.Integration]

    def as_json(self) -> dict[str, Any]:
        """The source's JSON object with `counts` and `integrations` added."""
        return {
            **self.source.as_json(),
            "counts": dict(self.counts),
            "integrations": [i.as_json() for i in self.integrations],
        }


async def describe_source(conn: AsyncConnection, source_id: str) -> SourceSummary:
    """The source `source_id` with its counts and integrations, or ValidationFailed."""
    source_id = await service.require_source(conn, source_id)
    (source,) = await records.load_sources(conn, ids=[source_id])
    counts = await count_rows(conn, source_id)
    integrations = await records.load_integrations(conn, source_id=source_id)
    return SourceSummary(source, counts, integrations)


async def count_rows(conn: AsyncConnection, source_id: str) -> dict[str, int]:
    """How many rows of each of the nine graph types `source_id` holds."""
    counts = {}
    for name, table in COUNTED.items():
        query = sa.select(sa.func.count()).select_from(table).where(table.c.source_id == source_id)
        counts[name] = int((await conn.execute(query)).scalar_one())
    return counts


async def destroy_source(
    conn: AsyncConnection, source_id: str, *, actor: Actor = audit.CLI
) -> SourceSummary:
    """Destroy the source with its integrations (their tokens are refused from the next request
    on), its graph rows, and its team and entity unless another source shares them; return
    it as it was. The provider stays: other sources of its kind share it."""
    source_id = await service.require_source(conn, source_id)
    # Lock the source first (PostgreSQL), so an import into it cannot commit in between.
    await conn.execute(sa.select(_sources.c.id).where(_sources.c.id == source_id).with_for_update())
    summary = await describe_source(conn, source_id)
    for integration in summary.integrations:
        await service.destroy_integration(conn, integration.id, actor=actor)
    for table in _DELETION_ORDER:
        await conn.execute(table.delete().where(table.c.source_id == source_id))
    await conn.execute(_sources.delete().where(_sources.c.id == source_id))
    for table, used in (
        (_teams, _sources.c.team_id == _teams.c.id),
        (_entities, _sources.c.entity_id == _entities.c.id),
    ):
        owner = summary.source.team.id if table is _teams else summary.source.entity.id
        shared = sa.select(sa.literal(1)).select_from(_sources).where(used).exists()
        await conn.execute(table.delete().where(table.c.id == owner, ~shared))
    await audit.record(
        conn,
        actor,
        "source.destroy",
        "source",
        source_id,
        before=summary.as_json(),
        after=None,
    )
    return summary
