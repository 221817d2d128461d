"""Creating and changing sources and integrations, with the validations of DESIGN §2 and §6.

Every function takes an open connection inside a transaction; the caller commits. The
functions raise `ValidationFailed` with a message that names the offending value. Every change
is written to the audit log on the same connection, so the change and its entry commit together;
`actor` says who made it (the command line unless an admin key is given).
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import models
from gateway.access import views
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import PermissionSpec, resolve_permission
from gateway.access.tokens import digest, new_token
from gateway.admin import audit, records
from gateway.admin.audit import Actor
from gateway.coltypes import as_utc, utcnow
from gateway.errors import ValidationFailed
from gateway.events import feed
from gateway.vault import Vault

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def canonical_uuid(value: str, what: str) -> str:
    """`value` as a canonical lowercase UUID string, or ValidationFailed naming `what`."""

    if not _UUID_RE.match(value.strip()):
        raise ValidationFailed(
            f"{what} {value!r} is not a UUID (expected e.g. '3f2b8c1e-0d5a-4c6e-9b7a-1e2d3c4b5a69')"
        )
    return str(uuid.UUID(value.strip()))


@dataclass(frozen=True, slots=True)
class CreatedSource:
    """A new source's id and name."""

    id: str
    name: str


async def create_source(
    conn: AsyncConnection,
    name: str,
    *,
    provider_name: str = "OneRoster",
    provider_application: str = "oneroster",
    team_name: str | None = None,
    entity_name: str | None = None,
    entity_type: str = "DISTRICT",
    actor: Actor = audit.CLI,
) -> CreatedSource:
    """Create a source with its team, provider and entity; return its id and name."""
    cleaned = clean_text(name, "source name")
    if cleaned is None:
        raise ValidationFailed("the source name is empty; pass a name such as 'Springfield SIS'")
    name = cleaned
    await lock_source_name(conn, name)
    sources = models.table_of(models.Source)
    taken = (
        await conn.execute(sa.select(sources.c.id).where(sources.c.name == name).limit(1))
    ).scalar()
    if taken is not None:
        # An import finds its source by name: a second one of the name would leave both
        # beyond `gateway import oneroster --source-name` (found by a review).
        raise ValidationFailed(
            f"a source named {name!r} exists already (id {taken}); source names are unique, "
            "since an import finds its source by name: choose another name"
        )
    team_name = clean_text(team_name, "team name")
    entity_name = clean_text(entity_name, "entity name")
    if entity_type not in ("DISTRICT", "SCHOOL"):
        raise ValidationFailed(f"entity type {entity_type!r} is not DISTRICT or SCHOOL")
    now = utcnow()
    team = models.Team(name=team_name or name, created_date=now, updated_date=now)
    provider = await _provider(conn, provider_name, provider_application)
    entity = models.Entity(name=entity_name or name, type=entity_type)
    await conn.execute(sa.insert(models.table_of(models.Team)).values(team.model_dump()))
    await conn.execute(sa.insert(models.table_of(models.Entity)).values(entity.model_dump()))
    source = models.Source(
        name=name, provider_id=provider, team_id=team.id, entity_id=entity.id, status="ACTIVE"
    )
    await conn.execute(sa.insert(models.table_of(models.Source)).values(source.model_dump()))
    (created,) = await records.load_sources(conn, ids=[source.id])
    await audit.record(
        conn, actor, "source.create", "source", source.id, before=None, after=created.as_json()
    )
    return CreatedSource(id=source.id, name=source.name)


async def _provider(conn: AsyncConnection, name: str, application: str) -> str:
    table = models.table_of(models.Provider)
    found = (
        await conn.execute(sa.select(table.c.id).where(table.c.application == application))
    ).scalar()
    if found is not None:
        return str(found)
    provider = models.Provider(name=name, application=application)
    await conn.execute(sa.insert(table).values(provider.model_dump()))
    return provider.id


async def require_source(conn: AsyncConnection, source_id: str) -> str:
    """The canonical id of an existing source, or ValidationFailed."""
    source_id = canonical_uuid(source_id, "source")
    table = models.table_of(models.Source)
    if (await conn.execute(sa.select(table.c.id).where(table.c.id == source_id))).first() is None:
        raise ValidationFailed(
            f"source {source_id} does not exist",
            cli_hint="`gateway sources list` shows them",
            api_hint="the `sources` query lists them",
        )
    return source_id


def resolve_permissions(values: Iterable[str]) -> list[PermissionSpec]:
    """Permissions named by slug or UUID, deduplicated, or ValidationFailed naming the unknown."""
    found: dict[str, PermissionSpec] = {}
    for value in values:
        try:
            spec = resolve_permission(value.strip())
        except KeyError as exc:
            raise ValidationFailed(str(exc.args[0])) from None
        found[spec.slug] = spec
    return list(found.values())


_TARGET_TABLES: tuple[tuple[str, Any], ...] = (
    ("SCHOOL", models.table_of(models.School)),
    ("COURSE", models.table_of(models.Course)),
    ("CLASS", models.table_of(models.Class)),
)


async def resolve_targets(
    conn: AsyncConnection, source_id: str, scope: Scope, targets: Sequence[str]
) -> dict[str, str]:
    """Map each target to its kind (SCHOOL, COURSE, CLASS), checking DESIGN §6's rules."""
    ids = [canonical_uuid(t, "target") for t in targets]
    if scope is Scope.ALL and ids:
        raise ValidationFailed("scope ALL takes no targets; drop the targets or use scope SELECTED")
    if scope is Scope.SELECTED and not ids:
        raise ValidationFailed(
            "scope SELECTED needs at least one target (a school, course or class id)"
        )
    kinds: dict[str, str] = {}
    if not ids:
        return kinds
    for kind, table in _TARGET_TABLES:
        rows = await conn.execute(
            sa.select(table.c.id).where(table.c.id.in_(ids), table.c.source_id == source_id)
        )
        for (found,) in rows:
            kinds[found] = kind
    missing = [t for t in ids if t not in kinds]
    if missing:
        raise ValidationFailed(
            f"target {missing[0]} is not a school, course or class of source {source_id}"
        )
    return kinds


def parse_scope(value: str) -> Scope:
    """`all` / `selected` (any case) as a Scope, or ValidationFailed."""
    try:
        return Scope(value.strip().upper())
    except ValueError:
        raise ValidationFailed(f"scope {value!r} is not ALL or SELECTED") from None


def parse_status(value: str) -> IntegrationStatus:
    """`active` / `inactive` / `disabled` (any case) as a status, or ValidationFailed."""
    try:
        return IntegrationStatus(value.strip().upper())
    except ValueError:
        raise ValidationFailed(f"status {value!r} is not ACTIVE, INACTIVE or DISABLED") from None


def parse_start_date(value: str | None) -> datetime | None:
    """An ISO-8601 date or timestamp, or ValidationFailed with an example."""
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"start date {value!r} is not ISO-8601 (e.g. 2027-01-31 or 2027-01-31T08:00:00Z)"
        ) from None


def _utc(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError:
        raise ValidationFailed(
            f"start date {value.isoformat()} falls outside the years 1 to 9999 once converted "
            "to UTC; give a date within them"
        ) from None


def check_status_takes_effect(
    status: IntegrationStatus, start_date: datetime | None, now: datetime | None = None
) -> None:
    """Refuse INACTIVE with a start date that has passed: the integration would be ACTIVE."""
    if status is not IntegrationStatus.INACTIVE or start_date is None:
        return
    start_date = _utc(start_date)
    if start_date <= (now or datetime.now(UTC)):
        raise ValidationFailed(
            f"status INACTIVE would have no effect: start date {start_date.isoformat()} has "
            "passed, so the integration is ACTIVE; clear the start date too, or disable it"
        )


@dataclass(frozen=True, slots=True)
class CreatedIntegration:
    """A new integration and its token (shown only this once)."""

    id: str
    token: str
    integration: records.Integration


async def create_integration(
    conn: AsyncConnection,
    *,
    source_id: str,
    scope: Scope,
    permissions: Iterable[str],
    targets: Sequence[str] = (),
    status: IntegrationStatus = IntegrationStatus.ACTIVE,
    start_date: datetime | None = None,
    name: str | None = None,
    application_id: str | None = None,
    deny: Iterable[str] = (),
    vault: Vault | None = None,
    actor: Actor = audit.CLI,
) -> CreatedIntegration:
    """Create an integration; the plain token is returned here and stored only as a digest.

    For an application (`application_id`) the integration is granted what the application
    requests, minus `deny`; `permissions`, when given, must be among those it requests. Its
    token is then also stored encrypted by `vault`, for the application's meta API.
    """
    source_id = await require_source(conn, source_id)
    await views.lock_source(conn, source_id)  # before its targets' closure is computed
    specs = resolve_permissions(permissions)
    encrypt: Callable[[str], str] | None = None
    if application_id is not None:
        specs = await _granted_to_application(conn, application_id, specs, deny)
        application_id = canonical_uuid(application_id, "application")
        if vault is None:
            raise ValueError("an integration of an application needs the vault")
        encrypt = vault.encrypt
    elif list(deny):
        raise ValidationFailed("denying permissions needs an application to deny them from")
    kinds = await resolve_targets(conn, source_id, scope, targets)
    start_date = None if start_date is None else _utc(start_date)
    check_status_takes_effect(status, start_date)
    token = new_token()
    integration = models.Integration(
        name=_clean_name(name),
        source_id=source_id,
        application_id=application_id,
        scope=scope.value,
        status=status.value,
        start_date=start_date,
        token_digest=digest(token),
        token_ciphertext=None if encrypt is None else encrypt(token),
    )
    await conn.execute(
        sa.insert(models.table_of(models.Integration)).values(integration.model_dump())
    )
    await _write_permissions(conn, integration.id, specs)
    await _write_targets(conn, integration.id, kinds)
    await views.refresh(conn, integration.id)
    await feed.sync(conn, integration.id)  # its first materialization: CREATED for all it sees
    created = await require_integration(conn, integration.id)
    await audit.record(
        conn,
        actor,
        "integration.create",
        "integration",
        integration.id,
        before=None,
        after=created.as_json(),
    )
    return CreatedIntegration(id=integration.id, token=token, integration=created)


async def _granted_to_application(
    conn: AsyncConnection,
    application_id: str,
    specs: Sequence[PermissionSpec],
    deny: Iterable[str],
) -> list[PermissionSpec]:
    """What an integration of the application gets: `specs` (or, when none are named, all it
    requests) minus `deny`; naming a permission it does not request is refused."""
    denied = resolve_permissions(deny)
    application = await _require_requested(conn, application_id, [*specs, *denied])
    chosen = list(specs) or resolve_permissions(application.permissions)
    return [s for s in chosen if s.slug not in {d.slug for d in denied}]


async def _require_requested(
    conn: AsyncConnection, application_id: str, specs: Sequence[PermissionSpec]
) -> records.Application:
    """The application, once each of `specs` is known to be one it requests. Its row stays
    locked until the transaction ends, so a concurrent change of what it requests cannot slip
    in between."""
    found = await records.load_applications(
        conn, ids=[canonical_uuid(application_id, "application")], for_update=True
    )
    if not found:
        raise ValidationFailed(
            f"application {application_id} does not exist",
            cli_hint="`gateway applications list` shows them",
            api_hint="the `applications` query lists them",
        )
    application = found[0]
    for spec in specs:
        if spec.slug not in application.permissions:
            raise ValidationFailed(
                f"permission {spec.slug} is not one that application {application.name!r} "
                f"requests ({', '.join(application.permissions) or 'none'}); an integration "
                "of an application is granted only what it requests"
            )
    return application


MAX_NAME_LENGTH = 200


async def lock_source_name(conn: AsyncConnection, name: str) -> None:
    """On PostgreSQL, hold a lock on the source name `name` until the transaction ends, before
    looking for a source of that name: two transactions creating one name (two `sources
    create`, two first imports) take turns, the second finding the first's source, instead of
    both finding none and making two namesakes. SQLite needs none: a change holds the write
    lock from its first statement (`write_transaction`)."""
    if conn.dialect.name != "postgresql":
        return
    key = hashlib.blake2b(f"gateway source name\0{name}".encode(), digest_size=8).digest()
    lock = sa.func.pg_advisory_xact_lock(int.from_bytes(key, "big", signed=True))
    await conn.execute(sa.select(lock))


def clean_text(value: str | None, what: str) -> str | None:
    """`value` trimmed (None when empty), or ValidationFailed when it could not be a name: too
    long, control characters (NUL, line breaks…), or text that is not valid Unicode."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            f"the {what} is {len(value):,} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValidationFailed(
            f"the {what} {value[:40]!r} holds a control character or half of a surrogate pair; "
            "use printable text"
        )
    return value


def _clean_name(name: str | None) -> str | None:
    return clean_text(name, "name")


async def require_integration(
    conn: AsyncConnection, integration_id: str, *, for_update: bool = False
) -> records.Integration:
    """The integration `integration_id`, or ValidationFailed naming the id."""
    integration_id = canonical_uuid(integration_id, "integration")
    found = await records.load_integrations(conn, ids=[integration_id], for_update=for_update)
    if not found:
        raise ValidationFailed(
            f"integration {integration_id} does not exist",
            cli_hint="`gateway integrations list` shows them",
            api_hint="the `integrations` query lists them",
        )
    return found[0]


async def _locked_integration(conn: AsyncConnection, integration_id: str) -> records.Integration:
    """`require_integration` with its row locked, after its source's lock
    (`views.lock_source`), the order every writer takes them in: an import's feed refresh
    holds the source, then a feed's row, then writes events that refer to the integration
    (taking the integration's row first deadlocked a destroy against it, found by a review)."""
    integration_id = canonical_uuid(integration_id, "integration")
    table = models.table_of(models.Integration)
    source_id = (
        await conn.execute(sa.select(table.c.source_id).where(table.c.id == integration_id))
    ).scalar()
    if source_id is not None:
        await views.lock_source(conn, source_id)
    return await require_integration(conn, integration_id, for_update=True)


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Literal[_Keep.KEEP] = _Keep.KEEP
"""Marks a field of `IntegrationChanges` that may be set to None as "leave it as it is"."""


@dataclass(frozen=True, slots=True)
class IntegrationChanges:
    """What an update changes; None (or KEEP) leaves a field as it is.

    There is deliberately no source: an integration's source never changes (DESIGN §2).
    `permissions` and `targets` replace the whole set. Switching `scope` to ALL without
    passing targets clears the targets; switching to SELECTED needs targets.
    """

    permissions: Sequence[str] | None = None
    scope: Scope | None = None
    targets: Sequence[str] | None = None
    status: IntegrationStatus | None = None
    start_date: datetime | Literal[_Keep.KEEP] | None = KEEP
    name: str | Literal[_Keep.KEEP] | None = KEEP


async def update_integration(
    conn: AsyncConnection,
    integration_id: str,
    changes: IntegrationChanges,
    *,
    actor: Actor = audit.CLI,
    action: str = "integration.update",
) -> records.Integration:
    """Apply `changes` (the token never changes); audit it unless nothing changed."""
    before = await _locked_integration(conn, integration_id)
    scope = changes.scope or before.scope
    kinds: dict[str, str] | None = None
    if changes.targets is not None or scope is not before.scope:
        kinds = await resolve_targets(conn, before.source_id, scope, changes.targets or ())
    specs = None if changes.permissions is None else resolve_permissions(changes.permissions)
    if specs and before.application_id is not None:
        await _require_requested(conn, before.application_id, specs)
    status = changes.status or before.configured_status
    start_date = before.start_date
    if changes.start_date is not KEEP:
        start_date = None if changes.start_date is None else _utc(changes.start_date)
    name = before.name if changes.name is KEEP else _clean_name(changes.name)
    if changes.status is not None or changes.start_date is not KEEP:
        check_status_takes_effect(status, start_date)
    unchanged = (
        (kinds is None or set(kinds) == set(before.targets))
        and (specs is None or {s.slug for s in specs} == set(before.permissions))
        and (scope, status, start_date, name)
        == (before.scope, before.configured_status, before.start_date, before.name)
    )
    if unchanged:
        return before
    table = models.table_of(models.Integration)
    await conn.execute(
        table.update()
        .where(table.c.id == before.id)
        .values(
            scope=scope.value,
            status=status.value,
            start_date=start_date,
            name=name,
            updated_date=utcnow(),
        )
    )
    if specs is not None:
        await _write_permissions(conn, before.id, specs)
    if kinds is not None:
        await _write_targets(conn, before.id, kinds)
    if kinds is not None or scope is not before.scope:
        await views.refresh(conn, before.id)
    if (
        kinds is not None
        or specs is not None
        or (scope, status) != (before.scope, before.configured_status)
    ):
        await feed.sync(conn, before.id)  # what entered or left its view, or it may now read
    after = await require_integration(conn, before.id)
    await audit.record(
        conn,
        actor,
        action,
        "integration",
        before.id,
        before=before.as_json(),
        after=after.as_json(),
    )
    return after


async def disable_integration(
    conn: AsyncConnection, integration_id: str, *, actor: Actor = audit.CLI
) -> records.Integration:
    """Set the status to DISABLED: graph requests are refused from the next request on."""
    return await update_integration(
        conn,
        integration_id,
        IntegrationChanges(status=IntegrationStatus.DISABLED),
        actor=actor,
        action="integration.disable",
    )


async def enable_integration(
    conn: AsyncConnection, integration_id: str, *, actor: Actor = audit.CLI
) -> records.Integration:
    """Set the status to ACTIVE (a start date still in the future keeps it INACTIVE until then)."""
    return await update_integration(
        conn,
        integration_id,
        IntegrationChanges(status=IntegrationStatus.ACTIVE),
        actor=actor,
        action="integration.enable",
    )


async def destroy_integration(
    conn: AsyncConnection, integration_id: str, *, actor: Actor = audit.CLI
) -> records.Integration:
    """Delete the integration with its grants and targets; its token stops working at once.

    Returns the integration as it was. Creating it again gives a new id and a new token.
    """
    before = await _locked_integration(conn, integration_id)
    await feed.forget(conn, before.id)
    await views.forget(conn, before.id)
    for table in (
        models.table_of(models.IntegrationTarget),
        models.table_of(models.IntegrationPermission),
    ):
        await conn.execute(table.delete().where(table.c.integration_id == before.id))
    table = models.table_of(models.Integration)
    await conn.execute(table.delete().where(table.c.id == before.id))
    await audit.record(
        conn,
        actor,
        "integration.destroy",
        "integration",
        before.id,
        before=before.as_json(),
        after=None,
    )
    return before


async def _write_permissions(
    conn: AsyncConnection, integration_id: str, specs: Sequence[PermissionSpec]
) -> None:
    table = models.table_of(models.IntegrationPermission)
    await conn.execute(table.delete().where(table.c.integration_id == integration_id))
    if specs:
        await conn.execute(
            table.insert(),
            [{"integration_id": integration_id, "permission_id": str(s.id)} for s in specs],
        )


async def _write_targets(conn: AsyncConnection, integration_id: str, kinds: dict[str, str]) -> None:
    table = models.table_of(models.IntegrationTarget)
    await conn.execute(table.delete().where(table.c.integration_id == integration_id))
    if kinds:
        await conn.execute(
            table.insert(),
            [
                {"integration_id": integration_id, "target_id": t, "kind": k}
                for t, k in kinds.items()
            ],
        )
