"""Applications: the permissions each requests and its key for the meta API (issue #16).

An application is what integrations are granted to. Its developer defines the permissions it
requests; an administrator grants them (or denies some) per integration
(`service.create_integration`). Its key authorises the meta API at /meta/graphql: random,
shown once, stored only as a SHA-256 digest, like an integration's token. Every change is
audited on the caller's transaction, like the other administrative changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access.tokens import digest, new_token
from gateway.admin import audit, records, service
from gateway.admin.audit import Actor
from gateway.admin.records import Application, load_applications
from gateway.coltypes import utcnow
from gateway.errors import ValidationFailed

_applications = models.table_of(models.Application)
_requested = models.table_of(models.ApplicationPermission)
_integrations = models.table_of(models.Integration)

MAX_DESCRIPTION_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class CreatedApplication:
    """An application and its key (shown only this once)."""

    application: Application
    key: str


async def require_application(
    conn: AsyncConnection, application_id: str, *, for_update: bool = False
) -> Application:
    """The application `application_id`, or ValidationFailed naming the id."""
    application_id = service.canonical_uuid(application_id, "application")
    found = await load_applications(conn, ids=[application_id], for_update=for_update)
    if not found:
        raise ValidationFailed(
            f"application {application_id} does not exist",
            cli_hint="`gateway applications list` shows them",
            api_hint="the `applications` query lists them",
        )
    return found[0]


def _name(value: str) -> str:
    cleaned = service.clean_text(value, "application name")
    if cleaned is None:
        raise ValidationFailed("the application name is empty; pass a name such as 'Gradebook'")
    return cleaned


def _description(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise ValidationFailed(
            f"the application description is {len(value):,} characters long; at most "
            f"{MAX_DESCRIPTION_LENGTH:,} are allowed"
        )
    if "\x00" in value:
        raise ValidationFailed("the application description holds a NUL character")
    return value or None


async def _write_requested(
    conn: AsyncConnection, application_id: str, permissions: Iterable[str]
) -> None:
    specs = service.resolve_permissions(permissions)
    await conn.execute(_requested.delete().where(_requested.c.application_id == application_id))
    if specs:
        await conn.execute(
            _requested.insert(),
            [{"application_id": application_id, "permission_id": str(s.id)} for s in specs],
        )


async def create_application(
    conn: AsyncConnection,
    name: str,
    *,
    description: str | None = None,
    permissions: Iterable[str] = (),
    actor: Actor = audit.CLI,
) -> CreatedApplication:
    """Create an application requesting `permissions` (slugs or UUIDs); its key is returned
    here and stored only as a digest. Audited."""
    name = _name(name)
    description = _description(description)
    service.resolve_permissions(permissions := list(permissions))  # refuse before writing
    key = new_token()
    row = models.Application(name=name, description=description, key_digest=digest(key))
    await conn.execute(sa.insert(_applications).values(row.model_dump()))
    await _write_requested(conn, row.id, permissions)
    created = await require_application(conn, row.id)
    await audit.record(
        conn,
        actor,
        "application.create",
        "application",
        row.id,
        before=None,
        after=created.as_json(),
    )
    return CreatedApplication(application=created, key=key)


@dataclass(frozen=True, slots=True)
class ApplicationChanges:
    """What an update changes; None leaves a field as it is (`description=""` clears it).
    `permissions` replaces the whole set of requested permissions."""

    name: str | None = None
    description: str | None = None
    permissions: Sequence[str] | None = None


async def update_application(
    conn: AsyncConnection,
    application_id: str,
    changes: ApplicationChanges,
    *,
    actor: Actor = audit.CLI,
) -> Application:
    """Apply `changes`; audited unless nothing changed.

    The integrations made for it keep what they were granted: a permission it stops
    requesting stays granted until an administrator updates those integrations.
    """
    before = await require_application(conn, application_id, for_update=True)
    name = before.name if changes.name is None else _name(changes.name)
    description = (
        before.description if changes.description is None else _description(changes.description)
    )
    specs = None
    if changes.permissions is not None:
        specs = service.resolve_permissions(changes.permissions)
    if (name, description) == (before.name, before.description) and (
        specs is None or {s.slug for s in specs} == set(before.permissions)
    ):
        return before
    await conn.execute(
        _applications.update()
        .where(_applications.c.id == before.id)
        .values(name=name, description=description, updated_date=utcnow())
    )
    if specs is not None:
        await _write_requested(conn, before.id, [s.slug for s in specs])
    after = await require_application(conn, before.id)
    await audit.record(
        conn,
        actor,
        "application.update",
        "application",
        before.id,
        before=before.as_json(),
        after=after.as_json(),
    )
    return after


async def rotate_application_key(
    conn: AsyncConnection, application_id: str, *, actor: Actor = audit.CLI
) -> CreatedApplication:
    """Give the application a new key (returned here only); the old one is refused from the
    next request on. Audited (without either key)."""
    before = await require_application(conn, application_id, for_update=True)
    key = new_token()
    await conn.execute(
        _applications.update()
        .where(_applications.c.id == before.id)
        .values(key_digest=digest(key), updated_date=utcnow())
    )
    after = await require_application(conn, before.id)
    await audit.record(
        conn,
        actor,
        "application.rotate_key",
        "application",
        before.id,
        before=before.as_json(),
        after=after.as_json(),
    )
    return CreatedApplication(application=after, key=key)


@dataclass(frozen=True, slots=True)
class DestroyedApplication:
    """A destroyed application as it was, and its integrations: destroyed with it
    (`with_integrations`) or kept without an application."""

    application: Application
    integrations: list[records.Integration]
    integrations_destroyed: bool

    def as_json(self) -> dict[str, Any]:
        """What `gateway applications destroy --json` prints."""
        return {
            "application": self.application.as_json(),
            "integrations": [i.as_json() for i in self.integrations],
            "integrationsDestroyed": self.integrations_destroyed,
        }


async def destroy_application(
    conn: AsyncConnection,
    application_id: str,
    *,
    with_integrations: bool = False,
    actor: Actor = audit.CLI,
) -> DestroyedApplication:
    """Delete the application; its key stops working at once. Its integrations are destroyed
    too with `with_integrations`, else they keep working with no application (and their
    stored ciphertexts are dropped: no developer can read those tokens any more). Audited."""
    before = await require_application(conn, application_id, for_update=True)
    ids = list(
        (
            await conn.execute(
                sa.select(_integrations.c.id)
                .where(_integrations.c.application_id == before.id)
                .order_by(_integrations.c.created_date, _integrations.c.id)
            )
        ).scalars()
    )
    affected: list[records.Integration] = []
    for integration_id in ids:
        if with_integrations:
            affected.append(await service.destroy_integration(conn, integration_id, actor=actor))
            continue
        was = await service.require_integration(conn, integration_id, for_update=True)
        await conn.execute(
            _integrations.update()
            .where(_integrations.c.id == integration_id)
            .values(application_id=None, token_ciphertext=None, updated_date=utcnow())
        )
        now = await service.require_integration(conn, integration_id)
        await audit.record(
            conn,
            actor,
            "integration.update",
            "integration",
            integration_id,
            before=was.as_json(),
            after=now.as_json(),
        )
        affected.append(now)
    await conn.execute(_requested.delete().where(_requested.c.application_id == before.id))
    await conn.execute(_applications.delete().where(_applications.c.id == before.id))
    await audit.record(
        conn,
        actor,
        "application.destroy",
        "application",
        before.id,
        before=before.as_json(),
        after=None,
    )
    return DestroyedApplication(before, affected, with_integrations)


async def authenticate_application_key(conn: AsyncConnection, key: str) -> Application | None:
    """The application whose key is `key`, or None (integration tokens and admin keys live in
    other tables, so neither ever authenticates here). The lookup is by the key's digest."""
    found = await load_applications(conn, key_digest=digest(key))
    return found[0] if found else None
