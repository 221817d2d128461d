"""Shapes every error of a response: allow-listed codes pass, anything unexpected is masked.

A `GatewayError` raised by a resolver keeps its message and `extensions` (its code). Parse,
validation and variable errors are the client's to fix: BAD_USER_INPUT. Anything else becomes
INTERNAL_SERVER_ERROR with the request id, and is logged with its stack and that id (never the
token).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from gateway.errors import ErrorCode, GatewayError

log = logging.getLogger("gateway.errors")

ALLOWED_CODES = frozenset(code.value for code in ErrorCode)


def shape_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client may see it."""
    original = error.original_error
    if isinstance(original, GatewayError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=original.extensions,
        )
    # graphql-core wraps its own client errors, variable coercion ones among them, around
    # another GraphQLError; outside field execution (no path) they are the client's to fix.
    if original is None or (isinstance(original, GraphQLError) and not error.path):
        code = (error.extensions or {}).get("code")
        if code in ALLOWED_CODES:
            return error
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": ErrorCode.BAD_USER_INPUT.value},
        )
    log.error(
        "unexpected error in %s (request id %s)",
        ".".join(str(p) for p in error.path or ()) or "operation",
        request_id,
        exc_info=original,
        extra={"request_id": request_id},
    )
    return GraphQLError(
        f"Internal server error. Quote request id {request_id} when reporting it.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id},
    )


class ErrorShaping(SchemaExtension):
    """Applies `shape_error` to every error of the operation's result."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if not isinstance(result, (GraphQLExecutionResult, ExecutionResult)) or not result.errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", "unknown")
        result.errors = once_per_field([shape_error(e, request_id) for e in result.errors])


def once_per_field(errors: list[GraphQLError]) -> list[GraphQLError]:
    """A bad argument of a field inside a list (`schools(first: -1)` under a page of people)
    fails the same way on every row: one error for it, its path without list indices, as the
    guard reports a denied field (a thousand identical errors said nothing more)."""
    kept: list[GraphQLError] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for error in errors:
        extensions = error.extensions or {}
        path = error.path or ()
        if (
            extensions.get("code") == ErrorCode.BAD_USER_INPUT.value
            and "argument" in extensions
            and any(isinstance(step, int) for step in path)
        ):
            field_path = tuple(str(step) for step in path if not isinstance(step, int))
            if (error.message, field_path) in seen:
                continue
            seen.add((error.message, field_path))
            error = GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=list(field_path),
                extensions=extensions,
            )
        kept.append(error)
    return kept


class QuietSchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging, which writes plain-text tracebacks with
    an excerpt of the document. Our error shaping logs what is unexpected, as JSON with the
    request id; client errors (401, 403, FORBIDDEN, bad input) are not server errors."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None
