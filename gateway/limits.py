"""Limits on one GraphQL operation, each refused with QUERY_TOO_COMPLEX before any resolver runs.

    limit            what is measured                                 when
    document bytes   UTF-8 size of the query text                     before parsing
    tokens           lexical tokens of the document                   while parsing (aborts early)
    depth            nesting of field selections, fragments expanded  validation (cached per
                     (introspection subtrees are exempt)               document)
    introspection    nesting of `fields`/`interfaces`/`possibleTypes`  validation
                     /`inputFields` lists in introspection, at most 2
    aliases          aliased fields, counted each time a fragment      validation
                     is spread
    cost             estimated rows: a connection costs `first`       before execution (needs the
                     (the default page size when omitted) times       variables)
                     the rows above it, and each object row 1

Every walk over fragments memoises per fragment and follows fragment spreads in dependency
order, so neither a fragment spread many times nor a long chain of fragments can make a check
slow or overflow the stack. The request body's size (HTTP 413) is `gateway.middleware`'s.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    Lexer,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_composite_type,
    parse,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.language import SKIP, VisitorAction
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode, QueryTooComplex
from gateway.settings import Settings

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
# graphql-core's MaxIntrospectionDepthRule refuses a third nested introspection list.
INTROSPECTION_LIST_DEPTH = 2
PARSE_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits (hashable: validation rules are built and cached per value)."""

    max_document_bytes: int
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_cost: int
    default_page_size: int
    max_page_size: int

    @classmethod
    def defaults(cls) -> Limits:
        """The limits of the default settings (the environment is not read)."""
        return cls.from_settings(Settings.model_construct())

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits of `settings` (GATEWAY_MAX_*)."""
        return cls(
            max_document_bytes=settings.max_document_bytes,
            max_tokens=settings.max_tokens,
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_cost=settings.max_cost,
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
        )


def too_complex(
    message: str,
    *,
    limit: str,
    maximum: int,
    actual: int | None = None,
    nodes: Node | list[Node] | None = None,
) -> GraphQLError:
    """A QUERY_TOO_COMPLEX error naming the limit (`extensions.limit`) and its value."""
    extensions: dict[str, Any] = {
        "code": ErrorCode.QUERY_TOO_COMPLEX.value,
        "limit": limit,
        "maximum": maximum,
    }
    if actual is not None:
        extensions["actual"] = actual
    return GraphQLError(message, nodes, extensions=extensions)


# ---------------------------------------------------------------- document size and tokens


def check_document_size(query: str, max_bytes: int) -> None:
    """Raise QueryTooComplex when `query` is larger than `max_bytes` in UTF-8."""
    size = len(query) if len(query) > max_bytes else len(query.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise QueryTooComplex(
            f"The query document is {size:,} bytes; the limit (max_document_bytes) is "
            f"{max_bytes:,} bytes.",
            limit="documentBytes",
            maximum=max_bytes,
            actual=size,
        )


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_lexical_tokens=max_tokens)


def _has_more_tokens_than(query: str, limit: int) -> bool:
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            count += 1
            if count > limit:
                return True
    except GraphQLSyntaxError:
        return False
    return False


def parse_document(query: str, limits: Limits) -> DocumentNode:
    """The parsed document (cached by text); raises a coded GraphQLError when it is refused.

    Size and token count give QUERY_TOO_COMPLEX; any other syntax error BAD_USER_INPUT.
    """
    try:
        check_document_size(query, limits.max_document_bytes)
    except QueryTooComplex as exc:
        raise GraphQLError(exc.message, extensions=exc.extensions) from None
    try:
        return _parse(query, limits.max_tokens)
    except GraphQLSyntaxError as exc:
        # The parser stops at the first token past the limit with a syntax error; recount to
        # tell that apart from a real syntax error without relying on its wording.
        if _has_more_tokens_than(query, limits.max_tokens):
            raise too_complex(
                f"The query document has more than {limits.max_tokens:,} tokens; the limit "
                f"(max_tokens) is {limits.max_tokens:,}.",
                limit="tokens",
                maximum=limits.max_tokens,
            ) from None
        raise GraphQLError(
            exc.message,
            source=exc.source,
            positions=exc.positions,
            extensions={"code": ErrorCode.BAD_USER_INPUT.value},
        ) from None


# ---------------------------------------------------------------- walking with fragments


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _spread_names(selection_set: SelectionSetNode) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set:
            yield from _spread_names(selection.selection_set)


def fragment_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after every fragment it spreads (a spread closing a cycle, which
    validation reports, is left out). Iterative, so a chain of any length is fine."""
    order: list[str] = []
    seen: set[str] = set()
    for root in fragments:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(list(_spread_names(fragments[root].selection_set))))]
        while stack:
            name, pending = stack[-1]
            following = next(pending, None)
            if following is None:
                stack.pop()
                order.append(name)
            elif following in fragments and following not in seen:
                seen.add(following)
                spreads = list(_spread_names(fragments[following].selection_set))
                stack.append((following, iter(spreads)))
    return order


def selection_depth(selection_set: SelectionSetNode, fragment_depths: Mapping[str, int]) -> int:
    """Levels of nested fields below `selection_set` (a leaf field is 1); introspection
    subtrees count 0, whatever the fragments around them are called."""
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in INTROSPECTION_ROOTS:
                continue
            below = selection.selection_set
            depth = 1 + (selection_depth(below, fragment_depths) if below else 0)
        elif isinstance(selection, InlineFragmentNode):
            depth = selection_depth(selection.selection_set, fragment_depths)
        elif isinstance(selection, FragmentSpreadNode):
            depth = fragment_depths.get(selection.name.value, 0)
        else:  # pragma: no cover - the three kinds above are all GraphQL has
            continue
        deepest = max(deepest, depth)
    return deepest


def alias_count(selection_set: SelectionSetNode, fragment_aliases: Mapping[str, int]) -> int:
    """Aliased fields in `selection_set`, a fragment's counted at each of its spreads."""
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += 1 if selection.alias is not None else 0
            if selection.selection_set:
                count += alias_count(selection.selection_set, fragment_aliases)
        elif isinstance(selection, InlineFragmentNode):
            count += alias_count(selection.selection_set, fragment_aliases)
        elif isinstance(selection, FragmentSpreadNode):
            count += fragment_aliases.get(selection.name.value, 0)
    return count


def operation_depth(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """The depth of `operation` with its fragments expanded (see `selection_depth`)."""
    fragments = _fragments(document)
    depths: dict[str, int] = {}
    for name in fragment_order(fragments):
        depths[name] = selection_depth(fragments[name].selection_set, depths)
    return selection_depth(operation.selection_set, depths)


def operation_aliases(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """The aliases of `operation` with its fragments expanded (see `alias_count`)."""
    fragments = _fragments(document)
    counts: dict[str, int] = {}
    for name in fragment_order(fragments):
        counts[name] = alias_count(fragments[name].selection_set, counts)
    return alias_count(operation.selection_set, counts)


# ---------------------------------------------------------------- cost


class CostEstimate:
    """Estimated rows one operation reads: a connection field (one with a `first` argument)
    costs its page size for each row above it, and so multiplies everything below it; any
    other field returning an object that implements `Node` costs 1 row for each row above it
    (the objects a connection returns through `nodes` or `edges.node` are already counted).
    Introspection is free (its depth is capped by validation instead)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        limits: Limits,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.limits = limits
        self.fragments = _fragments(document)
        node_interface = schema.get_type("Node")
        self.node_interface = (
            node_interface if isinstance(node_interface, GraphQLInterfaceType) else None
        )
        # Rows per parent row of each fragment, inside a page or not, in dependency order.
        self.fragment_costs: dict[tuple[str, bool], int] = {}
        for name in fragment_order(self.fragments):
            fragment = self.fragments[name]
            parent = schema.get_type(fragment.type_condition.name.value)
            if not is_composite_type(parent):
                continue
            for in_page in (False, True):
                self.fragment_costs[(name, in_page)] = self.rows(
                    fragment.selection_set, parent, in_page
                )

    def of(self, operation: OperationDefinitionNode) -> int:
        """Estimated rows of `operation`."""
        root = self.schema.get_root_type(operation.operation)
        return 0 if root is None else self.rows(operation.selection_set, root, False)

    def rows(self, selection_set: SelectionSetNode, parent: Any, in_page: bool) -> int:
        """Rows read for one `parent` object by `selection_set`."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field_rows(selection, parent, in_page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                if is_composite_type(target):
                    total += self.rows(selection.selection_set, target, in_page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment_costs.get((selection.name.value, in_page), 0)
        return total

    def _field_rows(self, node: FieldNode, parent: Any, in_page: bool) -> int:
        name = node.name.value
        if name in INTROSPECTION_ROOTS or not isinstance(
            parent, (GraphQLObjectType, GraphQLInterfaceType)
        ):
            return 0
        field = parent.fields.get(name)
        if field is None:
            return 0
        target = get_named_type(field.type)
        if not is_composite_type(target):
            return 0
        below = node.selection_set
        if "first" in field.args:
            size = self.page_size(node)
            inner = self.rows(below, target, True) if below else 0
            return size * (1 + inner)
        inner_in_page = in_page and not self._is_row(target)
        inner = self.rows(below, target, inner_in_page) if below else 0
        own = 1 if self._is_row(target) and not in_page else 0
        return own + inner

    def _is_row(self, type_: Any) -> bool:
        if self.node_interface is None:
            return False
        if type_ is self.node_interface:
            return True
        return isinstance(type_, GraphQLObjectType) and self.node_interface in type_.interfaces

    def page_size(self, node: FieldNode) -> int:
        """The `first` a connection field asks for, the default page size when omitted, and
        at most the largest page (a larger `first` is refused by the field itself)."""
        value: Any = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self.limits.default_page_size
        return max(0, min(value, self.limits.max_page_size))


# ---------------------------------------------------------------- validation rules


@functools.cache
def validation_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """The depth, alias and introspection-depth rules for `limits` (the same classes for the
    same limits, so that the validation cache keeps hitting)."""

    class OperationShapeRule(ASTValidationRule):
        """Depth and aliases of each operation, its fragments expanded."""

        def enter_document(self, node: DocumentNode, *_args: Any) -> VisitorAction:
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                depth = operation_depth(node, definition)
                if depth > limits.max_depth:
                    self.report_error(
                        too_complex(
                            f"The query is nested {depth} levels deep; the limit (max_depth) "
                            f"is {limits.max_depth}.",
                            limit="depth",
                            maximum=limits.max_depth,
                            actual=depth,
                            nodes=definition,
                        )
                    )
                aliases = operation_aliases(node, definition)
                if aliases > limits.max_aliases:
                    self.report_error(
                        too_complex(
                            f"The query uses {aliases} aliases (fragments counted at each "
                            f"spread); the limit (max_aliases) is {limits.max_aliases}.",
                            limit="aliases",
                            maximum=limits.max_aliases,
                            actual=aliases,
                            nodes=definition,
                        )
                    )
            return SKIP

    class IntrospectionDepthRule(MaxIntrospectionDepthRule):
        """graphql-core's cap on nested introspection lists, with our code and message."""

        def report_error(self, error: GraphQLError) -> None:
            super().report_error(
                too_complex(
                    "The introspection query nests `fields`, `inputFields`, `interfaces` or "
                    f"`possibleTypes` more than {INTROSPECTION_LIST_DEPTH} levels deep; the "
                    f"limit (introspection depth) is {INTROSPECTION_LIST_DEPTH}.",
                    limit="introspectionDepth",
                    maximum=INTROSPECTION_LIST_DEPTH,
                    nodes=list(error.nodes or ()),
                )
            )

    return (OperationShapeRule, IntrospectionDepthRule)


# ---------------------------------------------------------------- the extension


class RequestLimits(SchemaExtension):
    """Enforces `Limits` on every operation; pass it as a factory (`lambda: RequestLimits(l)`).

    It also parses the document (with a cache keyed by the text), so it replaces
    Strawberry's `ParserCache`.
    """

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        execution = self.execution_context
        # Ours replaces graphql-core's introspection-depth rule (same check, coded error).
        kept = (r for r in execution.validation_rules if r is not MaxIntrospectionDepthRule)
        execution.validation_rules = (*kept, *validation_rules(self.limits))
        yield

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is None and execution.query:
            execution.graphql_document = parse_document(execution.query, self.limits)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if execution.result is None and document is not None:
            operation = get_operation_ast(document, execution.operation_name)
            if operation is not None:
                estimate = CostEstimate(
                    execution.schema._schema, document, execution.variables or {}, self.limits
                )
                cost = estimate.of(operation)
                if cost > self.limits.max_cost:
                    execution.result = GraphQLExecutionResult(
                        data=None,
                        errors=[
                            too_complex(
                                f"The query could read an estimated {cost:,} rows; the limit "
                                f"(max_cost) is {self.limits.max_cost:,}. Ask for smaller "
                                "pages with `first` or select fewer nested connections.",
                                limit="cost",
                                maximum=self.limits.max_cost,
                                actual=cost,
                                nodes=operation,
                            )
                        ],
                    )
        yield
