"""An operation's inputs, checked once before any decision depends on them.

    check              refused with BAD_USER_INPUT when
    list lengths       a list in the variables or in the document (arguments, variable
                       defaults) holds more than GATEWAY_MAX_LIST_LENGTH values
    variables          they do not coerce to their declared types (the values execution
                       will use: defaults applied, `1000.0` read as the Int 1000)
    conditions         an `@skip`/`@include` condition is null

They run before the guard, so the answer to a bad request never depends on what the token may
read, and a null condition deep in a selection is a request error instead of a field that
fails during execution. The cost estimate (`gateway.limits`) reads the same coerced values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues, get_directive_values, get_variable_values
from graphql.language import Visitor, visit
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode

# Coercion stops after this many errors: a client fixes a handful at a time.
MAX_VARIABLE_ERRORS = 20


def bad_input(
    message: str, nodes: Node | list[Node] | None = None, **extensions: Any
) -> GraphQLError:
    """A BAD_USER_INPUT request error."""
    return GraphQLError(
        message, nodes, extensions={"code": ErrorCode.BAD_USER_INPUT.value, **extensions}
    )


def _too_long(where: str, length: int, maximum: int, node: Node | None = None) -> GraphQLError:
    return bad_input(
        f"{where} holds a list of {length:,} values; lists are at most {maximum:,} values long "
        f"(GATEWAY_MAX_LIST_LENGTH). Split the request, or filter by fewer values.",
        node,
        limit="listLength",
        maximum=maximum,
        actual=length,
    )


def _longest_json_list(value: Any) -> int:
    """The length of the longest list anywhere inside a decoded JSON value (iterative, so a
    deeply nested value cannot overflow the stack)."""
    longest = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            longest = max(longest, len(item))
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return longest


class _LongestLiteral(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.node: ListValueNode | None = None

    def enter_list_value(self, node: ListValueNode, *_args: Any) -> None:
        if self.node is None or len(node.values) > len(self.node.values):
            self.node = node


def list_length_error(
    document: DocumentNode, variables: Mapping[str, Any], maximum: int
) -> GraphQLError | None:
    """The error for the first list, in the variables or written in the document, that is
    longer than `maximum`; None when there is none."""
    for name, value in variables.items():
        length = _longest_json_list(value)
        if length > maximum:
            return _too_long(f"The variable `${name}`", length, maximum)
    longest = _LongestLiteral()
    visit(document, longest)
    if longest.node is not None and len(longest.node.values) > maximum:
        return _too_long("The query", len(longest.node.values), maximum, longest.node)
    return None


def coerce_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> VariableValues | list[GraphQLError]:
    """The variables as execution will coerce them, or the (coded) coercion errors."""
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables), MAX_VARIABLE_ERRORS
    )
    if isinstance(coerced, VariableValues):
        return coerced
    return [
        bad_input(error.message, list(error.nodes or ()) or None) if not error.extensions else error
        for error in coerced
    ]


def _directive_holders(selection_set: SelectionSetNode) -> Iterator[Node]:
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            yield selection
            if isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set:
                stack.append(selection.selection_set)


def condition_errors(
    document: DocumentNode, operation: OperationDefinitionNode, variables: VariableValues
) -> list[GraphQLError]:
    """An error for each `@skip`/`@include` whose condition is not a boolean with these
    variables (a nullable variable sent as null), in the operation and every fragment."""
    roots = [operation.selection_set] + [
        d.selection_set for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    ]
    errors: list[GraphQLError] = []
    for root in roots:
        for node in _directive_holders(root):
            for directive in (GraphQLSkipDirective, GraphQLIncludeDirective):
                try:
                    get_directive_values(directive, node, variables)  # type: ignore[arg-type]  # every selection holds directives
                except GraphQLError as error:
                    errors.append(
                        bad_input(
                            f"{error.message} Send true or false for `@{directive.name}(if:)`.",
                            list(error.nodes or ()) or None,
                        )
                    )
    return errors


class OperationInputs(SchemaExtension):
    """Refuses an operation whose inputs are bad (see the module docstring) before the guard
    and before execution; pass the class itself or a factory, never an instance."""

    def __init__(self, max_list_length: int) -> None:
        super().__init__()
        self.max_list_length = max_list_length

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        operation = (
            get_operation_ast(document, execution.operation_name) if document is not None else None
        )
        if execution.result is None and document is not None and operation is not None:
            errors = self._errors(execution.schema._schema, document, operation)
            if errors:
                execution.result = GraphQLExecutionResult(data=None, errors=errors)
        yield

    def _errors(
        self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
    ) -> list[GraphQLError]:
        raw = self.execution_context.variables or {}
        too_long = list_length_error(document, raw, self.max_list_length)
        if too_long is not None:
            return [too_long]
        coerced = coerce_variables(schema, operation, raw)
        if not isinstance(coerced, VariableValues):
            return coerced
        return condition_errors(document, operation, coerced)
