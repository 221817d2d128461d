"""The one gate (DESIGN §4): token, status and permissions, decided before any resolver runs.

`Guard.on_execute` runs after parsing and validation and before execution:

1. an operation that selects only introspection fields passes without a token;
2. no valid token → HTTP 401 UNAUTHENTICATED with `WWW-Authenticate: Bearer` (decided by
   `Guard.on_validate` already, before the document is validated);
3. any graph field while the integration is not ACTIVE → HTTP 403 INVALID_INTEGRATION_STATE
   (`integration` alone still answers);
4. every field whose `@requiresPermission` the grant lacks — or that filters by such a field —
   is replaced in a copy of the document by `__typename` under the same response key, so no
   resolver of it runs; after execution those keys are set to null and one FORBIDDEN error per
   denied field (its path without list indices) is added.

In each refusing case execution is skipped: no graph statement runs.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from gateway.access.gates import TYPE_PERMISSIONS
from gateway.access.grant import Grant
from gateway.errors import GatewayError, InvalidIntegrationState, Unauthenticated
from gateway.graph.context import Context
from gateway.graph.directives import RequiresPermission

INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})
# Root fields that answer whatever the integration's status (DESIGN §4 step 2).
STATUS_FREE_FIELDS = INTROSPECTION_FIELDS | {"integration"}

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Denial:
    """A field the grant may not read: where it is, what it is, and the permission it lacks."""

    path: Path
    parent_type: str
    field: str
    permissions: tuple[str, ...]  # every one it lacks, in the order they are declared
    node: FieldNode
    # The argument that needs the permission (`filter.email`), when it is not the field itself.
    argument: str | None = None

    @property
    def permission(self) -> str:
        """The first permission it lacks (`extensions.permission`)."""
        return self.permissions[0]

    @property
    def message(self) -> str:
        if len(self.permissions) == 1:
            names = f"the permission {self.permissions[0]}"
        else:
            names = f"the permissions {', '.join(self.permissions[:-1])} and {self.permissions[-1]}"
        needs = f"needs {names}, which this integration was not granted"
        if self.argument is not None:
            return f"Filtering `{self.parent_type}.{self.field}` by `{self.argument}` {needs}."
        return f"`{self.parent_type}.{self.field}` {needs}."


class PermissionMap:
    """What each output field and filter input field needs, read once from the schema's
    `@requiresPermission` directives (which are generated from `gateway.access.gates`)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.fields: dict[tuple[str, str], tuple[str, ...]] = {}
        self.inputs: dict[tuple[str, str], tuple[str, ...]] = {}
        for type_ in schema.type_map.values():
            if type_.name.startswith("__"):
                continue
            if isinstance(type_, GraphQLObjectType):
                type_slug = TYPE_PERMISSIONS.get(type_.name)
                for name, field in type_.fields.items():
                    slugs = list(_directive_slugs(field.extensions))
                    if type_slug and type_slug not in slugs:
                        slugs.insert(0, type_slug)
                    if slugs:
                        self.fields[(type_.name, name)] = tuple(slugs)
            elif isinstance(type_, GraphQLInputObjectType):
                for name, input_field in type_.fields.items():
                    slugs = list(_directive_slugs(input_field.extensions))
                    if slugs:
                        self.inputs[(type_.name, name)] = tuple(slugs)


def _directive_slugs(extensions: Mapping[str, Any] | None) -> Iterable[str]:
    definition = (extensions or {}).get("strawberry-definition")
    for directive in getattr(definition, "directives", None) or ():
        if isinstance(directive, RequiresPermission):
            yield directive.slug


class _Walker:
    """Walks one operation with its fragments, recording denied fields."""

    def __init__(
        self,
        schema: GraphQLSchema,
        permissions: PermissionMap,
        grant: Grant,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        defaults: Mapping[str, ValueNode],
    ) -> None:
        self.schema = schema
        self.permissions = permissions
        self.grant = grant
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.denials: dict[tuple[Path, str], Denial] = {}
        self.denied_nodes: dict[int, Denial] = {}

    def walk(self, selection_set: SelectionSetNode, parent: GraphQLNamedType, path: Path) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue  # @skip / @include: execution leaves it out, so nothing is denied
            if isinstance(selection, FieldNode):
                self._field(selection, parent, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                if target is not None:
                    self.walk(selection.selection_set, target, path)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    if target is not None:
                        self.walk(fragment.selection_set, target, path)

    def _field(self, node: FieldNode, parent: GraphQLNamedType, path: Path) -> None:
        name = node.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType):
            return
        field = parent.fields.get(name)
        if field is None:
            return
        key = node.alias.value if node.alias else name
        here = (*path, key)
        missing: tuple[tuple[str, ...], str | None] | None = self._missing(parent.name, name)
        if missing is None:
            missing = self._missing_in_arguments(node, field)
        if missing is not None:
            denial = Denial(here, parent.name, name, missing[0], node, missing[1])
            self.denials.setdefault((here, parent.name), denial)
            self.denied_nodes[id(node)] = denial
            return
        if node.selection_set is not None:
            self.walk(node.selection_set, get_named_type(field.type), here)

    def _missing(self, parent: str, field: str) -> tuple[tuple[str, ...], None] | None:
        """Every permission the grant lacks for the field (a class's `enrollments` under a
        person needs two), so that the error names them all."""
        needed = self.permissions.fields.get((parent, field), ())
        lacking = tuple(slug for slug in needed if not self.grant.allows(slug))
        return (lacking, None) if lacking else None

    def _missing_in_arguments(
        self, node: FieldNode, field: Any
    ) -> tuple[tuple[str, ...], str] | None:
        for argument in node.arguments or ():
            name = argument.name.value
            definition = field.args.get(name)
            if definition is not None:
                missing = self._missing_in_value(argument.value, definition.type, name)
                if missing is not None:
                    return missing
        return None

    def _included(self, selection: Any) -> bool:
        """False when `@skip(if: true)` or `@include(if: false)` leaves `selection` out."""
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            value = self._value(condition)
            if isinstance(value, BooleanValueNode):
                value = value.value
            if not isinstance(value, bool):
                continue  # not decidable here: judge the field as if it ran
            if value is (name == "skip"):
                return False
        return True

    def _value(self, value: ValueNode | Any) -> Any:
        """`value` with a variable replaced by what execution will use; None for null."""
        if isinstance(value, VariableNode):
            name = value.name.value
            # not sent: execution uses the operation's default, so judge that
            value = self.variables[name] if name in self.variables else self.defaults.get(name)
        return None if isinstance(value, NullValueNode) else value

    def _missing_in_value(
        self, value: ValueNode | Any, type_: GraphQLInputType, where: str
    ) -> tuple[tuple[str, ...], str] | None:
        """The permissions the grant lacks for the first input field set in `value` that needs
        any, with that field's place (`filter.email`); fields set to null filter nothing and
        need nothing."""
        while isinstance(type_, (GraphQLNonNull, GraphQLList)):
            type_ = type_.of_type
        if not isinstance(type_, GraphQLInputObjectType):
            return None
        value = self._value(value)
        if isinstance(value, ListValueNode):
            items: list[Any] = list(value.values)
        elif isinstance(value, list):
            items = value
        else:
            items = [value]
        for item in map(self._value, items):
            if isinstance(item, ObjectValueNode):
                pairs: list[tuple[str, Any]] = [(f.name.value, f.value) for f in item.fields]
            elif isinstance(item, Mapping):
                pairs = list(item.items())
            else:
                continue
            for name, inner in pairs:
                inner = self._value(inner)
                if inner is None:
                    continue
                needed = self.permissions.inputs.get((type_.name, name), ())
                lacking = tuple(slug for slug in needed if not self.grant.allows(slug))
                if lacking:
                    return lacking, f"{where}.{name}"
                input_field = type_.fields.get(name)
                if input_field is not None:
                    missing = self._missing_in_value(inner, input_field.type, f"{where}.{name}")
                    if missing is not None:
                        return missing
        return None


def _replace_denied(document: DocumentNode, denied: Mapping[int, Denial]) -> DocumentNode:
    """A copy of `document` where each denied field is `<key>: __typename` (AST nodes are
    immutable and cached across requests, so changed nodes are rebuilt, the rest shared)."""

    def rewrite(selection_set: SelectionSetNode) -> SelectionSetNode:
        changed = False
        selections: list[Any] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode) and id(selection) in denied:
                key = selection.alias.value if selection.alias else selection.name.value
                selections.append(
                    FieldNode(
                        alias=NameNode(value=key),
                        name=NameNode(value="__typename"),
                        arguments=(),
                        directives=selection.directives,
                        selection_set=None,
                        loc=selection.loc,
                    )
                )
                changed = True
                continue
            if (
                isinstance(selection, (FieldNode, InlineFragmentNode))
                and selection.selection_set is not None
            ):
                inner = rewrite(selection.selection_set)
                if inner is not selection.selection_set:
                    selection = dataclasses.replace(selection, selection_set=inner)
                    changed = True
            selections.append(selection)
        if not changed:
            return selection_set
        return dataclasses.replace(selection_set, selections=tuple(selections))

    definitions = []
    for definition in document.definitions:
        if isinstance(definition, (OperationDefinitionNode, FragmentDefinitionNode)):
            definition = dataclasses.replace(
                definition, selection_set=rewrite(definition.selection_set)
            )
        definitions.append(definition)
    return dataclasses.replace(document, definitions=tuple(definitions))


def _null_denied(data: Any, denial: Denial) -> None:
    """Set the denied key to null in every object along its path (lists are walked)."""
    targets = [data]
    for key in denial.path[:-1]:
        following: list[Any] = []
        for target in targets:
            value = target.get(key) if isinstance(target, dict) else None
            stack = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, list):
                    stack.extend(item)
                elif isinstance(item, dict):
                    following.append(item)
        targets = following
    last = denial.path[-1]
    for target in targets:
        # Only the stand-in `__typename` value is nulled: a same-named key of another type
        # (merged from a different inline fragment) keeps its value.
        if target.get(last) == denial.parent_type:
            target[last] = None


def root_field_names(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> set[str]:
    """The names of the fields an operation selects at its root (through fragments). Each
    fragment is read once, however often it is spread: this runs before the token is checked,
    and a few fragments that each spread the next one twice would otherwise be walked
    millions of times."""
    names: set[str] = set()
    read: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in read:
                    read.add(name)
                    pending.append(fragment.selection_set)
    return names


def _unauthenticated(context: Context) -> Unauthenticated:
    """The refusal of a request without a valid token (its WWW-Authenticate header set)."""
    context.response.headers["WWW-Authenticate"] = (
        'Bearer realm="gateway", error="invalid_token"'
        if context.token_sent
        else 'Bearer realm="gateway"'
    )
    return Unauthenticated(
        "A valid access token is required: send `Authorization: Bearer <token>`"
        + (
            " (the token sent is malformed or unknown; application keys work on "
            "/meta/graphql, admin keys on /admin/graphql)"
            if context.token_sent
            else ""
        )
    )


def _inactive(grant: Grant) -> InvalidIntegrationState:
    """The refusal for a grant that may not read graph data now, saying until when if known."""
    if grant.starts_at is not None:
        starts = grant.starts_at.isoformat()
        return InvalidIntegrationState(
            f"The integration is {grant.status.value} until its start date, {starts}: graph "
            "data can be read from then on. `{ integration { status startDate } }` still "
            "answers.",
            status=grant.status.value,
            startDate=starts,
        )
    return InvalidIntegrationState(
        f"The integration is {grant.status.value}: graph data can be read only while it "
        "is ACTIVE. `{ integration { status startDate } }` still answers.",
        status=grant.status.value,
    )


class Guard(SchemaExtension):
    """The gate every operation passes before any resolver runs (see the module docstring)."""

    # One map per schema, shared by every request; weak so a discarded schema takes its map.
    _permission_maps: ClassVar[weakref.WeakKeyDictionary[GraphQLSchema, PermissionMap]] = (
        weakref.WeakKeyDictionary()
    )

    @cached_property
    def _graphql_schema(self) -> GraphQLSchema:
        return self.execution_context.schema._schema

    def _permission_map(self) -> PermissionMap:
        schema = self._graphql_schema
        found = Guard._permission_maps.get(schema)
        if found is None:
            found = Guard._permission_maps[schema] = PermissionMap(schema)
        return found

    def _operation(
        self,
    ) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode], set[str]] | None:
        """The operation to run, the document's fragments by name and the operation's root
        field names; None when there is no such operation."""
        execution = self.execution_context
        document = execution.graphql_document
        operation = (
            get_operation_ast(document, execution.operation_name) if document is not None else None
        )
        if document is None or operation is None:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        return operation, fragments, root_field_names(operation.selection_set, fragments)

    def on_validate(self) -> Iterator[None]:
        """A request without a valid token that reads anything but introspection is refused
        before its document is validated: validation costs up to tens of milliseconds of the
        event loop, which nobody should get to spend without a token (a review)."""
        execution = self.execution_context
        context = execution.context
        if (
            isinstance(context, Context)
            and context.grant is None
            and execution.pre_execution_errors is None
        ):
            found = self._operation()
            if found is not None and not found[2] <= INTROSPECTION_FIELDS:
                refusal = _unauthenticated(context)
                context.response.status_code = refusal.http_status
                # strawberry then skips validation and answers with these errors
                execution.pre_execution_errors = [
                    GraphQLError(refusal.message, extensions=refusal.extensions)
                ]
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        document = execution.graphql_document
        found = self._operation()
        if document is None or found is None or found[2] <= INTROSPECTION_FIELDS:
            yield
            return
        operation, fragments, roots = found

        grant = context.grant
        refusal: GatewayError | None = None
        if grant is None:
            refusal = _unauthenticated(context)
        elif execution.result is not None:
            # Refused before the guard (bad variables, a null condition, an over-long list):
            # no status or permission is decided, so every token gets the same answer.
            yield
            return
        elif not grant.active and not roots <= STATUS_FREE_FIELDS:
            refusal = _inactive(grant)
        if refusal is not None:
            context.response.status_code = refusal.http_status
            execution.result = GraphQLExecutionResult(
                data=None,
                errors=[GraphQLError(refusal.message, extensions=refusal.extensions)],
            )
            yield
            return

        assert grant is not None
        root_type = self._graphql_schema.query_type
        assert root_type is not None
        walker = _Walker(
            self._graphql_schema,
            self._permission_map(),
            grant,
            fragments,
            execution.variables or {},
            {
                definition.variable.name.value: definition.default_value
                for definition in operation.variable_definitions or ()
                if definition.default_value is not None
            },
        )
        walker.walk(operation.selection_set, root_type, ())
        if walker.denials:
            execution.graphql_document = _replace_denied(document, walker.denied_nodes)
        yield
        if not walker.denials:
            return
        result = execution.result
        if not isinstance(result, GraphQLExecutionResult):
            return
        errors = list(result.errors or [])
        for denial in walker.denials.values():
            if result.data is not None:
                _null_denied(result.data, denial)
            errors.append(
                GraphQLError(
                    denial.message,
                    nodes=[denial.node],
                    path=list(denial.path),
                    extensions={
                        "code": "FORBIDDEN",
                        "permission": denial.permission,
                        "permissions": list(denial.permissions),
                    },
                )
            )
        result.errors = errors
