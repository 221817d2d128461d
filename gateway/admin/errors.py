"""How the admin API reports errors: the Graph API's shaping, plus admin-specific rules.

ValidationFailed (service layer)  → BAD_USER_INPUT, its message with the API's hint
everything else                   → `gateway.graph.errors.shape_error`: GatewayError codes
                                    pass, request errors are BAD_USER_INPUT, anything
                                    unexpected is masked and logged with the request id
a request error that names a
  source on updateIntegration     → also says why the source cannot change
a bad value in the document or
  in a variable (a bad startDate) → says where: `extensions.inputPath` from the argument
                                    (`argument`) or the variable (`variable`) down to the
                                    value, and the document location of the value
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLInputType, ValueNode
from graphql.language import SKIP, ArgumentNode, VariableDefinitionNode
from graphql.utilities.validate_input_value import validate_input_literal
from graphql.validation import ValuesOfCorrectTypeRule
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


# graphql-core's wording for a variable whose value does not fit its type; the path after "at"
# is in its own notation (`.targets[1]`). A test pins it.
_BAD_VARIABLE = re.compile(r"^Variable '\$(\w+)' has invalid value(?: at ((?:\.\w+|\[\d+\])+))?: ")
_PATH_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


def _steps(notation: str) -> list[str | int]:
    """`.targets[1]` as `["targets", 1]`."""
    return [name or int(index) for name, index in _PATH_STEP.findall(notation)]


def _notation(path: list[str | int]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


class LocatedValuesRule(ValuesOfCorrectTypeRule):
    """graphql-core's check of the values written in the document, with the place of each bad
    one: a scalar that refuses a literal (strawberry's DateTime) raises an error that
    graphql-core reports without location or path; this one gives both."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        # What holds the value being checked: an argument, or a variable's default value.
        self._owner = ("argument", "value")

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._owner = ("argument", node.name.value)

    def enter_variable_definition(self, node: VariableDefinitionNode, *_args: Any) -> None:
        self._owner = ("variable", node.variable.name.value)

    def is_valid_value_node(self, node: ValueNode, input_type: GraphQLInputType | None) -> Any:
        if input_type is None:
            return super().is_valid_value_node(node, input_type)
        kind, name = self._owner
        what = f"Argument '{name}'" if kind == "argument" else f"Default of variable '${name}'"

        def on_error(error: GraphQLError, path: list[str | int]) -> None:
            where = f" at {_notation(path)}" if path else ""
            self.report_error(
                GraphQLError(
                    f"{what} has invalid value{where}: {error.message}",
                    error.nodes or node,
                    original_error=error.original_error,
                    extensions={**(error.extensions or {}), kind: name, "inputPath": [name, *path]},
                )
            )

        validate_input_literal(
            node, input_type, on_error, None, None, self.context.hide_suggestions
        )
        return SKIP  # the literal was checked whole, like graphql-core does


def shape_admin_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as an admin client may see it."""
    if isinstance(error.original_error, ValidationFailed):
        return _with_message(
            error, error.original_error.for_api(), code=ErrorCode.BAD_USER_INPUT.value
        )
    shaped = shape_error(error, request_id)
    if error.path is None and _SOURCE_CHANGE.search(shaped.message):
        return _with_message(shaped, f"{shaped.message} {SOURCE_IS_FIXED}")
    bad_variable = _BAD_VARIABLE.match(shaped.message) if error.path is None else None
    if bad_variable is not None:
        name, notation = bad_variable.groups()
        return _with_message(
            shaped, shaped.message, variable=name, inputPath=[name, *_steps(notation or "")]
        )
    return shaped


class AdminErrors(SchemaExtension):
    """Swaps in `LocatedValuesRule`, then applies `shape_admin_error` to every error of the
    operation's result."""

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = tuple(
            LocatedValuesRule if rule is ValuesOfCorrectTypeRule else rule
            for rule in self.execution_context.validation_rules
        )
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", "unknown")
        result.errors = [shape_admin_error(e, request_id) for e in errors]
