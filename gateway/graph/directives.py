"""`@requiresPermission`: the permission table of `gateway.access.gates`, published in the SDL."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema_directive import Location

from gateway.access.gates import FILTER_PERMISSIONS, TYPE_PERMISSIONS, field_permissions


@strawberry.schema_directive(
    name="requiresPermission",
    locations=[Location.OBJECT, Location.FIELD_DEFINITION, Location.INPUT_FIELD_DEFINITION],
    repeatable=True,
    description=(
        "The integration needs this permission to read the type or field (or to filter by "
        "it). Without it the field resolves to null and the response carries a FORBIDDEN "
        "error whose `extensions.permission` names the slug (`extensions.permissions` "
        "lists every one it lacks)."
    ),
)
class RequiresPermission:
    """One permission slug that a type, field or filter needs."""

    slug: str


def gate(parent: str, field: str, returns: str | None = None) -> list[Any]:
    """The directives for `parent.field` (returning the graph type `returns`), from the table."""
    return [RequiresPermission(slug=slug) for slug in field_permissions(parent, field, returns)]


def type_gate(name: str) -> list[Any]:
    """The directive for the graph type `name`."""
    return [RequiresPermission(slug=TYPE_PERMISSIONS[name])]


def requires(*slugs: str) -> list[Any]:
    """The directives for a field or filter field that needs every one of `slugs`."""
    return [RequiresPermission(slug=slug) for slug in slugs]


def filter_gate(filter_name: str, field: str) -> list[Any]:
    """The directives for the filter field `filter_name.field`, from the table (none if open)."""
    return requires(*FILTER_PERMISSIONS.get((filter_name, field), ()))
