"""The HTTP view of the Graph API: Strawberry's ASGI view with our context and token lookup."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema

from gateway.access.tokens import parse_bearer
from gateway.authentication import load_grant
from gateway.db import RequestDB
from gateway.graph.context import Context
from gateway.graph.errors import shape_error
from gateway.settings import Settings


class GraphView(GraphQL[Context, None]):
    """Builds each request's Context: its connection, request id and the caller's Grant.

    The token is only looked up here; the decision (401, 403, permissions) is the Guard's.
    """

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=False,
        )
        self.settings = settings

    async def get_context(self, request: Any, response: Any) -> Context:
        db: RequestDB = request.state.db
        header = request.headers.get("authorization")
        token = parse_bearer(header)
        grant = None
        if token is not None:
            grant = await load_grant(await db.connection(), token)
        return Context(
            request=request,
            response=response,
            settings=self.settings,
            db=db,
            request_id=request.state.request_id,
            token=token if grant is not None else None,
            token_sent=header is not None,
            grant=grant,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return await super().render_graphql_ide(request)

    async def process_result(self, request: Any, result: Any) -> Any:
        # Errors raised outside the operation (an extension that fails) skip ErrorShaping;
        # shape them here too so nothing unmasked reaches the client.
        if result.errors:
            request_id = request.state.request_id
            result.errors = [shape_error(error, request_id) for error in result.errors]
        return await super().process_result(request, result)
