"""How the admin API reports errors: the Graph API's shaping, plus two admin-specific rules.

ValidationFailed (service layer)  → BAD_USER_INPUT, its message as is
everything else                   → `gateway.graph.errors.shape_error`: GatewayError codes
                                    pass, request errors are BAD_USER_INPUT, anything
                                    unexpected is masked and logged with the request id
a request error that names a
  source on updateIntegration     → also says why the source cannot change
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode, ValidationFailed
from gateway.graph.errors import shape_error

# graphql-core's wording when a request names a source on updateIntegration (an inline field,
# a field of a variable, or an argument); a test pins it, so an upgrade that rewords it shows.
_SOURCE_CHANGE = re.compile(
    r"type 'UpdateIntegrationInput' not to include unknown field 'source\w*'"
    r"|Unknown argument 'source\w*' on field 'Mutation\.updateIntegration'"
)
SOURCE_IS_FIXED = (
    "An integration's source cannot be changed after creation; destroy the integration "
    "and create a new one on the other source."
)


def _with_message(error: GraphQLError, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), **extensions},
    )


def shape_admin_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as an admin client may see it."""
    if isinstance(error.original_error, ValidationFailed):
        return _with_message(error, str(error.original_error), code=ErrorCode.BAD_USER_INPUT.value)
    shaped = shape_error(error, request_id)
    if error.path is None and _SOURCE_CHANGE.search(shaped.message):
        return _with_message(shaped, f"{shaped.message} {SOURCE_IS_FIXED}")
    return shaped


class AdminErrors(SchemaExtension):
    """Applies `shape_admin_error` to every error of the operation's result."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", "unknown")
        result.errors = [shape_admin_error(e, request_id) for e in errors]
