"""The HTTP view of the Graph API: Strawberry's ASGI view with our context and token lookup,
speaking GraphQL over HTTP (`gateway.graph.http`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import orjson
import sqlalchemy as sa
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from gateway import graphiql
from gateway.access.tokens import digest_once, parse_bearer
from gateway.compiled.dispatch import (
    Prefetched,
    answer_clean,
    answer_prefetched,
    grant_and_clean,
    note_clean,
    note_served_compiled,
)
from gateway.errors import ErrorCode, RequestTimeout
from gateway.graph import batch, http
from gateway.graph.context import Context
from gateway.graph.errors import shape_error
from gateway.graph.persisted import PersistedQueries
from gateway.logs import CLIENT_GONE
from gateway.middleware import replaying
from gateway.request_db import RequestDB
from gateway.settings import Settings

log = logging.getLogger("gateway.errors")


def _is_timeout(error: GraphQLError) -> bool:
    return (error.extensions or {}).get("limit") == "requestTimeout"


def _timed_out(db: RequestDB) -> http.HTTPError:
    """The refusal of a request that ran past its deadline (GATEWAY_REQUEST_TIMEOUT_SECONDS)."""
    refusal = RequestTimeout(db.timeout or 0.0)
    extensions = {k: v for k, v in refusal.extensions.items() if k != "code"}
    return http.HTTPError(400, refusal.message, refusal.code, extensions=extensions)


def _data_response(data: dict[str, Any], media_type: str) -> Response:
    """The response to an operation answered without an error, in `media_type`: what
    `create_response` makes of `process_result`'s body for it."""
    return Response(
        orjson.dumps({"data": data}), status_code=200, media_type=http.content_type(media_type)
    )


class _Adapter(StarletteRequestAdapter):
    """Strawberry's view of a request, keeping the request itself (for `parse_http_body`)."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.starlette_request = request


class GraphView(GraphQL[Context, None]):
    """Builds each request's Context: its connection, request id and the caller's Grant.

    The token is only looked up here; the decision (401, 403, permissions) is the Guard's.
    `handle` is the endpoint: every outcome, refusals included, is a GraphQL JSON body.
    """

    request_adapter_class = _Adapter

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=False,
        )
        self.settings = settings
        self.persisted_queries = PersistedQueries(
            settings.persisted_queries_max, settings.max_document_bytes
        )

    async def handle(self, request: Request) -> Response:
        """Answer one HTTP request to the Graph API."""
        media_type = http.negotiate(request.headers.get("accept"))
        request.state.media_type = media_type
        try:
            return await self._run(request)
        except Exception as exc:
            return self._failure(exc, request.state.db, request.state.request_id, media_type)

    async def answer_known(self, scope: Scope, body: bytes) -> Response | None:
        """The response to a POST (its `body`) or a GET whose one operation's answer was proven
        clean for its token (`grant_and_clean` reads it with the grant, in one statement), made
        from the ASGI scope alone: what `handle` answers it with, without Starlette's request
        and Strawberry's view around it, which cost a small page's answer about as much as its
        SQL. None for every other request (no bearer token, a body or URL `handle` refuses, a
        batch, a browser's GET of the GraphiQL page, an answer not known), which `handle` then
        answers, with the grant read here (`get_context`)."""
        state = scope["state"]
        authorization = content_type = accept = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's `get` reads
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
            elif name == b"accept" and accept is None:
                accept = value.decode("latin-1")
        token = parse_bearer(authorization)
        if token is None:
            return None
        try:
            parsed, resolved = self._sent_operation(Request(scope), content_type, body)
        except Exception:
            return None  # `handle` says what is wrong with it
        if resolved is None:
            return None
        media_type = http.negotiate(accept)
        db: RequestDB = state["db"]
        try:
            grant, prefetched = await grant_and_clean(
                db,
                self.settings,
                token,
                digest_once(scope, token),
                (resolved.query, resolved.operation_name, resolved.variables),
            )
        except Exception as exc:
            return self._failure(exc, db, state["request_id"], media_type)
        if grant is not None:
            self.persisted_queries.register(resolved)
        if prefetched is None:
            state["parsed"] = parsed
            state["grant_read"] = (token, grant)
            return None
        try:
            if grant is not None:
                state["integration_id"] = grant.integration_id
            note_served_compiled(state, prefetched.operation_name)
            return _data_response(prefetched.data, media_type)
        except Exception as exc:  # as `handle` would answer it
            return self._failure(exc, db, state["request_id"], media_type)

    def _failure(self, exc: Exception, db: RequestDB, request_id: str, media_type: str) -> Response:
        """The response to a request whose handling raised `exc`."""
        if isinstance(exc, http.HTTPError):
            return http.error_response(exc, media_type)
        if isinstance(exc, HTTPException):
            return http.error_response(
                http.status_code_error(exc.status_code, exc.reason), media_type
            )
        if isinstance(exc, RequestTimeout):
            # The token lookup itself ran past the deadline (SQLite's, on the driver).
            return http.error_response(_timed_out(db), media_type)
        if isinstance(exc, sa.exc.DBAPIError):
            remaining = db.remaining()
            if remaining is not None and remaining <= 0:
                # The database stopped the token lookup itself (PostgreSQL's
                # statement_timeout).
                return http.error_response(_timed_out(db), media_type)
        return self._unexpected(request_id, media_type, exc)

    async def _run(self, request: Request) -> Response:
        """Strawberry's `run`, but a clean answer read with the token's grant (`get_context`)
        is the response at once: such an operation was parsed, validated, judged by the
        limits and the guard and answered without an error for this very grant before."""
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        prefetched: Prefetched | None = request.state.prefetched
        if prefetched is None:
            request.state.sub_response = sub_response  # for `run`, with this context
            return await self.run(request, context=context)
        result = ExecutionResult(data=answer_prefetched(context, prefetched), errors=None)
        return self.create_response(await self.process_result(request, result), sub_response)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # `_run` made the request's own already and gave it to its context; a batch's
        # operations each get a new one
        stashed = getattr(request.state, "sub_response", None)
        if stashed is not None:
            del request.state.sub_response
            return cast("Response", stashed)
        return await super().get_sub_response(request)

    def _unexpected(self, request_id: str, media_type: str, exc: Exception) -> Response:
        """A masked 500 for an error nothing expected, logged with the request id."""
        log.error(
            "unexpected error serving the request (request id %s)",
            request_id,
            exc_info=exc,
            extra={"request_id": request_id},
        )
        error = http.HTTPError(
            500,
            f"Internal server error. Quote request id {request_id} when reporting it.",
            ErrorCode.INTERNAL_SERVER_ERROR,
        )
        return http.error_response(error, media_type, request_id)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return graphiql.is_page_request(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.GRAPH_PAGE.response(request, cdn=self.settings.graphiql_cdn)

    async def get_context(self, request: Any, response: Any) -> Context:
        db: RequestDB = request.state.db
        header = request.headers.get("authorization")
        token = parse_bearer(header)
        grant = None
        request.state.prefetched = None
        read = request.scope["state"].pop("grant_read", None)  # by `answer_known`
        if token is not None and read is not None and read[0] == token:
            grant = read[1]
        elif token is not None:
            grant, request.state.prefetched = await grant_and_clean(
                db,
                self.settings,
                token,
                digest_once(request.scope, token),
                await self._single_operation(request),
            )
        if grant is not None:
            request.state.integration_id = grant.integration_id
        # The sub-response is never sent; `create_response` reads the negotiated type here.
        response.media_type = request.state.media_type
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

    async def _single_operation(
        self, request: Request
    ) -> tuple[str | None, str | None, dict[str, Any] | None] | None:
        """(query, operation name, variables) of the one operation this request sends, read as
        `parse_http_body` (which gets what is parsed here) and `execute_single` will read them,
        for `grant_and_clean`; None when it is anything else (a batch, the GraphiQL page, a
        request they will refuse)."""
        try:
            if request.method == "POST":
                content_type, body = request.headers.get("content-type"), await request.body()
            else:
                content_type, body = None, b""
            parsed, resolved = self._sent_operation(request, content_type, body)
        except Exception:
            return None  # the full path says what is wrong with it
        if parsed is not None:
            request.state.parsed = parsed
        if resolved is None:
            return None
        return resolved.query, resolved.operation_name, resolved.variables

    def _sent_operation(
        self, request: Request, content_type: str | None, body: bytes
    ) -> tuple[GraphQLRequestData | list[GraphQLRequestData] | None, GraphQLRequestData | None]:
        """What `request` sends (`_parse`; a POST's `body`, of `content_type`) and, when that is
        one operation, the operation with its persisted query resolved: (None, None) for a
        request that sends none to answer (another method, a browser's GET of the GraphiQL
        page), (the batch, None) for a batch. Raises for what `handle` refuses (HTTPError)."""
        if request.method == "POST":
            parsed = self._parse("POST", content_type, body, {})
        elif request.method == "GET" and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            parsed = self._parse("GET", None, b"", request.query_params)
        else:
            return None, None
        if isinstance(parsed, list):
            return parsed, None
        return parsed, self.persisted_queries.resolve(parsed)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if isinstance(request, _Adapter):
            parsed = getattr(request.starlette_request.state, "parsed", None)
            if parsed is not None:
                return cast("GraphQLRequestData | list[GraphQLRequestData]", parsed)
        body = b"" if request.method == "GET" else await request.get_body()
        return self._parse(request.method, request.content_type, body, request.query_params)

    def _parse(
        self, method: str, content_type: str | None, body: bytes, query_params: Mapping[str, Any]
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The operation or the batch a request sends; HTTPError for a malformed one."""
        if method == "GET":
            data: Any = http.query_parameters(query_params)
        else:
            http.require_json_body(content_type)
            if not body.strip():
                raise http.HTTPError(400, "The request body is empty: POST a JSON object.")
            data = http.decode_json(body, "request body")
            if isinstance(data, list):
                return list(batch.operations(data, self.settings.max_batch))
        query, variables, operation_name, extensions = http.request_parameters(data)
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=extensions,
        )

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )

        request.state.batch = True  # its operations read one snapshot (`run_plans`)

        async def run_one(own: Context, data: GraphQLRequestData) -> ExecutionResult:
            return await self.execute_single(
                request, request_adapter, own.response, own, root_value, data
            )

        return await batch.execute(
            request,
            context,
            sub_response,
            request_data,
            lambda: self.get_sub_response(request),
            run_one,
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        request.state.operation_name = request_data.operation_name
        request_data = self.persisted_queries.resolve(request_data)
        if context.grant is not None:
            self.persisted_queries.register(request_data)
        data = await answer_clean(
            context, request_data.query, request_data.operation_name, request_data.variables
        )
        if data is not None:
            return ExecutionResult(data=data, errors=None)
        try:
            result = await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise http.HTTPError(
                    405,
                    "Only queries can be sent with GET; POST other operations.",
                    headers={"Allow": "POST"},
                ) from exc
            raise
        # Past the deadline every statement fails at once (RequestDB), so the execution ends
        # soon after it, and its answer is refused as a whole. The execution is not cancelled:
        # that would leave an SQLite statement running in its thread, and cancelling a
        # Strawberry DataLoader batch of n keys costs n² steps (each cancelled future checks the
        # whole batch), a stall far longer than letting the execution finish.
        if any(_is_timeout(error) for error in result.errors or ()):
            raise _timed_out(context.db)
        note_clean(context, result)
        return result

    async def process_result(self, request: Any, result: Any) -> GraphQLHTTPResponse:
        # Errors raised outside the operation (an extension that fails) skip ErrorShaping;
        # shape them here too so nothing unmasked reaches the client.
        if result.errors:
            request_id = request.state.request_id
            result.errors = [shape_error(error, request_id) for error in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or http.JSON
        bodies = response_data if isinstance(response_data, list) else [response_data]
        for body in bodies:
            if media_type == http.GRAPHQL_RESPONSE_JSON and http.is_request_error(body):
                del body["data"]
        if isinstance(response_data, list):
            status = sub_response.status_code or 200  # each result carries its own errors
        else:
            status = sub_response.status_code or http.response_status(response_data, media_type)
        response = Response(
            self.encode_json(response_data),
            status_code=status,
            media_type=http.content_type(media_type),
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response


class GraphEndpoint:
    """The ASGI endpoint of /graphql. Each request gets its RequestDB, closed before the
    response is sent. A POST or GET whose answer is known clean for its token is answered from
    the ASGI scope (`GraphView.answer_known`); every other request, and every request that one
    leaves (its body given again), by `GraphView.handle`."""

    def __init__(self, view: GraphView, engine: AsyncEngine, timeout: float | None) -> None:
        self.view = view
        self.engine = engine
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        db = RequestDB(self.engine, timeout=self.timeout)
        scope.setdefault("state", {})["db"] = db
        try:
            response = None
            if scope["method"] == "POST":
                messages = await _body_messages(receive)
                if messages[-1]["type"] == "http.disconnect":
                    # gone before its body was sent: nothing to answer (the access log says 499)
                    scope["state"][CLIENT_GONE] = True
                    return
                receive = replaying(messages, receive)
                body = b"".join(message.get("body", b"") for message in messages)
                response = await self.view.answer_known(scope, body)
            elif scope["method"] == "GET":
                response = await self.view.answer_known(scope, b"")
            if response is None:
                response = await self.view.handle(Request(scope, receive, send))
        finally:
            await db.close()
        await response(scope, receive, send)


async def _body_messages(receive: Receive) -> list[Message]:
    """The messages of a request's body, up to its last one or to the client's going away
    (`http.disconnect`, the last then)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages
