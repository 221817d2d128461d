"""A GraphQL endpoint behind a bearer key: the shared front of /admin/graphql and /meta/graphql.

Every operation needs `Authorization: Bearer <key>`; anything else (no header, a malformed one,
a key the endpoint does not know) gets HTTP 401 with `WWW-Authenticate: Bearer` and code
UNAUTHENTICATED before the schema sees the request. The key is looked up in the database on every
request, so a destroyed or rotated key is refused from the next request on. Refusals share the
Graph API's JSON error body, in the media type the client accepts; websockets are refused.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

from cross_web import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema import BaseSchema

from gateway.access.tokens import parse_bearer
from gateway.errors import ErrorCode
from gateway.graph import http
from gateway.graphiql import Page, is_page_request
from gateway.middleware import new_request_id
from gateway.vault import Vault

ContextT = TypeVar("ContextT")


class KeyedGraphQL(GraphQL[ContextT, None], Generic[ContextT]):
    """Strawberry's ASGI view with a bearer key checked before any operation runs.

    A subclass names its page, its realm and its two refusals, and builds the context of a key
    (None when the key is not one of its own)."""

    page: Page
    realm: str
    missing: str  # the message when no key was sent
    unknown: str  # the message when the key is not one of this endpoint's

    def __init__(
        self,
        schema: BaseSchema,
        engine: Callable[[], AsyncEngine],
        vault: Vault,
        *,
        graphiql: bool = True,
        graphiql_cdn: str = "",
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self._engine = engine
        self._vault = vault
        self._graphiql_cdn = graphiql_cdn

    @abstractmethod
    async def context_for(
        self, request: Request, engine: AsyncEngine, key: str, request_id: str
    ) -> ContextT | None:
        """The context of an operation sent with `key`, or None to refuse it."""

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return is_page_request(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return self.page.response(request, cdn=self._graphiql_cdn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # No subscriptions here; refuse a websocket handshake without running anything.
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

    def _unauthenticated(self, message: str, *, invalid: bool) -> http.HTTPError:
        challenge = f'Bearer realm="{self.realm}"' + (', error="invalid_token"' if invalid else "")
        return http.HTTPError(
            401, message, ErrorCode.UNAUTHENTICATED, headers={"WWW-Authenticate": challenge}
        )

    async def _respond(self, request: Request) -> Response:
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # The GraphiQL page is static and holds no data; the key goes in its headers pane.
            if self.graphql_ide is None:
                raise http.status_code_error(404, "Not Found")
            return await self.render_graphql_ide(request)
        key = parse_bearer(request.headers.get("authorization"))
        if key is None:
            raise self._unauthenticated(self.missing, invalid=False)
        engine = self._engine()
        # The gateway's RequestIdMiddleware sets the id; the app also runs without it (tests).
        request_id = getattr(request.state, "request_id", None) or new_request_id()
        context = await self.context_for(request, engine, key, request_id)
        if context is None:
            raise self._unauthenticated(self.unknown, invalid=True)
        return await self.run(request, context=context)
