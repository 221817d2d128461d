"""The meta API's Strawberry schema (`meta_schema`), served at /meta/graphql.

An application's developer asks it for the application itself and the integrations that
administrators made for it, each with its access token: that is how a new district's token
reaches the developer without a person copying it. Every answer is limited to the application
whose key made the request (`MetaContext.application`).
"""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.grant import IntegrationStatus
from gateway.admin import records
from gateway.admin.errors import AdminErrors
from gateway.admin.schema import resolver
from gateway.errors import QueryTooComplex
from gateway.graph import enums
from gateway.graph.errors import QuietSchema
from gateway.graph.pagination import Connection, connection, page_args
from gateway.limits import Limits, RequestLimits
from gateway.meta import integrations
from gateway.meta.integrations import Application, Integration
from gateway.vault import Vault

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass
class MetaContext:
    """One meta request: the database, the vault, and the application whose key called."""

    engine: AsyncEngine
    vault: Vault
    application: records.Application
    request_id: str
    # Integrations this operation may still list: each costs a decryption and a few dozen
    # fields, so aliased pages must not multiply the largest one.
    rows_left: int = MAX_PAGE_SIZE


Info = strawberry.Info[MetaContext, None]


@strawberry.input(description="Which integrations to list; an omitted field keeps them all.")
class IntegrationFilter:
    statuses: list[enums.IntegrationStatus] | None = strawberry.field(
        default=None,
        description="Only those whose status (as graph requests see it now) is one of these.",
    )


@strawberry.type(description="The meta API: what an application's key may read about itself.")
class Query:
    @resolver("The application whose key made this request.")
    async def application(self, info: Info) -> Application:
        async with info.context.engine.connect() as conn:
            return await integrations.load_application(conn, info.context.application)

    @resolver(
        "The integrations administrators made for this application, in id order, each "
        "with its access token. `first` defaults to 100 and is at most 1000."
    )
    async def integrations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: IntegrationFilter | None = None,
    ) -> Connection[Integration]:
        page = page_args("integrations", first, after, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if page.first > info.context.rows_left:
            raise QueryTooComplex(
                f"The `integrations` fields of one operation may list {MAX_PAGE_SIZE:,} "
                "integrations in all (their `first`, 100 when omitted, added up); ask for the "
                "next page with `after` in another request.",
                limit="integrationsPerOperation",
                maximum=MAX_PAGE_SIZE,
            )
        info.context.rows_left -= page.first
        statuses = None
        if filter is not None and filter.statuses is not None:
            statuses = [IntegrationStatus(s.value) for s in filter.statuses]
        context = info.context
        condition = integrations.matching(context.application.id, statuses, integrations.now_utc())
        async with context.engine.connect() as conn:
            application = await integrations.load_application(conn, context.application)
            rows = await integrations.load_page(
                conn,
                application,
                condition,
                first=page.first,
                after=page.after,
                vault=context.vault,
            )

        async def counter() -> int:
            async with context.engine.connect() as conn:
                return await integrations.count(conn, condition)

        return connection("integrations", rows, page.first, counter)


def build_meta_schema(limits: Limits) -> QuietSchema:
    """The meta API's schema under the Graph API's limits (document size, tokens, depth,
    aliases, cost; GATEWAY_MAX_*): a key holder cannot ask for a thousand aliased pages of
    decrypted tokens. Extensions are factories, never shared instances (DESIGN §8)."""
    return QuietSchema(query=Query, extensions=[AdminErrors, lambda: RequestLimits(limits)])


meta_schema = build_meta_schema(Limits.defaults())  # at the default limits: the SDL, the tests
