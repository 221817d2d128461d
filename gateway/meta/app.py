"""The ASGI app of /meta/graphql: application-key authentication in front of `meta_schema`.

Every operation needs `Authorization: Bearer <application key>`; anything else (no header, a
malformed one, an unknown key, an integration's access token, an admin key) gets HTTP 401 with
`WWW-Authenticate: Bearer` and code UNAUTHENTICATED before the schema sees the request. The key
is looked up by its digest on every request, so a rotated key is refused from the next one on.
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
from gateway.admin.applications import authenticate_application_key
from gateway.errors import ErrorCode
from gateway.graph import http
from gateway.graphiql import META_PAGE, is_page_request
from gateway.meta.schema import MetaContext, meta_schema
from gateway.vault import Vault

_MISSING = (
    "an application key is required: send `Authorization: Bearer <application key>` "
    "(an administrator creates one with `gateway applications create`)"
)
_UNKNOWN = (
    "the bearer token is not an application key (integration access tokens work on /graphql, "
    "admin keys on /admin/graphql)"
)


def _unauthenticated(message: str, *, invalid: bool) -> http.HTTPError:
    challenge = 'Bearer realm="gateway-meta"' + (', error="invalid_token"' if invalid else "")
    return http.HTTPError(
        401, message, ErrorCode.UNAUTHENTICATED, headers={"WWW-Authenticate": challenge}
    )


class MetaGraphQL(GraphQL[MetaContext, None]):
    """Strawberry's ASGI view with the application key checked before any operation runs."""

    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        vault: Vault,
        *,
        graphiql: bool = True,
        graphiql_cdn: str = "",
    ) -> None:
        super().__init__(meta_schema, graphql_ide="graphiql" if graphiql else None)
        self._engine = engine
        self._vault = vault
        self._graphiql_cdn = graphiql_cdn

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return is_page_request(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return META_PAGE.response(request, cdn=self._graphiql_cdn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
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
            application = await authenticate_application_key(conn, key)
        if application is None:
            raise _unauthenticated(_UNKNOWN, invalid=True)
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
        context = MetaContext(
            engine=engine, vault=self._vault, application=application, request_id=request_id
        )
        return await self.run(request, context=context)


def create_meta_app(
    engine: Callable[[], AsyncEngine],
    vault: Vault,
    *,
    graphiql: bool = True,
    graphiql_cdn: str = "",
) -> MetaGraphQL:
    """The ASGI app to route at /meta/graphql; `engine()` returns the app's database engine
    and `vault` decrypts the tokens it returns."""
    return MetaGraphQL(engine, vault, graphiql=graphiql, graphiql_cdn=graphiql_cdn)
