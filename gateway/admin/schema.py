"""The admin API's Strawberry schema (`admin_schema`), served at /admin/graphql.

Resolvers are thin: each opens a connection (a transaction for a mutation) and calls the
service layer the CLI uses too, passing the calling admin key as the audit actor.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from gateway.access import grant
from gateway.access.permissions import BY_SLUG, CATALOG, PermissionSpec
from gateway.admin import applications, audit, records, service, sources, targets
from gateway.admin.audit import Actor
from gateway.admin.errors import AdminErrors
from gateway.db import write_transaction
from gateway.graph import enums
from gateway.graph.errors import QuietSchema
from gateway.graph.pagination import PageInfo
from gateway.vault import Vault


@dataclass
class AdminContext:
    """One admin request: the database, the admin key that called, per-request loaders."""

    engine: AsyncEngine
    actor: Actor
    request_id: str
    vault: Vault
    sources: DataLoader[str, records.Source | None] = field(init=False)
    applications: DataLoader[str, records.Application | None] = field(init=False)

    def __post_init__(self) -> None:
        async def load(ids: list[str]) -> list[records.Source | None]:
            async with self.engine.connect() as conn:
                found = {s.id: s for s in await records.load_sources(conn, ids=ids)}
            return [found.get(i) for i in ids]

        async def load_applications(ids: list[str]) -> list[records.Application | None]:
            async with self.engine.connect() as conn:
                found = {a.id: a for a in await records.load_applications(conn, ids=ids)}
            return [found.get(i) for i in ids]

        self.sources = DataLoader(load_fn=load)
        self.applications = DataLoader(load_fn=load_applications)


Info = strawberry.Info[AdminContext, None]

F = TypeVar("F", bound=Callable[..., Any])


# `@strawberry.field(description=...)` is typed as returning Any, which mypy --strict rejects
# as an untyped decorator (strawberry issue #1929); these keep the resolver's own type.
def resolver(description: str) -> Callable[[F], F]:
    """`@strawberry.field(description=...)`, typed."""
    decorator: Callable[[F], F] = strawberry.field(description=description)
    return decorator


def mutation(description: str) -> Callable[[F], F]:
    """`@strawberry.mutation(description=...)`, typed."""
    decorator: Callable[[F], F] = strawberry.mutation(description=description)
    return decorator


@asynccontextmanager
async def _reading(info: Info) -> AsyncIterator[AsyncConnection]:
    async with info.context.engine.connect() as conn:
        yield conn


@asynccontextmanager
async def _changing(info: Info) -> AsyncIterator[AsyncConnection]:
    # One transaction per mutation: the change and its audit entry commit together, and no
    # other change interleaves between what it reads and what it writes.
    async with write_transaction(info.context.engine) as conn:
        yield conn


# ---------------------------------------------------------------- types


@strawberry.type(description="A permission an integration can be granted (the fixed catalog).")
class Permission:
    id: strawberry.ID = strawberry.field(description="The same UUID in every installation.")
    slug: str = strawberry.field(description="E.g. `people:read`; accepted wherever the id is.")
    name: str
    description: str
    gates: str = strawberry.field(description="The graph types and fields it unlocks.")

    @staticmethod
    def of(spec: PermissionSpec) -> Permission:
        return Permission(
            id=strawberry.ID(str(spec.id)),
            slug=spec.slug,
            name=spec.name,
            description=spec.description,
            gates=spec.gates,
        )


@strawberry.type(description="The system a source's data comes from (Canvas, OneRoster…).")
class Provider:
    id: strawberry.ID
    name: str
    application: str = strawberry.field(description="Machine name, e.g. `canvas`, `oneroster`.")
    allows_data_sync: bool


@strawberry.type(description="The organisation that owns a source.")
class Team:
    id: strawberry.ID
    name: str
    alias: str | None


@strawberry.type(description="The real-world district or school behind a source.")
class Entity:
    id: strawberry.ID
    name: str
    type: enums.EntityType


@strawberry.type(description="How many rows of each graph type a source holds.")
class SourceCounts:
    districts: int
    schools: int
    sessions: int
    courses: int
    classes: int
    sections: int
    people: int
    enrollments: int
    agents: int


@strawberry.type(description="A connected SIS, LMS or OneRoster export.")
class Source:
    id: strawberry.ID
    name: str
    status: enums.SourceStatus
    provider: Provider
    team: Team
    entity: Entity
    created_date: datetime
    updated_date: datetime
    known_counts: strawberry.Private[dict[str, int] | None] = None

    @resolver("How many rows of each graph type it holds (for a destroyed source: what it held).")
    async def counts(self, info: Info) -> SourceCounts:
        found = self.known_counts
        if found is None:
            async with _reading(info) as conn:
                found = await sources.count_rows(conn, self.id)
        return SourceCounts(**found)

    @staticmethod
    def of(source: records.Source, counts: dict[str, int] | None = None) -> Source:
        p, t, e = source.provider, source.team, source.entity
        return Source(
            id=strawberry.ID(source.id),
            name=source.name,
            status=enums.SourceStatus(source.status),
            provider=Provider(
                id=strawberry.ID(p.id),
                name=p.name,
                application=p.application,
                allows_data_sync=p.allows_data_sync,
            ),
            team=Team(id=strawberry.ID(t.id), name=t.name, alias=t.alias),
            entity=Entity(id=strawberry.ID(e.id), name=e.name, type=enums.EntityType(e.type)),
            created_date=source.created_date,
            updated_date=source.updated_date,
            known_counts=counts,
        )


@strawberry.enum(description="What a target is.")
class TargetKind(enum.Enum):
    SCHOOL = "SCHOOL"
    COURSE = "COURSE"
    CLASS = "CLASS"


@strawberry.type(description="A school, course or class an integration can be scoped to.")
class Target:
    id: strawberry.ID
    kind: TargetKind
    name: str | None = strawberry.field(
        description="Null for a target that an import has since removed from the source."
    )
    school: str | None = strawberry.field(
        description=(
            "The name of a course's or class's school; null for a school, and for a course "
            "of the whole district."
        )
    )

    @staticmethod
    def of(target: targets.Target) -> Target:
        return Target(
            id=strawberry.ID(target.id),
            kind=TargetKind(target.kind.value),
            name=target.name,
            school=target.school,
        )


@strawberry.type(
    description=(
        "An application's access to one source. Its access token is shown only by "
        "createIntegration; changing permissions, scope, targets or status never changes it."
    )
)
class Integration:
    record: strawberry.Private[records.Integration]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.id)

    @resolver("A label for administrators; not shown to the application.")
    def name(self) -> str | None:
        return self.record.name

    @resolver("The source it reads; fixed at creation.")
    async def source(self, info: Info) -> Source:
        found = await info.context.sources.load(self.record.source_id)
        assert found is not None, "integrations.source_id is a foreign key"
        return Source.of(found)

    @resolver(
        "The application it was made for: its developer reads the token from the meta API. "
        "Null for an integration made without one."
    )
    async def application(self, info: Info) -> Application | None:
        if self.record.application_id is None:
            return None
        found = await info.context.applications.load(self.record.application_id)
        return None if found is None else Application(record=found)

    @resolver("The permissions granted, in catalog order.")
    def permissions(self) -> list[Permission]:
        return [Permission.of(BY_SLUG[slug]) for slug in self.record.permissions]

    @resolver("ALL: the whole source; SELECTED: the closure of `targets`.")
    def scope(self) -> enums.Scope:
        return enums.Scope(self.record.scope.value)

    @resolver("Ids of the schools, courses and classes it is scoped to (SELECTED only).")
    def targets(self) -> list[strawberry.ID]:
        return [strawberry.ID(t) for t in self.record.targets]

    @resolver("The same targets with their kinds and names, in the same order.")
    def target_details(self) -> list[Target]:
        return [Target.of(t) for t in self.record.target_details]

    @resolver(
        "The status graph requests see now: DISABLED wins; otherwise a start date decides "
        "(INACTIVE before it, ACTIVE from then on); otherwise the configured status."
    )
    def status(self) -> enums.IntegrationStatus:
        return enums.IntegrationStatus(self.record.status().value)

    @resolver("The status as set by an administrator.")
    def configured_status(self) -> enums.IntegrationStatus:
        return enums.IntegrationStatus(self.record.configured_status.value)

    @resolver("While in the future the integration is INACTIVE.")
    def start_date(self) -> datetime | None:
        return self.record.start_date

    @strawberry.field
    def created_date(self) -> datetime:
        return self.record.created_date

    @strawberry.field
    def updated_date(self) -> datetime:
        return self.record.updated_date


@strawberry.type(
    description=(
        "An application that integrations are made for: the permissions it requests, and a "
        "key (shown only when created or rotated) for its developer's meta API."
    )
)
class Application:
    record: strawberry.Private[records.Application]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.record.id)

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @resolver("What the application does, for administrators.")
    def description(self) -> str | None:
        return self.record.description

    @resolver(
        "The permissions it requests, in catalog order: an integration for it is granted "
        "these unless an administrator denies some. Its integrations keep what they were "
        "granted when these change."
    )
    def permissions(self) -> list[Permission]:
        return [Permission.of(BY_SLUG[slug]) for slug in self.record.permissions]

    @resolver("The integrations made for it, oldest first.")
    async def integrations(self, info: Info) -> list[Integration]:
        async with _reading(info) as conn:
            found = await records.load_integrations(conn, application_id=self.record.id)
        return [Integration(record=r) for r in found]

    @strawberry.field
    def created_date(self) -> datetime:
        return self.record.created_date

    @strawberry.field
    def updated_date(self) -> datetime:
        return self.record.updated_date


@strawberry.type(description="An application and its key for the meta API.")
class ApplicationKeyPayload:
    application: Application
    key: str = strawberry.field(
        description="The bearer key for /meta/graphql. Shown only here: give it to the "
        "application's developer now."
    )

    @staticmethod
    def of(created: applications.CreatedApplication) -> ApplicationKeyPayload:
        return ApplicationKeyPayload(
            application=Application(record=created.application), key=created.key
        )


@strawberry.type(description="A destroyed application and what became of its integrations.")
class DestroyApplicationPayload:
    application: Application = strawberry.field(description="The application as it was.")
    integrations: list[Integration] = strawberry.field(
        description="Its integrations: destroyed (withIntegrations), else kept without an "
        "application."
    )


@strawberry.type(description="An admin key (the key itself is shown only when created).")
class AdminKey:
    id: strawberry.ID
    name: str


@strawberry.type(description="One administrative change.")
class AuditEntry:
    id: strawberry.ID
    at: datetime = strawberry.field(description="When the change was committed.")
    actor: str = strawberry.field(description="`admin_api` (with an admin key) or `cli`.")
    admin_key: AdminKey | None = strawberry.field(
        description="The admin key that made the change; null for the command line."
    )
    action: str = strawberry.field(description="E.g. `integration.update`.")
    subject_type: str = strawberry.field(
        description="`integration`, `source`, `admin_key` or `application`."
    )
    subject_id: strawberry.ID | None
    before: JSON | None = strawberry.field(description="The subject before; null on creation.")
    after: JSON | None = strawberry.field(description="The subject after; null on destruction.")

    @staticmethod
    def of(entry: audit.Entry) -> AuditEntry:
        key = None
        if entry.admin_key_id is not None:
            key = AdminKey(id=strawberry.ID(entry.admin_key_id), name=entry.admin_key_name or "")
        return AuditEntry(
            id=strawberry.ID(entry.id),
            at=entry.at,
            actor=entry.actor,
            admin_key=key,
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=None if entry.subject_id is None else strawberry.ID(entry.subject_id),
            before=JSON(entry.before),
            after=JSON(entry.after),
        )


@strawberry.type(description="A page of the audit log, newest first.")
class AuditLog:
    entries: list[AuditEntry]
    page_info: PageInfo


@strawberry.type(description="A destroyed source and the integrations destroyed with it.")
class DestroySourcePayload:
    source: Source = strawberry.field(description="The source as it was, with what it held.")
    integrations: list[Integration] = strawberry.field(
        description="Its integrations as they were; their tokens are refused from now on."
    )


@strawberry.type(description="A new integration and its access token.")
class CreateIntegrationPayload:
    integration: Integration
    access_token: str = strawberry.field(
        description="The bearer token for /graphql. Shown only here: store it now."
    )


# ---------------------------------------------------------------- inputs


@strawberry.input(description="A new source.")
class CreateSourceInput:
    name: str
    provider_name: str = "OneRoster"
    provider_application: str = strawberry.field(
        default="oneroster", description="Machine name of the provider, e.g. `canvas`."
    )
    team_name: str | None = strawberry.field(default=None, description="Defaults to `name`.")
    entity_name: str | None = strawberry.field(default=None, description="Defaults to `name`.")
    entity_type: enums.EntityType = enums.EntityType.DISTRICT


@strawberry.input(description="A new integration. The source cannot be changed later.")
class CreateIntegrationInput:
    source_id: strawberry.ID
    scope: enums.Scope
    permissions: list[str] = strawberry.field(
        default_factory=list, description="Slugs (`people:read`) or UUIDs of the catalog."
    )
    targets: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description="Schools, courses or classes of the source; required by SELECTED only.",
    )
    status: enums.IntegrationStatus = enums.IntegrationStatus.ACTIVE
    start_date: datetime | None = strawberry.field(
        default=None, description="INACTIVE until then, ACTIVE from then on (UTC if no zone)."
    )
    name: str | None = None
    application_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The application it is for. It is granted what the application requests, minus "
            "`deny`; `permissions`, when given, must be among those. Its developer reads the "
            "token from the meta API."
        ),
    )
    deny: list[str] = strawberry.field(
        default_factory=list,
        description="With `applicationId`: requested permissions (slugs or UUIDs) not to grant.",
    )


@strawberry.input(
    description=(
        "Changes to an integration; an omitted (or null) field stays as it is, except that "
        "`startDate: null` clears the start date and `name: null` clears the name. Lists "
        "replace the whole set. Switching `scope` to ALL without `targets` clears the targets. "
        "There is no source field: an integration's source never changes."
    )
)
class UpdateIntegrationInput:
    permissions: list[str] | None = None
    scope: enums.Scope | None = None
    targets: list[strawberry.ID] | None = None
    status: enums.IntegrationStatus | None = None
    start_date: datetime | None = strawberry.UNSET
    name: str | None = strawberry.UNSET

    def changes(self) -> service.IntegrationChanges:
        return service.IntegrationChanges(
            permissions=self.permissions,
            scope=None if self.scope is None else grant.Scope(self.scope.value),
            targets=self.targets,
            status=None if self.status is None else grant.IntegrationStatus(self.status.value),
            start_date=service.KEEP if self.start_date is strawberry.UNSET else self.start_date,
            name=service.KEEP if self.name is strawberry.UNSET else self.name,
        )


@strawberry.input(description="A new application.")
class CreateApplicationInput:
    name: str
    description: str | None = None
    permissions: list[str] = strawberry.field(
        default_factory=list,
        description="The permissions it requests: slugs (`people:read`) or UUIDs of the catalog.",
    )


@strawberry.input(
    description=(
        "Changes to an application; an omitted (or null) field stays as it is. `permissions` "
        "replaces the whole set; the integrations made for it keep what they were granted."
    )
)
class UpdateApplicationInput:
    name: str | None = None
    description: str | None = strawberry.field(
        default=None, description="An empty string clears it."
    )
    permissions: list[str] | None = None


# ---------------------------------------------------------------- roots


@strawberry.type
class Query:
    @resolver("The permission catalog.")
    def permissions(self) -> list[Permission]:
        return [Permission.of(spec) for spec in CATALOG]

    @resolver("Every source, oldest first.")
    async def sources(self, info: Info) -> list[Source]:
        async with _reading(info) as conn:
            return [Source.of(s) for s in await records.load_sources(conn)]

    @resolver("One source, or null.")
    async def source(self, info: Info, id: strawberry.ID) -> Source | None:
        source_id = service.canonical_uuid(id, "source")
        async with _reading(info) as conn:
            found = await records.load_sources(conn, ids=[source_id])
        return Source.of(found[0]) if found else None

    @resolver(
        "The schools, then the courses, then the classes of a source: the ids `targets` "
        "takes. `kind` keeps one kind, `search` those whose name contains it (any case)."
    )
    async def targets(
        self,
        info: Info,
        source_id: strawberry.ID,
        kind: TargetKind | None = None,
        search: str | None = None,
    ) -> list[Target]:
        async with _reading(info) as conn:
            source = await service.require_source(conn, source_id)
            found = await targets.list_targets(
                conn,
                source,
                kind=None if kind is None else targets.TargetKind(kind.value),
                search=search,
            )
        return [Target.of(t) for t in found]

    @resolver("Every integration (or those of one source), oldest first.")
    async def integrations(
        self, info: Info, source_id: strawberry.ID | None = None
    ) -> list[Integration]:
        wanted = None if source_id is None else service.canonical_uuid(source_id, "source")
        async with _reading(info) as conn:
            found = await records.load_integrations(conn, source_id=wanted)
        return [Integration(record=r) for r in found]

    @resolver("One integration, or null.")
    async def integration(self, info: Info, id: strawberry.ID) -> Integration | None:
        integration_id = service.canonical_uuid(id, "integration")
        async with _reading(info) as conn:
            found = await records.load_integrations(conn, ids=[integration_id])
        return Integration(record=found[0]) if found else None

    @resolver("Every application, oldest first.")
    async def applications(self, info: Info) -> list[Application]:
        async with _reading(info) as conn:
            return [Application(record=a) for a in await records.load_applications(conn)]

    @resolver("One application, or null.")
    async def application(self, info: Info, id: strawberry.ID) -> Application | None:
        application_id = service.canonical_uuid(id, "application")
        async with _reading(info) as conn:
            found = await records.load_applications(conn, ids=[application_id])
        return Application(record=found[0]) if found else None

    @resolver(
        "Administrative changes, newest first. `integrationId` keeps those about one "
        "integration, `action` those of one kind (e.g. `integration.update`)."
    )
    async def audit_log(
        self,
        info: Info,
        integration_id: strawberry.ID | None = None,
        action: str | None = None,
        first: int = audit.DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> AuditLog:
        subject = (
            None
            if integration_id is None
            else service.canonical_uuid(integration_id, "integration")
        )
        async with _reading(info) as conn:
            page = await audit.list_entries(
                conn, subject_id=subject, action=action, first=first, after=after
            )
        return AuditLog(
            entries=[AuditEntry.of(e) for e in page.entries],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=False,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
        )

    @resolver("The admin key this request presented.")
    def admin_key(self, info: Info) -> AdminKey:
        actor = info.context.actor
        assert actor.admin_key_id is not None, "the admin app authenticates every operation"
        return AdminKey(id=strawberry.ID(actor.admin_key_id), name=actor.admin_key_name or "")


@strawberry.type
class Mutation:
    @mutation(
        "Create a source with its provider, team and entity. Its name must be one no source "
        "has: an import finds its source by name."
    )
    async def create_source(self, info: Info, input: CreateSourceInput) -> Source:
        async with _changing(info) as conn:
            created = await service.create_source(
                conn,
                input.name,
                provider_name=input.provider_name,
                provider_application=input.provider_application,
                team_name=input.team_name,
                entity_name=input.entity_name,
                entity_type=input.entity_type.value,
                actor=info.context.actor,
            )
            (source,) = await records.load_sources(conn, ids=[created.id])
        return Source.of(source)

    @mutation("Create an integration; its token is returned only here.")
    async def create_integration(
        self, info: Info, input: CreateIntegrationInput
    ) -> CreateIntegrationPayload:
        async with _changing(info) as conn:
            created = await service.create_integration(
                conn,
                source_id=input.source_id,
                scope=grant.Scope(input.scope.value),
                permissions=input.permissions,
                targets=input.targets,
                status=grant.IntegrationStatus(input.status.value),
                start_date=input.start_date,
                name=input.name,
                application_id=input.application_id,
                deny=input.deny,
                vault=info.context.vault,
                actor=info.context.actor,
            )
        return CreateIntegrationPayload(
            integration=Integration(record=created.integration), access_token=created.token
        )

    @mutation("Change permissions, scope, targets, status or start date; the token stays.")
    async def update_integration(
        self, info: Info, id: strawberry.ID, input: UpdateIntegrationInput
    ) -> Integration:
        async with _changing(info) as conn:
            updated = await service.update_integration(
                conn, id, input.changes(), actor=info.context.actor
            )
        return Integration(record=updated)

    @mutation("Refuse its graph requests from the next request on.")
    async def disable_integration(self, info: Info, id: strawberry.ID) -> Integration:
        async with _changing(info) as conn:
            updated = await service.disable_integration(conn, id, actor=info.context.actor)
        return Integration(record=updated)

    @mutation("Set the status to ACTIVE again (a future start date waits).")
    async def enable_integration(self, info: Info, id: strawberry.ID) -> Integration:
        async with _changing(info) as conn:
            updated = await service.enable_integration(conn, id, actor=info.context.actor)
        return Integration(record=updated)

    @mutation(
        "Delete an integration; its token stops working at once. Returns it as it was. "
        "Creating it again gives a new token."
    )
    async def destroy_integration(self, info: Info, id: strawberry.ID) -> Integration:
        async with _changing(info) as conn:
            destroyed = await service.destroy_integration(conn, id, actor=info.context.actor)
        return Integration(record=destroyed)

    @mutation(
        "Destroy a source: its integrations (their tokens are refused from the next request "
        "on), every graph row it holds, its team and entity. Returns it as it was. There is "
        "no undo."
    )
    async def destroy_source(self, info: Info, id: strawberry.ID) -> DestroySourcePayload:
        async with _changing(info) as conn:
            destroyed = await sources.destroy_source(conn, id, actor=info.context.actor)
        # The integrations' `source` field would look the source up: it is gone.
        info.context.sources.prime(destroyed.source.id, destroyed.source)
        return DestroySourcePayload(
            source=Source.of(destroyed.source, destroyed.counts),
            integrations=[Integration(record=r) for r in destroyed.integrations],
        )

    @mutation("Create an application requesting some permissions; its key is returned only here.")
    async def create_application(
        self, info: Info, input: CreateApplicationInput
    ) -> ApplicationKeyPayload:
        async with _changing(info) as conn:
            created = await applications.create_application(
                conn,
                input.name,
                description=input.description,
                permissions=input.permissions,
                actor=info.context.actor,
            )
        return ApplicationKeyPayload.of(created)

    @mutation(
        "Change an application's name, description or requested permissions; its "
        "integrations keep what they were granted."
    )
    async def update_application(
        self, info: Info, id: strawberry.ID, input: UpdateApplicationInput
    ) -> Application:
        changes = applications.ApplicationChanges(
            name=input.name, description=input.description, permissions=input.permissions
        )
        async with _changing(info) as conn:
            updated = await applications.update_application(
                conn, id, changes, actor=info.context.actor
            )
        return Application(record=updated)

    @mutation("Give an application a new key (returned only here); the old one stops working.")
    async def rotate_application_key(self, info: Info, id: strawberry.ID) -> ApplicationKeyPayload:
        async with _changing(info) as conn:
            created = await applications.rotate_application_key(conn, id, actor=info.context.actor)
        return ApplicationKeyPayload.of(created)

    @mutation(
        "Delete an application; its key stops working at once. Its integrations keep working "
        "without an application, unless `withIntegrations` destroys them too."
    )
    async def destroy_application(
        self, info: Info, id: strawberry.ID, with_integrations: bool = False
    ) -> DestroyApplicationPayload:
        async with _changing(info) as conn:
            destroyed = await applications.destroy_application(
                conn, id, with_integrations=with_integrations, actor=info.context.actor
            )
        info.context.applications.prime(destroyed.application.id, destroyed.application)
        return DestroyApplicationPayload(
            application=Application(record=destroyed.application),
            integrations=[Integration(record=r) for r in destroyed.integrations],
        )


admin_schema = QuietSchema(query=Query, mutation=Mutation, extensions=[AdminErrors])
