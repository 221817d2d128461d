"""The ASGI app of /admin/graphql: admin-key authentication in front of `admin_schema`.

Every operation needs `Authorization: Bearer <admin key>`; anything else (no header, a
malformed one, an unknown key, an integration's access token) gets HTTP 401 with
`WWW-Authenticate: Bearer` and code UNAUTHENTICATED before the schema sees the request. The key
is looked up in the database on every request, so there is nothing to invalidate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http.base import BaseRequestProtocol

from gateway.access.tokens import parse_bearer
from gateway.admin.keys import authenticate_admin_key
from gateway.admin.schema import AdminContext, admin_schema
from gateway.errors import ErrorCode
from gateway.graph import http
from gateway.graphiql import ADMIN_PAGE, is_page_request
from gateway.vault import Vault

_MISSING = (
    "an admin key is required: send `Authorization: Bearer <admin key>` "
    "(create one with `gateway admin-key create`)"
)
_UNKNOWN = (
    "the bearer token is not an admin key (integration access tokens work on /graphql only, "
    "application keys on /meta/graphql)"
)


def _unauthenticated(message: str, *, invalid: bool) -> http.HTTPError:
    challenge = 'Bearer realm="gateway-admin"' + (', error="invalid_token"' if invalid else "")
    return http.HTTPError(
        401, message, ErrorCode.UNAUTHENTICATED, headers={"WWW-Authenticate": challenge}
    )


class AdminGraphQL(GraphQL[AdminContext, None]):
    """Strawberry's ASGI view with the admin key checked before any operation runs."""

    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        vault: Vault,
        *,
        graphiql: bool = True,
        graphiql_cdn: str = "",
    ) -> None:
        super().__init__(admin_schema, graphql_ide="graphiql" if graphiql else None)
        self._engine = engine
        self._vault = vault
        self._graphiql_cdn = graphiql_cdn

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return is_page_request(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return ADMIN_PAGE.response(request, cdn=self._graphiql_cdn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # No subscriptions here; refuse a websocket handshake without running anything.
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        # Refusals share the Graph API's JSON error body, in the media type the client accepts.
        media_type = http.negotiate(request.headers.get("accept"))
        try:
            response = await self._respond(request)
        except http.HTTPError as exc:
            response = http.error_response(exc, media_type)
        except HTTPException as exc:
            response = http.error_response(
                http.status_code_error(exc.status_code, exc.reason), media_type
            )
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # The GraphiQL page is static and holds no data; the key goes in its headers pane.
            if self.graphql_ide is None:
                raise http.status_code_error(404, "Not Found")
            return await self.render_graphql_ide(request)
        key = parse_bearer(request.headers.get("authorization"))
        if key is None:
            raise _unauthenticated(_MISSING, invalid=False)
        engine = self._engine()
        async with engine.connect() as conn:
            actor = await authenticate_admin_key(conn, key)
        if actor is None:
            raise _unauthenticated(_UNKNOWN, invalid=True)
        request.state.admin_key_id = actor.admin_key_id  # the rate limit trusts it from now on
        # The gateway's RequestIdMiddleware sets the id; the app also runs without it (tests).
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        context = AdminContext(engine=engine, actor=actor, request_id=request_id, vault=self._vault)
        return await self.run(request, context=context)


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
    return AdminGraphQL(engine, vault, graphiql=graphiql, graphiql_cdn=graphiql_cdn)
