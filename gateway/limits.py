"""Limits on one GraphQL operation, each refused with QUERY_TOO_COMPLEX before any resolver runs.

    limit            what is measured                                 when
    document bytes   UTF-8 size of the query text                     before parsing
    tokens           lexical tokens of the document                   while parsing (aborts early)
    fields           field selections, fragments expanded; one key    after parsing, before
                     selected at most 50 times in one selection set;   validation (cached)
                     at most 100 fragments defined
    depth            nesting of field selections, fragments expanded  validation (cached per
                     (introspection subtrees are exempt)               document)
    introspection    nesting of `fields`/`interfaces`/`possibleTypes`  validation
                     /`inputFields` lists in introspection, at most 2
    aliases          aliased fields, counted each time a fragment      validation
                     is spread
    cost             estimated rows: a connection costs `first`       before execution (needs the
                     (the default page size when omitted, at least    coerced variables)
                     1) times the rows above it, each object row 1,
                     each value of a list argument 1

The measures themselves (fields, depth, aliases, cost) are `gateway.selections`; the request body's
size (HTTP 413) is `gateway.middleware`'s.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSyntaxError,
    Lexer,
    Node,
    OperationDefinitionNode,
    Source,
    TokenKind,
    get_operation_ast,
    parse,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues
from graphql.language import SKIP, VisitorAction
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode, QueryTooComplex
from gateway.inputs import coerce_variables
from gateway.selections import (
    CostEstimate,
    crowded_field,
    document_fields,
    operation_aliases,
    operation_depth,
)
from gateway.settings import Settings

# graphql-core's MaxIntrospectionDepthRule refuses a third nested introspection list.
INTROSPECTION_LIST_DEPTH = 2
PARSE_CACHE_SIZE = 256
FRAGMENTS_MOST = 100
"""How many fragments one document may define: graphql-core's validation compares the
fragments spread in one selection set pair by pair (each pair once), which took half a second
of the event loop for 545 one-field fragments (a review). A hundred is more than a hand-written
or generated query of this API needs."""
SAME_FIELD_MOST = 50
"""How many times one selection set may select one response key (a field's name or alias),
the fields of fragments spread into it counted at each spread: graphql-core's validation
compares such fields pair by pair, which took a second for 300 copies and overflowed the stack
at 800. No real query repeats a key more than a few times (the same field under a few inline
fragments)."""


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
    max_list_length: int = 500
    max_fields: int = 2000

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
            max_list_length=settings.max_list_length,
            max_fields=settings.max_fields,
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
        document = _parse(query, limits.max_tokens)
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
    problem = _selection_problem(query, limits.max_tokens, limits.max_fields)
    if problem is not None:
        message, limit, maximum, actual, node = problem
        raise too_complex(message, limit=limit, maximum=maximum, actual=actual, nodes=node)
    return document


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _selection_problem(
    query: str, max_tokens: int, max_fields: int
) -> tuple[str, str, int, int, Node] | None:
    """Why the parsed `query` selects too much, before it is validated (validation and the
    guard walk every field, a fragment's at each of its spreads): more fields than
    `max_fields` with its fragments expanded (a few fragments that each spread the next one
    twice make millions), or one key selected more than `SAME_FIELD_MOST` times in one
    selection set."""
    document = _parse(query, max_tokens)
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    if len(fragments) > FRAGMENTS_MOST:
        message = (
            f"The query defines {len(fragments):,} fragments; a document may define at most "
            f"{FRAGMENTS_MOST}."
        )
        return message, "fragments", FRAGMENTS_MOST, len(fragments), document
    fields = document_fields(document)
    if fields > max_fields:
        message = (
            f"The query selects {fields:,} fields, its fragments counted at each spread; the "
            f"limit (max_fields) is {max_fields:,}."
        )
        return message, "fields", max_fields, fields, document
    crowded = crowded_field(document, SAME_FIELD_MOST)
    if crowded is not None:
        key, times, node = crowded
        message = (
            f"The query selects `{key}` {times:,} times in one selection set (its fragments "
            f"counted at each spread); one selection set may select a field (or alias) at "
            f"most {SAME_FIELD_MOST} times."
        )
        return message, "sameField", SAME_FIELD_MOST, times, node
    return None


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


def _unnamed_choice(execution: Any, document: DocumentNode) -> GraphQLError | None:
    """The GraphQL spec's request error for a document of several operations sent without
    `operationName` (Strawberry would quietly run the first one)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    # Strawberry's `operation_name` falls back to the first operation's; the client's is here.
    if len(operations) < 2 or execution._provided_operation_name is not None:
        return None
    names = ", ".join(repr(o.name.value) if o.name else "(unnamed)" for o in operations)
    return GraphQLError(
        f"The document holds {len(operations)} operations ({names}): send `operationName` to "
        "say which one to run.",
        nodes=operations,
        extensions={"code": ErrorCode.BAD_USER_INPUT.value, "argument": "operationName"},
    )


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
            unnamed = _unnamed_choice(execution, document)
            if unnamed is not None:
                execution.result = GraphQLExecutionResult(data=None, errors=[unnamed])
        if execution.result is None and document is not None:
            operation = get_operation_ast(document, execution.operation_name)
            schema = execution.schema._schema
            raw = execution.variables or {}
            # Bad variables were refused before (gateway.inputs); execution refuses them anyway.
            coerced = coerce_variables(schema, operation, raw) if operation is not None else []
            if operation is not None and isinstance(coerced, VariableValues):
                cost = CostEstimate(
                    schema,
                    document,
                    operation,
                    coerced,
                    raw,
                    default_page_size=self.limits.default_page_size,
                    max_page_size=self.limits.max_page_size,
                ).total()
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
