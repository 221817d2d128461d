"""The permission catalog (DESIGN §4): one table, read by the guard, the schema and the docs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PermissionSpec:
    """One catalog entry; `id` is the same in every installation."""

    slug: str
    id: uuid.UUID
    name: str
    description: str
    gates: str


_NAMESPACE = uuid.UUID("6f1d3c1e-3f5a-5b7e-9a51-2c0de0a1b000")


def _spec(slug: str, name: str, description: str, gates: str) -> PermissionSpec:
    return PermissionSpec(slug, uuid.uuid5(_NAMESPACE, slug), name, description, gates)


CATALOG: tuple[PermissionSpec, ...] = (
    _spec(
        "organizations:read",
        "Read organizations",
        "Read districts, schools, courses, classes and sections.",
        "District, School, Course, Class, Section",
    ),
    _spec(
        "sessions:read", "Read sessions", "Read school years, terms and grading periods.", "Session"
    ),
    _spec("people:read", "Read people", "Read students, teachers, staff and guardians.", "Person"),
    _spec(
        "enrollments:read",
        "Read enrollments",
        "Read enrollments and the edges that go through them (class.people, person.classes).",
        "Enrollment, and the edges that go through enrollments",
    ),
    _spec(
        "agents:read",
        "Read agents",
        "Read guardian and aide relationships between people.",
        "Agent",
    ),
    _spec("emails:read", "Read email addresses", "Read people's email addresses.", "Person.email"),
    _spec(
        "phones:read",
        "Read phone numbers",
        "Read people's phone numbers, including the phone of a person's address.",
        "Person.phone, PersonAddress.phone",
    ),
    _spec("addresses:read", "Read addresses", "Read people's postal addresses.", "Person.address"),
    _spec(
        "demographics:read",
        "Read demographics",
        "Read people's demographics (birthday, gender, race, program flags).",
        "Person.demographics",
    ),
    _spec(
        "identifiers:read",
        "Read identifiers",
        "Read people's identifiers from other systems (SIS ids, state ids, usernames).",
        "Person.identifiers",
    ),
    _spec(
        "properties:read",
        "Read raw properties",
        "Read `properties`, the raw upstream fields of every object.",
        "properties of every type",
    ),
)

BY_SLUG: dict[str, PermissionSpec] = {p.slug: p for p in CATALOG}
BY_ID: dict[uuid.UUID, PermissionSpec] = {p.id: p for p in CATALOG}
ALL_SLUGS: frozenset[str] = frozenset(BY_SLUG)


def resolve_permission(value: str) -> PermissionSpec:
    """Find a permission by slug or by UUID; raise KeyError naming the value when unknown."""
    if value in BY_SLUG:
        return BY_SLUG[value]
    try:
        return BY_ID[uuid.UUID(value)]
    except (ValueError, KeyError):
        known = ", ".join(sorted(BY_SLUG))
        raise KeyError(f"unknown permission {value!r}; known permissions: {known}") from None
