"""Measures of an operation's selections, fragments expanded: depth, aliases, estimated rows.

Every walk memoises per fragment and follows fragment spreads in dependency order
(`fragment_order`), so neither a fragment spread many times nor a long chain of fragments can
make a measure slow or overflow the stack. `gateway.limits` compares the measures with the
configured limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.execution.values import VariableValues, get_argument_values

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


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


def _count(
    selection_set: SelectionSetNode,
    fragment_counts: Mapping[str, int],
    of_field: Callable[[FieldNode], int],
) -> int:
    """`of_field` summed over the fields in `selection_set` and below, a fragment's count (in
    `fragment_counts`) added at each of its spreads."""
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += of_field(selection)
            if selection.selection_set:
                count += _count(selection.selection_set, fragment_counts, of_field)
        elif isinstance(selection, InlineFragmentNode):
            count += _count(selection.selection_set, fragment_counts, of_field)
        elif isinstance(selection, FragmentSpreadNode):
            count += fragment_counts.get(selection.name.value, 0)
    return count


def alias_count(selection_set: SelectionSetNode, fragment_aliases: Mapping[str, int]) -> int:
    """Aliased fields in `selection_set`, a fragment's counted at each of its spreads."""
    return _count(selection_set, fragment_aliases, lambda field: int(field.alias is not None))


def field_count(selection_set: SelectionSetNode, fragment_fields: Mapping[str, int]) -> int:
    """Field selections in `selection_set` and below, a fragment's counted at each spread."""
    return _count(selection_set, fragment_fields, lambda _field: 1)


def _per_fragment(
    document: DocumentNode, measure: Callable[[SelectionSetNode, Mapping[str, int]], int]
) -> dict[str, int]:
    """`measure` of each fragment of `document`, each after the fragments it spreads (whose
    measures it is given)."""
    fragments = _fragments(document)
    measures: dict[str, int] = {}
    for name in fragment_order(fragments):
        measures[name] = measure(fragments[name].selection_set, measures)
    return measures


def document_fields(document: DocumentNode) -> int:
    """The field selections of the document's largest operation, its fragments expanded (see
    `field_count`): what a walk of its selections, as the guard's, visits."""
    counts = _per_fragment(document, field_count)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return max((field_count(o.selection_set, counts) for o in operations), default=0)


def crowded_field(document: DocumentNode, most: int) -> tuple[str, int, FieldNode] | None:
    """A response key (a field's name or alias) selected more than `most` times in one selection
    set, the fields of the fragments spread into it counted at each spread (graphql-core's
    check that such fields can merge compares them pair by pair): the key, how many times, and
    one of its fields; None when there is none."""
    fragments = _fragments(document)
    # per fragment: how many times its selection set selects each key at its own level
    keys: dict[str, dict[str, tuple[int, FieldNode]]] = {}

    def level(selection_set: SelectionSetNode) -> dict[str, tuple[int, FieldNode]]:
        found: dict[str, tuple[int, FieldNode]] = {}

        def add(key: str, times: int, node: FieldNode) -> None:
            count = found[key][0] + times if key in found else times
            found[key] = (count, node)

        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                add((selection.alias or selection.name).value, 1, selection)
            elif isinstance(selection, InlineFragmentNode):
                for key, (times, node) in level(selection.selection_set).items():
                    add(key, times, node)
            elif isinstance(selection, FragmentSpreadNode):
                for key, (times, node) in keys.get(selection.name.value, {}).items():
                    add(key, times, node)
        return found

    def crowded(selection_set: SelectionSetNode) -> tuple[str, int, FieldNode] | None:
        for key, (times, node) in level(selection_set).items():
            if times > most:
                return key, times, node
        return None

    def below(selection_set: SelectionSetNode) -> Iterator[SelectionSetNode]:
        """The selection sets of the fields of `selection_set`, through its inline fragments
        (whose own fields its level counts already)."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode) and selection.selection_set:
                yield selection.selection_set
            elif isinstance(selection, InlineFragmentNode):
                yield from below(selection.selection_set)

    for name in fragment_order(fragments):
        keys[name] = level(fragments[name].selection_set)
    for definition in document.definitions:
        if not isinstance(definition, (OperationDefinitionNode, FragmentDefinitionNode)):
            continue
        stack = [definition.selection_set]
        while stack:
            selection_set = stack.pop()
            found = crowded(selection_set)
            if found is not None:
                return found
            stack.extend(below(selection_set))
    return None


def operation_depth(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """The depth of `operation` with its fragments expanded (see `selection_depth`)."""
    return selection_depth(operation.selection_set, _per_fragment(document, selection_depth))


def operation_aliases(document: DocumentNode, operation: OperationDefinitionNode) -> int:
    """The aliases of `operation` with its fragments expanded (see `alias_count`)."""
    return alias_count(operation.selection_set, _per_fragment(document, alias_count))


# ---------------------------------------------------------------- cost


class CostEstimate:
    """Estimated rows one operation reads: a connection field (one with a `first` argument)
    costs its page size (at least 1: a page of none still runs its statements) for each row
    above it, and so multiplies everything below it; any other field returning an object that
    implements `Node` costs 1 row for each row above it (the objects a connection returns
    through `nodes` or `edges.node` are already counted). Every value of a list argument
    (`filter: {ids: [...]}`) costs 1 for each row above it, as it is matched in SQL.
    Introspection is free (its depth is capped by validation instead).

    Arguments are read as execution will read them: `variables` are the operation's coerced
    variables (defaults applied, `1000.0` read as 1000), `raw_variables` what the client sent
    (to count list values without the coerced input objects)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        raw_variables: Mapping[str, Any],
        *,
        default_page_size: int,
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.variables = variables
        self.raw_variables = raw_variables
        self.defaults = {
            d.variable.name.value: d.default_value
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
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

    def total(self) -> int:
        """Estimated rows of the operation."""
        root = self.schema.get_root_type(self.operation.operation)
        return 0 if root is None else self.rows(self.operation.selection_set, root, False)

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
        listed = sum(self._list_values(argument.value) for argument in node.arguments or ())
        target = get_named_type(field.type)
        if not is_composite_type(target):
            return listed
        below = node.selection_set
        if "first" in field.args:
            size = self.page_size(node, field)
            inner = self.rows(below, target, True) if below else 0
            return listed + size * (1 + inner)
        inner_in_page = in_page and not self._is_row(target)
        inner = self.rows(below, target, inner_in_page) if below else 0
        own = 1 if self._is_row(target) and not in_page else 0
        return listed + own + inner

    def _is_row(self, type_: Any) -> bool:
        if self.node_interface is None:
            return False
        if type_ is self.node_interface:
            return True
        return isinstance(type_, GraphQLObjectType) and self.node_interface in type_.interfaces

    def _list_values(self, value: ValueNode | None) -> int:
        """How many list values `value` holds, a variable's as sent (or its default)."""
        if isinstance(value, VariableNode):
            name = value.name.value
            if name in self.raw_variables:
                return _json_list_values(self.raw_variables[name])
            return self._list_values(self.defaults.get(name))
        if isinstance(value, ListValueNode):
            return len(value.values) + sum(self._list_values(v) for v in value.values)
        if isinstance(value, ObjectValueNode):
            return sum(self._list_values(f.value) for f in value.fields)
        return 0

    def page_size(self, node: FieldNode, field: GraphQLField) -> int:
        """The `first` a connection field asks for, as execution coerces it: the default page
        size when omitted or null, at least 1, and at most the largest page (a larger `first`
        is refused by the field itself)."""
        try:
            value = get_argument_values(field, node, self.variables).get("first")
        except GraphQLError:
            value = None  # not a valid Int: the field refuses it before reading anything
        if not isinstance(value, int) or isinstance(value, bool):
            return self.default_page_size
        return max(1, min(value, self.max_page_size))


def _json_list_values(value: Any) -> int:
    """How many list values a decoded JSON value holds, at every depth (iterative)."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            count += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return count
