"""Batched requests: a JSON array of operations in one POST, answered by an array of results.

Off unless GATEWAY_MAX_BATCH is set (an array is then refused 400, saying how to turn it on).
With it set, an array of 1 to GATEWAY_MAX_BATCH operations is run one after the other, each as
if it had come alone:

- each is checked on its own (a malformed one is answered with its own error);
- each spends one request from the token's rate-limit bucket (`gateway.ratelimit`: the first
  was spent before the body was read), and is refused RATE_LIMITED on its own once it is empty;
- each passes the limits and the guard on its own, with a context of its own (its own loaders,
  pacing and response status), sharing only the caller's Grant and database connection.

One failing does not spoil the others. The response is 200 with the results in order, except
401 when an operation was refused for want of a valid token (the token is the whole request's,
and the rate limit counts such refusals per client address).

The operations run one after the other rather than concurrently: they share the request's one
database connection, and a batch should not take more than its share of the event loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.graph import http
from gateway.graph.context import Context
from gateway.graph.pacing import Pacer
from gateway.ratelimit import CHARGE_STATE


@dataclasses.dataclass
class Operation(GraphQLRequestData):
    """One operation of a batch, or the reason it cannot run."""

    refusal: http.HTTPError | None = None


RunOne = Callable[[Context, GraphQLRequestData], Awaitable[ExecutionResult]]


def operations(data: list[Any], max_batch: int) -> list[Operation]:
    """The operations of a batch body; HTTPError 400 when batching is off, or the array is
    empty or longer than `max_batch`."""
    if max_batch <= 0:
        raise http.HTTPError(
            400,
            "Batched operations are turned off here: send one operation (a JSON object) per "
            "request, or set GATEWAY_MAX_BATCH=N on the server to accept arrays of up to N "
            "operations.",
        )
    if not data:
        raise http.HTTPError(400, "The batch is an empty array: send at least one operation.")
    if len(data) > max_batch:
        raise http.HTTPError(
            400,
            f"The batch has {len(data)} operations; the limit (GATEWAY_MAX_BATCH) is "
            f"{max_batch}: split it into smaller batches.",
            extensions={"maximum": max_batch, "actual": len(data)},
        )
    found = []
    for index, item in enumerate(data):
        try:
            query, variables, operation_name, extensions = http.request_parameters(item)
        except http.HTTPError as exc:
            exc.message = f"Operation {index} of the batch: {exc.message}"
            found.append(Operation(None, None, None, None, refusal=exc))
            continue
        found.append(Operation(query, variables, operation_name, extensions))
    return found


def refused(error: http.HTTPError) -> ExecutionResult:
    """The result of an operation refused before it ran."""
    extensions = {"code": error.code.value, **error.extensions}
    return ExecutionResult(data=None, errors=[GraphQLError(error.message, extensions=extensions)])


async def execute(
    request: Request,
    context: Context,
    sub_response: Response,
    batch: list[GraphQLRequestData],
    new_response: Callable[[], Awaitable[Response]],
    run_one: RunOne,
) -> list[ExecutionResult]:
    """Run each operation of `batch` on its own (see the module's docstring); `run_one` runs a
    single operation as the view does, `new_response` makes each one's sub-response."""
    charge: Callable[[], http.HTTPError | None] | None = getattr(request.state, CHARGE_STATE, None)
    results = []
    for index, operation in enumerate(batch):
        own = dataclasses.replace(
            context, response=await new_response(), pacer=Pacer(), _loaders=None
        )
        try:
            if isinstance(operation, Operation) and operation.refusal is not None:
                raise operation.refusal
            if index > 0 and charge is not None and (refusal := charge()) is not None:
                raise refusal
            result = await run_one(own, operation)
        except http.HTTPError as exc:
            result = refused(exc)
        except HTTPException as exc:
            result = refused(http.status_code_error(exc.status_code, exc.reason))
        if own.response.status_code == 401:
            sub_response.status_code = 401
            if "WWW-Authenticate" in own.response.headers:
                sub_response.headers["WWW-Authenticate"] = own.response.headers["WWW-Authenticate"]
        results.append(result)
    return results
