"""The eight demo integrations (one of each kind DESIGN §7 lists): created, found again,
destroyed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.grant import IntegrationStatus, Scope, effective_status
from gateway.access.permissions import CATALOG
from gateway.admin import records
from gateway.admin.service import create_integration, destroy_integration
from gateway.demo.ids import stable_id
from gateway.demo.results import DemoIntegration

_PRIVATE = (
    "emails:read",
    "phones:read",
    "demographics:read",
    "addresses:read",
    "identifiers:read",
    "properties:read",
)
DEMO_INTEGRATIONS = (
    "all",
    "selected-schools",
    "selected-courses",
    "selected-classes",
    "partial-permissions",
    "inactive",
    "disabled",
    "scheduled",
)


def _demo_targets() -> dict[str, list[str]]:
    # Keys that exist at every size: required subjects always get at least one class.
    return {
        "selected-schools": [stable_id("school:lincoln")],
        "selected-courses": [
            stable_id("course:maple-grove:03:math:0"),
            stable_id("course:jefferson:09:math:0"),
        ],
        "selected-classes": [
            stable_id("class:maple-grove:KG:homeroom:0"),
            stable_id("class:riverside:02:ela:0"),
            stable_id("class:jefferson:10:science:0"),
        ],
    }


async def create_integrations(
    conn: AsyncConnection, source_id: str, names: Sequence[str] = DEMO_INTEGRATIONS
) -> list[DemoIntegration]:
    """Create the demo integrations `names` on `source_id`; the result holds their only copy of
    the tokens."""
    every = [spec.slug for spec in CATALOG]
    partial = [slug for slug in every if slug not in _PRIVATE]
    targets = _demo_targets()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    kinds: dict[str, tuple[Scope, list[str], IntegrationStatus, datetime | None]] = {
        "all": (Scope.ALL, every, IntegrationStatus.ACTIVE, None),
        "selected-schools": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "selected-courses": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "selected-classes": (Scope.SELECTED, every, IntegrationStatus.ACTIVE, None),
        "partial-permissions": (Scope.ALL, partial, IntegrationStatus.ACTIVE, None),
        "inactive": (Scope.ALL, every, IntegrationStatus.INACTIVE, None),
        "disabled": (Scope.ALL, every, IntegrationStatus.DISABLED, None),
        "scheduled": (Scope.ALL, every, IntegrationStatus.ACTIVE, start),
    }
    created: list[DemoIntegration] = []
    for name in names:
        scope, permissions, status, start_date = kinds[name]
        chosen = targets.get(name, [])
        made = await create_integration(
            conn,
            source_id=source_id,
            scope=scope,
            permissions=permissions,
            targets=chosen,
            status=status,
            start_date=start_date,
            name=name,
        )
        created.append(
            DemoIntegration(
                name=name,
                id=made.id,
                status=effective_status(status, start_date).value,
                scope=scope.value,
                targets=chosen,
                permissions=permissions,
                token=made.token,
            )
        )
    return created


async def existing_integrations(conn: AsyncConnection, source_id: str) -> list[DemoIntegration]:
    """The demo integrations `source_id` has now (the oldest of each name), without tokens."""
    found: dict[str, DemoIntegration] = {}
    for integration in await records.load_integrations(conn, source_id=source_id):
        if integration.name in DEMO_INTEGRATIONS and integration.name not in found:
            found[integration.name] = DemoIntegration(
                name=integration.name,
                id=integration.id,
                status=integration.status().value,
                scope=integration.scope.value,
                targets=list(integration.targets),
                permissions=list(integration.permissions),
                token=None,
            )
    return list(found.values())


async def destroy_integrations(conn: AsyncConnection, source_id: str) -> None:
    """Destroy the demo source's integrations named like the demo's (others are left alone).

    Through the admin service, so each destruction is audited like any other.
    """
    table = models.table_of(models.Integration)
    found = await conn.execute(
        sa.select(table.c.id)
        .where(table.c.source_id == source_id, table.c.name.in_(DEMO_INTEGRATIONS))
        .order_by(table.c.created_date, table.c.id)
    )
    for integration_id in list(found.scalars()):
        await destroy_integration(conn, integration_id)
