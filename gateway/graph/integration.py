"""The integration side as the Graph API shows it (DESIGN §2): `integration` and its objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import strawberry

from gateway import models
from gateway.access.grant import Grant
from gateway.graph import enums
from gateway.request_db import RequestDB

_CREATED = "When this object was created."
_UPDATED = "When this object last changed."


def _f(description: str) -> Any:
    return strawberry.field(description=description)


@strawberry.type(description="A permission an integration can be granted (fixed catalog).")
class Permission:
    id: strawberry.ID = _f("The permission's UUID, the same in every installation.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    slug: str = _f("The permission's slug, e.g. `people:read`.")
    name: str = _f("A short human name.")
    description: str = _f("What the permission lets an integration read.")


@strawberry.type(description="The organisation that owns a source.")
class Team:
    id: strawberry.ID = _f("The team's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The team's name.")
    alias: str | None = _f("A short alias.")
    street: str | None = _f("Street and number.")
    unit: str | None = _f("Unit or suite.")
    city: str | None = _f("City.")
    state: str | None = _f("State or region.")
    postal_code: str | None = _f("Postal code.")
    country: str | None = _f("Country.")


@strawberry.type(description="The system a source's data comes from.")
class Provider:
    id: strawberry.ID = _f("The provider's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The provider's name, e.g. `Canvas`.")
    application: str = _f("Machine name, e.g. `canvas`, `oneroster`.")
    allows_data_sync: bool = _f("Whether data can be synced from it.")


@strawberry.type(description="The real-world school or district behind a source.")
class Entity:
    id: strawberry.ID = _f("The entity's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The entity's name.")
    type: enums.EntityType = _f("District or school.")


@strawberry.type(description="The application an integration was granted to.")
class Application:
    id: strawberry.ID = _f("The application's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The application's name.")


@strawberry.type(description="A connected data source (SIS, LMS or OneRoster export).")
class Source:
    id: strawberry.ID = _f("The source's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The source's name.")
    status: enums.SourceStatus = _f("The source's health.")
    provider: Provider = _f("Where the source's data comes from.")
    team: Team = _f("Who owns the source.")


@strawberry.type(
    description=(
        "The calling integration: what it was granted and whether it may read graph data now. "
        "Answers in every status, so a client can see why graph fields are refused."
    )
)
class Integration:
    id: strawberry.ID = _f("The integration's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    permissions: list[Permission] = _f("The permissions granted.")
    scope: enums.Scope = _f("ALL: the whole source. SELECTED: only the closure of `targets`.")
    targets: list[strawberry.ID] = _f(
        "UUIDs of the schools, courses and classes a SELECTED integration is limited to."
    )
    status: enums.IntegrationStatus = _f(
        "ACTIVE, INACTIVE (also while `startDate` is in the future) or DISABLED."
    )
    start_date: datetime | None = _f("When the integration becomes ACTIVE by itself.")
    access_token: str = _f("The token this request presented (it is the integration's own).")
    application: Application | None = _f("The application, for Clever-style connections.")
    source: Source = _f("The source the integration reads.")
    team: Team = _f("The team that owns the source.")
    provider: Provider = _f("The source's provider.")
    entity: Entity = _f("The school or district behind the source.")


def _cols(table: sa.Table, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}__{c.name}") for c in table.columns]


def _pick(row: Any, prefix: str, names: list[str]) -> dict[str, Any]:
    mapping = row._mapping
    return {name: mapping[f"{prefix}__{name}"] for name in names}


async def load_integration(db: RequestDB, grant: Grant, token: str) -> Integration:
    """The caller's integration with its related objects (a fixed handful of statements)."""
    i = models.table_of(models.Integration)
    s = models.table_of(models.Source)
    t = models.table_of(models.Team)
    p = models.table_of(models.Provider)
    e = models.table_of(models.Entity)
    a = models.table_of(models.Application)
    stmt = (
        sa.select(
            *_cols(i, "i"),
            *_cols(s, "s"),
            *_cols(t, "t"),
            *_cols(p, "p"),
            *_cols(e, "e"),
            *_cols(a, "a"),
        )
        .select_from(
            i.join(s, s.c.id == i.c.source_id)
            .join(t, t.c.id == s.c.team_id)
            .join(p, p.c.id == s.c.provider_id)
            .join(e, e.c.id == s.c.entity_id)
            .outerjoin(a, a.c.id == i.c.application_id)
        )
        .where(i.c.id == grant.integration_id)
    )
    row = (await db.execute(stmt)).one()
    perms = models.table_of(models.Permission)
    granted = models.table_of(models.IntegrationPermission)
    permission_rows = await db.execute(
        sa.select(perms)
        .join(granted, granted.c.permission_id == perms.c.id)
        .where(granted.c.integration_id == grant.integration_id)
        .order_by(perms.c.slug)
    )
    common = ["id", "created_date", "updated_date"]
    team = Team(
        **_pick(
            row,
            "t",
            [*common, "name", "alias", "street", "unit", "city", "state", "postal_code", "country"],
        )
    )
    provider = Provider(**_pick(row, "p", [*common, "name", "application", "allows_data_sync"]))
    source_values = _pick(row, "s", [*common, "name", "status"])
    application = (
        Application(**_pick(row, "a", [*common, "name"])) if row._mapping["a__id"] else None
    )
    values = _pick(row, "i", [*common, "start_date"])
    return Integration(
        **values,
        permissions=[
            Permission(
                id=r.id,
                created_date=r.created_date,
                updated_date=r.updated_date,
                slug=r.slug,
                name=r.name,
                description=r.description,
            )
            for r in permission_rows
        ],
        scope=enums.Scope(grant.scope.value),
        targets=[strawberry.ID(t) for t in sorted(grant.targets.all())],
        status=enums.IntegrationStatus(grant.status.value),
        access_token=token,
        application=application,
        source=Source(**source_values, provider=provider, team=team),
        team=team,
        provider=provider,
        entity=Entity(**_pick(row, "e", [*common, "name", "type"])),
    )
