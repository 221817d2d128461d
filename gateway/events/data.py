"""An event's `data`: one object as an integration can read it through the Graph API.

Graph field names (camelCase), plus the ids of the objects it points to as Edlink's objects
carry them (`schoolId`, `personId`, a person's `schoolIds`, a class's `sessionIds`…), each kept
only when the integration sees that object. What its permissions deny is left out, here when an
event is written and again when it is read (`strip`), so a revoked permission also hides old
values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from gateway import models
from gateway.access.gates import TYPE_PERMISSIONS

# Graph type name, event target (the `EventTarget` value) and table name of each graph type.
TYPE_NAMES: dict[str, str] = {
    "districts": "District",
    "schools": "School",
    "sessions": "Session",
    "courses": "Course",
    "classes": "Class",
    "sections": "Section",
    "people": "Person",
    "enrollments": "Enrollment",
    "agents": "Agent",
}
TARGETS: dict[str, str] = {kind: name.upper() for kind, name in TYPE_NAMES.items()}
KINDS: dict[str, str] = {target: kind for kind, target in TARGETS.items()}

# The references each kind's data carries: column → (data key, kind of the object pointed to).
REFERENCES: dict[str, dict[str, tuple[str, str]]] = {
    "districts": {},
    "schools": {"district_id": ("districtId", "districts")},
    "sessions": {
        "district_id": ("districtId", "districts"),
        "school_id": ("schoolId", "schools"),
    },
    "courses": {
        "district_id": ("districtId", "districts"),
        "school_id": ("schoolId", "schools"),
        "session_id": ("sessionId", "sessions"),
    },
    "classes": {"school_id": ("schoolId", "schools"), "course_id": ("courseId", "courses")},
    "sections": {"class_id": ("classId", "classes")},
    "people": {"district_id": ("districtId", "districts")},
    "enrollments": {
        "person_id": ("personId", "people"),
        "class_id": ("classId", "classes"),
        "section_id": ("sectionId", "sections"),
    },
    "agents": {"observer_id": ("observerId", "people"), "target_id": ("targetId", "people")},
}

# Lists of ids read through a link table: kind → (data key, link table, own column, other
# column, kind of the objects listed).
LINKED: dict[str, tuple[str, sa.Table, str, str, str]] = {
    "people": (
        "schoolIds",
        models.table_of(models.PersonSchool),
        "person_id",
        "school_id",
        "schools",
    ),
    "classes": (
        "sessionIds",
        models.table_of(models.ClassSession),
        "class_id",
        "session_id",
        "sessions",
    ),
}

# Fields gated beyond their type (DESIGN §4 step 4), as data keys.
_PERSON_FIELDS = {
    "email": "emails:read",
    "phone": "phones:read",
    "address": "addresses:read",
    "demographics": "demographics:read",
    "identifiers": "identifiers:read",
}

_SKIPPED = {"id", "source_id"}


@functools.cache
def camel(name: str) -> str:
    """`grade_levels` → `gradeLevels`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _key_kind(kind: str) -> dict[str, str]:
    """Data key → kind pointed to, for every reference key of `kind`'s data."""
    keys = dict(REFERENCES[kind].values())
    if kind in LINKED:
        keys[LINKED[kind][0]] = LINKED[kind][4]
    return keys


REFERENCE_KEYS: dict[str, dict[str, str]] = {kind: _key_kind(kind) for kind in TYPE_NAMES}


def readable_kinds(permissions: Iterable[str]) -> list[str]:
    """The kinds whose type the permissions cover, in graph order."""
    held = set(permissions)
    return [kind for kind, name in TYPE_NAMES.items() if TYPE_PERMISSIONS[name] in held]


@functools.lru_cache(maxsize=1024)
def denied_keys(kind: str, permissions: frozenset[str]) -> frozenset[str]:
    """The data keys of `kind` that `permissions` do not let the integration read: gated
    fields, `properties`, and references to types it may not read."""
    denied: set[str] = set()
    if "properties:read" not in permissions:
        denied.add("properties")
    if kind == "people":
        denied |= {key for key, slug in _PERSON_FIELDS.items() if slug not in permissions}
    for key, target in REFERENCE_KEYS[kind].items():
        if TYPE_PERMISSIONS[TYPE_NAMES[target]] not in permissions:
            denied.add(key)
    return frozenset(denied)


def strip(
    kind: str, data: Mapping[str, Any] | None, permissions: frozenset[str]
) -> dict[str, Any] | None:
    """`data` without what `permissions` deny (a person's address loses its phone without
    `phones:read`)."""
    if data is None:
        return None
    denied = denied_keys(kind, permissions)
    kept = {key: value for key, value in data.items() if key not in denied}
    address = kept.get("address")
    if kind == "people" and isinstance(address, dict) and "phones:read" not in permissions:
        kept["address"] = {key: value for key, value in address.items() if key != "phone"}
    return kept


def build(
    kind: str,
    row: Mapping[str, Any],
    visible: Mapping[str, set[str]],
    linked: Mapping[str, list[str]],
    permissions: frozenset[str],
) -> dict[str, Any]:
    """The data of one row of `kind` for an integration that sees the ids in `visible` (per
    kind) and holds `permissions`; `linked` is the row's linked ids (`schoolIds`…), if any."""
    references = REFERENCES[kind]
    data: dict[str, Any] = {"id": row["id"]}
    for column, value in row.items():
        if column in _SKIPPED:
            continue
        if column in references:
            key, target = references[column]
            data[key] = value if value is not None and value in visible[target] else None
        elif type(value) is datetime or type(value) is date:
            data[camel(column)] = value.isoformat()
        else:
            data[camel(column)] = value
    if kind in LINKED:
        key, _, _, _, target = LINKED[kind]
        data[key] = sorted(i for i in linked.get(row["id"], ()) if i in visible[target])
    kept = strip(kind, data, permissions)
    assert kept is not None
    return kept
