"""Which permission each graph type, field and filter needs: the one table (DESIGN §4 step 4).

The schema publishes these as `@requiresPermission` directives and the guard enforces exactly
what the directives say, so the two cannot drift.
"""

from __future__ import annotations

GRAPH_TYPES: tuple[str, ...] = (
    "District",
    "School",
    "Session",
    "Course",
    "Class",
    "Section",
    "Person",
    "Enrollment",
    "Agent",
)

TYPE_PERMISSIONS: dict[str, str] = {
    "District": "organizations:read",
    "School": "organizations:read",
    "Course": "organizations:read",
    "Class": "organizations:read",
    "Section": "organizations:read",
    "Session": "sessions:read",
    "Person": "people:read",
    "Enrollment": "enrollments:read",
    "Agent": "agents:read",
}

# Fields gated beyond the type they return; a field returning a gated type needs that type's
# permission too (see `field_permissions`).
FIELD_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Person", "email"): ("emails:read",),
    ("Person", "phone"): ("phones:read",),
    ("Person", "address"): ("addresses:read",),
    ("PersonAddress", "phone"): ("phones:read",),
    ("Person", "demographics"): ("demographics:read",),
    ("Person", "identifiers"): ("identifiers:read",),
    ("Class", "people"): ("enrollments:read",),
    ("Person", "classes"): ("enrollments:read",),
    **{(name, "properties"): ("properties:read",) for name in GRAPH_TYPES},
}

# Filter fields that would reveal a gated value: using one is denied like reading it (DESIGN §4:
# no oracles). A filter on related ids needs what reading that relation needs.
FILTER_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("SessionFilter", "schoolIds"): ("organizations:read",),  # Session.school
    ("CourseFilter", "sessionIds"): ("sessions:read",),  # Course.session
    ("ClassFilter", "sessionIds"): ("sessions:read",),  # Class.sessions
    ("PersonFilter", "email"): ("emails:read",),
    ("PersonFilter", "phone"): ("phones:read",),
    ("PersonFilter", "schoolIds"): ("organizations:read",),  # Person.schools
    ("PersonFilter", "classIds"): ("organizations:read", "enrollments:read"),  # Person.classes
    ("EnrollmentFilter", "classIds"): ("organizations:read",),  # Enrollment.class
    ("EnrollmentFilter", "sectionIds"): ("organizations:read",),  # Enrollment.section
    ("EnrollmentFilter", "personIds"): ("people:read",),  # Enrollment.person
    ("AgentFilter", "observerIds"): ("people:read",),  # Agent.observer
    ("AgentFilter", "targetIds"): ("people:read",),  # Agent.target
}


def field_permissions(parent: str, field: str, returns: str | None) -> tuple[str, ...]:
    """Every slug that `parent.field` needs when it returns the graph type `returns`."""
    needed = list(FIELD_PERMISSIONS.get((parent, field), ()))
    if returns is not None and returns in TYPE_PERMISSIONS:
        slug = TYPE_PERMISSIONS[returns]
        if slug not in needed:
            needed.insert(0, slug)
    return tuple(needed)
