"""How the admin API reports errors: the Graph API's shaping, plus two admin-specific rules.

ValidationFailed (service layer)     → BAD_USER_INPUT, its message as is
a request error (syntax, unknown
  field, bad variable; no path)      → BAD_USER_INPUT, graphql-core's message, and a
                                       reason when it names a source on updateIntegration
everything else                      → `gateway.graph.errors.shape_error` (GatewayError
                                       codes pass, anything unexpected is masked and logged)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode, GatewayError, ValidationFailed
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


def _bad_user_input(error: GraphQLError, message: str) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": ErrorCode.BAD_USER_INPUT.value},
    )


def shape_admin_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as an admin client may see it."""
    original = error.original_error
    if isinstance(original, ValidationFailed):
        return _bad_user_input(error, str(original))
    if error.path is None and not isinstance(original, GatewayError):
        # Raised before execution, so the request itself is wrong; a variable's coercion error
        # carries an original error too, which must not be mistaken for a server fault.
        message = error.message
        if _SOURCE_CHANGE.search(message):
            message = f"{message} {SOURCE_IS_FIXED}"
        return _bad_user_input(error, message)
    return shape_error(error, request_id)


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
