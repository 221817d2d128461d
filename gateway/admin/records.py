"""Sources, integrations and applications as the admin API, the CLI and the audit log see them.

Plain frozen dataclasses loaded in a bounded number of statements (one per table, never one
per row), and their JSON form, which is what `--json` prints and what the audit log stores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.grant import IntegrationStatus, Scope, effective_status
from gateway.access.permissions import CATALOG
from gateway.admin.targets import Target, describe_targets

_integrations = models.table_of(models.Integration)
_applications = models.table_of(models.Application)
_requested = models.table_of(models.ApplicationPermission)
_granted = models.table_of(models.IntegrationPermission)
_permissions = models.table_of(models.Permission)
_targets = models.table_of(models.IntegrationTarget)
_sources = models.table_of(models.Source)
_providers = models.table_of(models.Provider)
_teams = models.table_of(models.Team)
_entities = models.table_of(models.Entity)

_CATALOG_ORDER = {spec.slug: i for i, spec in enumerate(CATALOG)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Integration:
    """An integration's configuration; `permissions` are slugs in catalog order, `targets` ids
    in id order and `target_details` the same targets with their kinds and names."""

    id: str
    name: str | None
    source_id: str
    application_id: str | None
    application: str | None  # its name
    scope: Scope
    configured_status: IntegrationStatus
    start_date: datetime | None
    permissions: tuple[str, ...]
    targets: tuple[str, ...]
    created_date: datetime
    updated_date: datetime
    target_details: tuple[Target, ...] = ()

    def status(self, now: datetime | None = None) -> IntegrationStatus:
        """The status a graph request sees now (DISABLED wins; a start date decides the rest)."""
        return effective_status(self.configured_status, self.start_date, now)

    def as_json(self) -> dict[str, Any]:
        """The integration as one JSON object with the admin API's field names."""
        return {
            "id": self.id,
            "name": self.name,
            "sourceId": self.source_id,
            "application": (
                None
                if self.application_id is None
                else {"id": self.application_id, "name": self.application}
            ),
            "scope": self.scope.value,
            "status": self.status().value,
            "configuredStatus": self.configured_status.value,
            "startDate": _iso(self.start_date),
            "permissions": list(self.permissions),
            "targets": list(self.targets),
            "targetDetails": [t.as_json() for t in self.target_details],
            "createdDate": _iso(self.created_date),
            "updatedDate": _iso(self.updated_date),
        }


async def load_integrations(
    conn: AsyncConnection,
    *,
    ids: Sequence[str] | None = None,
    source_id: str | None = None,
    application_id: str | None = None,
    for_update: bool = False,
) -> list[Integration]:
    """Integrations oldest first, all or only `ids` / those of `source_id` / of
    `application_id`, in six statements
    (the last three name the targets).

    `for_update` locks the integration rows (PostgreSQL) so a concurrent change cannot slip
    between the "before" an update reads and the "after" it writes.
    """
    query = (
        sa.select(
            _integrations.c.id,
            _integrations.c.name,
            _integrations.c.source_id,
            _integrations.c.application_id,
            _applications.c.name.label("application"),
            _integrations.c.scope,
            _integrations.c.status,
            _integrations.c.start_date,
            _integrations.c.created_date,
            _integrations.c.updated_date,
        )
        .select_from(
            _integrations.outerjoin(
                _applications, _applications.c.id == _integrations.c.application_id
            )
        )
        .order_by(_integrations.c.created_date, _integrations.c.id)
    )
    if ids is not None:
        query = query.where(_integrations.c.id.in_(ids))
    if source_id is not None:
        query = query.where(_integrations.c.source_id == source_id)
    if application_id is not None:
        query = query.where(_integrations.c.application_id == application_id)
    if for_update:
        query = query.with_for_update(of=_integrations)
    rows = (await conn.execute(query)).all()
    found = [row.id for row in rows]
    slugs: dict[str, list[str]] = defaultdict(list)
    for integration_id, slug in await conn.execute(
        sa.select(_granted.c.integration_id, _permissions.c.slug)
        .join(_permissions, _permissions.c.id == _granted.c.permission_id)
        .where(_granted.c.integration_id.in_(found))
    ):
        slugs[integration_id].append(slug)
    targets: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, str] = {}
    for integration_id, target_id, kind in await conn.execute(
        sa.select(_targets.c.integration_id, _targets.c.target_id, _targets.c.kind).where(
            _targets.c.integration_id.in_(found)
        )
    ):
        targets[integration_id].append(target_id)
        kinds[target_id] = kind
    details = await describe_targets(conn, kinds)
    return [
        Integration(
            id=row.id,
            name=row.name,
            source_id=row.source_id,
            application_id=row.application_id,
            application=row.application,
            scope=Scope(row.scope),
            configured_status=IntegrationStatus(row.status),
            start_date=row.start_date,
            permissions=tuple(sorted(slugs[row.id], key=_CATALOG_ORDER.__getitem__)),
            targets=tuple(sorted(targets[row.id])),
            created_date=row.created_date,
            updated_date=row.updated_date,
            target_details=tuple(details[t] for t in sorted(targets[row.id])),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class Provider:
    """The system a source's data comes from."""

    id: str
    name: str
    application: str
    allows_data_sync: bool


@dataclass(frozen=True, slots=True)
class Team:
    """The organisation that owns a source."""

    id: str
    name: str
    alias: str | None


@dataclass(frozen=True, slots=True)
class Entity:
    """The real-world district or school behind a source."""

    id: str
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Source:
    """A source with its provider, team and entity."""

    id: str
    name: str
    status: str
    provider: Provider
    team: Team
    entity: Entity
    created_date: datetime
    updated_date: datetime

    def as_json(self) -> dict[str, Any]:
        """The source as one JSON object with the admin API's field names."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "provider": {
                "id": self.provider.id,
                "name": self.provider.name,
                "application": self.provider.application,
                "allowsDataSync": self.provider.allows_data_sync,
            },
            "team": {"id": self.team.id, "name": self.team.name, "alias": self.team.alias},
            "entity": {"id": self.entity.id, "name": self.entity.name, "type": self.entity.type},
            "createdDate": _iso(self.created_date),
            "updatedDate": _iso(self.updated_date),
        }


async def load_sources(conn: AsyncConnection, *, ids: Sequence[str] | None = None) -> list[Source]:
    """Sources oldest first (all, or only `ids`), with provider, team and entity, in one join."""
    query = (
        sa.select(
            _sources.c.id,
            _sources.c.name,
            _sources.c.status,
            _sources.c.created_date,
            _sources.c.updated_date,
            _providers.c.id.label("provider_id"),
            _providers.c.name.label("provider_name"),
            _providers.c.application.label("provider_application"),
            _providers.c.allows_data_sync,
            _teams.c.id.label("team_id"),
            _teams.c.name.label("team_name"),
            _teams.c.alias.label("team_alias"),
            _entities.c.id.label("entity_id"),
            _entities.c.name.label("entity_name"),
            _entities.c.type.label("entity_type"),
        )
        .join(_providers, _providers.c.id == _sources.c.provider_id)
        .join(_teams, _teams.c.id == _sources.c.team_id)
        .join(_entities, _entities.c.id == _sources.c.entity_id)
        .order_by(_sources.c.created_date, _sources.c.id)
    )
    if ids is not None:
        query = query.where(_sources.c.id.in_(ids))
    return [
        Source(
            id=row.id,
            name=row.name,
            status=row.status,
            provider=Provider(
                row.provider_id,
                row.provider_name,
                row.provider_application,
                row.allows_data_sync,
            ),
            team=Team(row.team_id, row.team_name, row.team_alias),
            entity=Entity(row.entity_id, row.entity_name, row.entity_type),
            created_date=row.created_date,
            updated_date=row.updated_date,
        )
        for row in await conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class Application:
    """An application as listings show it (never its key, nor the key's digest).

    `permissions` are the slugs it requests, in catalog order; `has_key` is false only for an
    application named by free text before applications had keys (it cannot use the meta API
    until its key is rotated).
    """

    id: str
    name: str
    description: str | None
    permissions: tuple[str, ...]
    has_key: bool
    created_date: datetime
    updated_date: datetime

    def as_json(self) -> dict[str, Any]:
        """The application as one JSON object with the admin API's field names."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "permissions": list(self.permissions),
            "createdDate": self.created_date.isoformat(),
            "updatedDate": self.updated_date.isoformat(),
        }


async def load_applications(
    conn: AsyncConnection,
    *,
    ids: Sequence[str] | None = None,
    key_digest: str | None = None,
    for_update: bool = False,
) -> list[Application]:
    """Applications oldest first (all, only `ids`, or the one whose key has `key_digest`), in
    two statements. `for_update` locks their rows (PostgreSQL) until the transaction ends."""
    query = sa.select(_applications).order_by(_applications.c.created_date, _applications.c.id)
    if ids is not None:
        query = query.where(_applications.c.id.in_(ids))
    if key_digest is not None:
        query = query.where(_applications.c.key_digest == key_digest)
    if for_update:
        query = query.with_for_update(of=_applications)
    rows = (await conn.execute(query)).all()
    slugs: dict[str, list[str]] = defaultdict(list)
    for application_id, slug in await conn.execute(
        sa.select(_requested.c.application_id, _permissions.c.slug)
        .join(_permissions, _permissions.c.id == _requested.c.permission_id)
        .where(_requested.c.application_id.in_([row.id for row in rows]))
    ):
        slugs[application_id].append(slug)
    return [
        Application(
            id=row.id,
            name=row.name,
            description=row.description,
            permissions=tuple(sorted(slugs[row.id], key=_CATALOG_ORDER.__getitem__)),
            has_key=row.key_digest is not None,
            created_date=row.created_date,
            updated_date=row.updated_date,
        )
        for row in rows
    ]
