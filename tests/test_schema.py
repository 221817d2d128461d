"""The schema as a product: committed SDL up to date, descriptions everywhere, and the
permission directives exactly what the gate table says."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    graphql_sync,
)

from gateway.access.gates import FIELD_PERMISSIONS, FILTER_PERMISSIONS, TYPE_PERMISSIONS
from gateway.graph.guard import PermissionMap
from gateway.graph.schema import schema

ROOT = Path(__file__).resolve().parents[1]
GRAPHQL = schema._schema


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == schema.as_str() + "\n", (
        "schema.graphql is stale: regenerate it with `gateway export-schema > schema.graphql`"
    )


def _own_types() -> list[object]:
    return [t for name, t in GRAPHQL.type_map.items() if not name.startswith("__")]


def test_every_type_and_field_has_a_description() -> None:
    missing = []
    for type_ in _own_types():
        if getattr(type_, "name", "") in {"String", "Int", "Boolean", "Float", "ID"}:
            continue
        if not getattr(type_, "description", None):
            missing.append(type_.name)  # type: ignore[attr-defined]
        if isinstance(type_, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{type_.name}.{name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{type_.name}.{name}({arg_name})")
    assert not missing, f"undocumented: {missing}"


def test_enum_values_are_documented_types() -> None:
    for type_ in _own_types():
        if isinstance(type_, GraphQLEnumType):
            assert type_.description, type_.name


PERMISSIONS = PermissionMap(GRAPHQL)


def test_every_field_returning_a_gated_type_carries_its_permission() -> None:
    for type_ in _own_types():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            named = get_named_type(field.type).name
            node = named.removesuffix("Connection")
            if node in TYPE_PERMISSIONS and not type_.name.endswith(("Connection", "Edge")):
                assert TYPE_PERMISSIONS[node] in PERMISSIONS.fields.get((type_.name, name), ()), (
                    f"{type_.name}.{name} returns {named} but lacks @requiresPermission"
                )


def test_field_and_filter_gates_match_the_table() -> None:
    for (type_name, field), slugs in FIELD_PERMISSIONS.items():
        assert set(slugs) <= set(PERMISSIONS.fields[(type_name, field)]), (type_name, field)
    for (type_name, field), slugs in FILTER_PERMISSIONS.items():
        assert PERMISSIONS.inputs[(type_name, field)] == slugs
    assert set(PERMISSIONS.inputs) == set(FILTER_PERMISSIONS)
    for type_name, slug in TYPE_PERMISSIONS.items():
        assert f'type {type_name} implements Node @requiresPermission(slug: "{slug}")' in (
            schema.as_str()
        )


@pytest.mark.parametrize("gated", sorted({k for k in PERMISSIONS.fields if k[0] != "Query"}))
def test_gated_fields_are_nullable(gated: tuple[str, str]) -> None:
    type_name, field = gated
    graphql_type = GRAPHQL.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    slugs = set(PERMISSIONS.fields[gated]) - {TYPE_PERMISSIONS.get(type_name)}
    if slugs:  # gated beyond the parent's own permission: a null must not wipe the parent
        assert not isinstance(graphql_type.fields[field].type, GraphQLNonNull), gated


def test_root_graph_fields_are_nullable() -> None:
    query = GRAPHQL.query_type
    assert query is not None
    for name, field in query.fields.items():
        if name != "integration":
            assert not isinstance(field.type, GraphQLNonNull), name


def test_introspection_tells_which_permission_each_gated_field_needs() -> None:
    # Introspection cannot show applied directives, so GraphiQL users read it in descriptions.
    result = graphql_sync(
        GRAPHQL,
        """{ __type(name: "Person") { description fields { name description } }
             f: __type(name: "PersonFilter") { inputFields { name description } } }""",
    )
    assert result.errors is None
    assert result.data is not None
    person = result.data["__type"]
    assert person["description"].endswith("Requires `people:read`.")
    fields = {f["name"]: f["description"] for f in person["fields"]}
    assert fields["email"].endswith("Requires `emails:read`.")
    assert fields["classes"].endswith("Requires `organizations:read` and `enrollments:read`.")
    assert "Requires" not in fields["firstName"]
    inputs = {f["name"]: f["description"] for f in result.data["f"]["inputFields"]}
    assert inputs["email"].endswith("Filtering by it requires `emails:read`.")
    for (type_name, field), slugs in PERMISSIONS.fields.items():
        graphql_type = GRAPHQL.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        description = graphql_type.fields[field].description or ""
        for slug in set(slugs) - {TYPE_PERMISSIONS.get(type_name)}:
            assert f"`{slug}`" in description, (type_name, field)
