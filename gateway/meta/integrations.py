"""The integrations made for one application, as its meta API shows them (DESIGN §2 in full).

A page is three statements whatever its size: the integrations with their source, team,
provider and entity (one join), their granted permissions, and their targets. The access
token of each is decrypted from its stored ciphertext by the vault.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.grant import IntegrationStatus as Status
from gateway.access.grant import effective_status
from gateway.admin import records
from gateway.graph import enums
from gateway.graph.integration import Entity, Permission, Provider, Source, Team
from gateway.vault import Vault

_CREATED = "When this object was created."
_UPDATED = "When this object last changed."


def _f(description: str) -> Any:
    return strawberry.field(description=description)


@strawberry.type(description="An application: the one whose key made this request.")
class Application:
    id: strawberry.ID = _f("The application's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    name: str = _f("The application's name.")
    description: str | None = _f("What the application does, as its administrator wrote it.")
    permissions: list[Permission] = _f(
        "The permissions it requests. An administrator grants them, or denies some, for each "
        "integration; an integration keeps what it was granted when these change."
    )


@strawberry.type(
    description=(
        "An integration made for this application: a school's or district's source, what the "
        "administrator granted of what the application requests, and the access token for "
        "/graphql."
    )
)
class Integration:
    id: strawberry.ID = _f("The integration's UUID.")
    created_date: datetime = _f(_CREATED)
    updated_date: datetime = _f(_UPDATED)
    permissions: list[Permission] = _f("The permissions granted, in catalog order.")
    scope: enums.Scope = _f("ALL: the whole source. SELECTED: only the closure of `targets`.")
    targets: list[strawberry.ID] = _f(
        "UUIDs of the schools, courses and classes a SELECTED integration is limited to."
    )
    status: enums.IntegrationStatus = _f(
        "ACTIVE, INACTIVE (also while `startDate` is in the future) or DISABLED."
    )
    start_date: datetime | None = _f("When the integration becomes ACTIVE by itself.")
    access_token: str | None = _f(
        "The bearer token for /graphql. Null when it cannot be read back: an integration "
        "made before it had an application, or a gateway whose secret key has changed."
    )
    application: Application = _f("This application.")
    source: Source = _f("The source the integration reads.")
    team: Team = _f("The team that owns the source.")
    provider: Provider = _f("The source's provider.")
    entity: Entity = _f("The school or district behind the source.")


def permission(row: Any) -> Permission:
    """A catalog row as the API's Permission."""
    return Permission(
        id=row.id,
        created_date=row.created_date,
        updated_date=row.updated_date,
        slug=row.slug,
        name=row.name,
        description=row.description,
    )


async def load_application(conn: AsyncConnection, found: records.Application) -> Application:
    """The application `found` with its requested permissions as catalog rows."""
    perms = models.table_of(models.Permission)
    rows = await conn.execute(sa.select(perms).where(perms.c.slug.in_(found.permissions)))
    by_slug = {row.slug: permission(row) for row in rows}
    return Application(
        id=strawberry.ID(found.id),
        created_date=found.created_date,
        updated_date=found.updated_date,
        name=found.name,
        description=found.description,
        permissions=[by_slug[slug] for slug in found.permissions],
    )


_i = models.table_of(models.Integration)
_s = models.table_of(models.Source)
_t = models.table_of(models.Team)
_p = models.table_of(models.Provider)
_e = models.table_of(models.Entity)


def now_utc() -> datetime:
    """The moment a status filter is judged at."""
    return datetime.now(UTC)


def _status_is(status: Status, now: datetime) -> sa.ColumnElement[bool]:
    """SQL for "the effective status is `status`" (`effective_status`, as a predicate)."""
    if status is Status.DISABLED:
        return _i.c.status == Status.DISABLED.value
    starts_later = _i.c.start_date > now
    if status is Status.ACTIVE:
        by_date = sa.and_(_i.c.start_date.is_not(None), sa.not_(starts_later))
    else:
        by_date = starts_later
    return sa.and_(
        _i.c.status != Status.DISABLED.value,
        sa.or_(sa.and_(_i.c.start_date.is_(None), _i.c.status == status.value), by_date),
    )


def matching(
    application_id: str, statuses: Sequence[Status] | None, now: datetime
) -> sa.ColumnElement[bool]:
    """The integrations of `application_id` whose effective status is one of `statuses`."""
    condition = _i.c.application_id == application_id
    if statuses is not None:
        condition = sa.and_(condition, sa.or_(*(_status_is(s, now) for s in set(statuses))))
    return condition


def _cols(table: sa.Table, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}__{c.name}") for c in table.columns]


def _pick(row: Any, prefix: str, names: list[str]) -> dict[str, Any]:
    mapping = row._mapping  # built anew on each access: take it once
    return {name: mapping[f"{prefix}__{name}"] for name in names}


_COMMON = ["id", "created_date", "updated_date"]
_PROVIDER = [*_COMMON, "name", "application", "allows_data_sync"]
_TEAM = [*_COMMON, "name", "alias", "street", "unit", "city", "state", "postal_code", "country"]


async def load_page(
    conn: AsyncConnection,
    application: Application,
    condition: sa.ColumnElement[bool],
    *,
    first: int,
    after: str | None,
    vault: Vault,
) -> list[Integration]:
    """Up to `first + 1` integrations matching `condition` after id `after`, in id order."""
    query = (
        sa.select(*_cols(_i, "i"), *_cols(_s, "s"), *_cols(_t, "t"), *_cols(_p, "p"))
        .add_columns(*_cols(_e, "e"))
        .select_from(
            _i.join(_s, _s.c.id == _i.c.source_id)
            .join(_t, _t.c.id == _s.c.team_id)
            .join(_p, _p.c.id == _s.c.provider_id)
            .join(_e, _e.c.id == _s.c.entity_id)
        )
        .where(condition)
        .order_by(_i.c.id)
        .limit(first + 1)
    )
    if after is not None:
        query = query.where(_i.c.id > after)
    rows = (await conn.execute(query)).all()
    ids = [row._mapping["i__id"] for row in rows]
    perms = models.table_of(models.Permission)
    granted = models.table_of(models.IntegrationPermission)
    permissions: dict[str, list[Permission]] = defaultdict(list)
    for row in await conn.execute(
        sa.select(granted.c.integration_id, perms)
        .join(perms, perms.c.id == granted.c.permission_id)
        .where(granted.c.integration_id.in_(ids))
        .order_by(perms.c.slug)
    ):
        permissions[row.integration_id].append(permission(row))
    targets_table = models.table_of(models.IntegrationTarget)
    targets: dict[str, list[str]] = defaultdict(list)
    for integration_id, target_id in await conn.execute(
        sa.select(targets_table.c.integration_id, targets_table.c.target_id).where(
            targets_table.c.integration_id.in_(ids)
        )
    ):
        targets[integration_id].append(target_id)
    now = now_utc()
    page = []
    for row in rows:
        team = Team(**_pick(row, "t", _TEAM))
        provider = Provider(
            **_pick(row, "p", [*_COMMON, "name", "application", "allows_data_sync"])
        )
        values = _pick(row, "i", [*_COMMON, "start_date", "scope", "status", "token_ciphertext"])
        ciphertext = values.pop("token_ciphertext")
        status = effective_status(Status(values.pop("status")), values["start_date"], now)
        scope = enums.Scope(values.pop("scope"))
        page.append(
            Integration(
                **values,
                scope=scope,
                permissions=permissions[values["id"]],
                targets=[strawberry.ID(t) for t in sorted(targets[values["id"]])],
                status=enums.IntegrationStatus(status.value),
                access_token=None if ciphertext is None else vault.decrypt(ciphertext),
                application=application,
                source=Source(
                    **_pick(row, "s", [*_COMMON, "name", "status"]), provider=provider, team=team
                ),
                team=team,
                provider=provider,
                entity=Entity(**_pick(row, "e", [*_COMMON, "name", "type"])),
            )
        )
    return page


async def count(conn: AsyncConnection, condition: sa.ColumnElement[bool]) -> int:
    """How many integrations match `condition`."""
    return int(
        (
            await conn.execute(sa.select(sa.func.count()).select_from(_i).where(condition))
        ).scalar_one()
    )
