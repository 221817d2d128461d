"""The ASGI app of /meta/graphql: application-key authentication in front of `meta_schema`.

Every operation needs `Authorization: Bearer <application key>`; anything else (no header, a
malformed one, an unknown key, an integration's access token, an admin key) gets HTTP 401 with
`WWW-Authenticate: Bearer` and code UNAUTHENTICATED before the schema sees the request (see
`gateway.keyed`). The key is looked up by its digest on every request, so a rotated key is
refused from the next one on.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from gateway.admin.applications import authenticate_application_key
from gateway.graphiql import META_PAGE
from gateway.keyed import KeyedGraphQL
from gateway.limits import Limits
from gateway.meta.schema import MetaContext, build_meta_schema
from gateway.vault import Vault


class MetaGraphQL(KeyedGraphQL[MetaContext]):
    """Strawberry's ASGI view with the application key checked before any operation runs."""

    page = META_PAGE
    realm = "gateway-meta"
    missing = (
        "an application key is required: send `Authorization: Bearer <application key>` "
        "(an administrator creates one with `gateway applications create`)"
    )
    unknown = (
        "the bearer token is not an application key (integration access tokens work on /graphql, "
        "admin keys on /admin/graphql)"
    )

    async def context_for(
        self, request: Request, engine: AsyncEngine, key: str, request_id: str
    ) -> MetaContext | None:
        async with engine.connect() as conn:
            application = await authenticate_application_key(conn, key)
        if application is None:
            return None
        return MetaContext(
            engine=engine, vault=self._vault, application=application, request_id=request_id
        )


def create_meta_app(
    engine: Callable[[], AsyncEngine],
    vault: Vault,
    *,
    graphiql: bool = True,
    graphiql_cdn: str = "",
    limits: Limits | None = None,
) -> MetaGraphQL:
    """The ASGI app to route at /meta/graphql; `engine()` returns the app's database engine,
    `vault` decrypts the tokens it returns, and `limits` (the defaults when None) bound each
    operation as on the Graph API."""
    schema = build_meta_schema(limits or Limits.defaults())
    return MetaGraphQL(schema, engine, vault, graphiql=graphiql, graphiql_cdn=graphiql_cdn)
