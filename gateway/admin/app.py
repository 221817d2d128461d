"""The ASGI app of /admin/graphql: admin-key authentication in front of `admin_schema`.

Every operation needs `Authorization: Bearer <admin key>`; anything else (no header, a
malformed one, an unknown key, an integration's access token, an application key) gets HTTP 401
with `WWW-Authenticate: Bearer` and code UNAUTHENTICATED before the schema sees the request (see
`gateway.keyed`). The key is looked up in the database on every request, so there is nothing to
invalidate.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from gateway.admin.keys import authenticate_admin_key
from gateway.admin.schema import AdminContext, admin_schema
from gateway.graphiql import ADMIN_PAGE
from gateway.keyed import KeyedGraphQL
from gateway.vault import Vault


class AdminGraphQL(KeyedGraphQL[AdminContext]):
    """Strawberry's ASGI view with the admin key checked before any operation runs."""

    page = ADMIN_PAGE
    realm = "gateway-admin"
    missing = (
        "an admin key is required: send `Authorization: Bearer <admin key>` "
        "(create one with `gateway admin-key create`)"
    )
    unknown = (
        "the bearer token is not an admin key (integration access tokens work on /graphql only, "
        "application keys on /meta/graphql)"
    )

    async def context_for(
        self, request: Request, engine: AsyncEngine, key: str, request_id: str
    ) -> AdminContext | None:
        async with engine.connect() as conn:
            actor = await authenticate_admin_key(conn, key)
        if actor is None:
            return None
        request.state.admin_key_id = actor.admin_key_id  # the rate limit trusts it from now on
        return AdminContext(engine=engine, actor=actor, request_id=request_id, vault=self._vault)


def create_admin_app(
    engine: Callable[[], AsyncEngine],
    vault: Vault,
    *,
    graphiql: bool = True,
    graphiql_cdn: str = "",
) -> AdminGraphQL:
    """The ASGI app to route at /admin/graphql; `engine()` returns the app's database engine
    and `vault` encrypts the tokens of applications' integrations.

    `engine` is called per request, so the engine may be created later (in a lifespan).
    Mount it as `Route("/admin/graphql", create_admin_app(...))`.
    """
    return AdminGraphQL(admin_schema, engine, vault, graphiql=graphiql, graphiql_cdn=graphiql_cdn)
