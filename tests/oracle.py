"""The SELECTED closure of DESIGN §4 step 5 computed in plain Python from generated rows.

Written from the rules' text, not from gateway.scope: it is what the SQL is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.factories import Graph

# GraphQL type -> table; each root connection is named like its table (`people`, `classes`).
TABLES = {
    "District": "districts",
    "School": "schools",
    "Session": "sessions",
    "Course": "courses",
    "Class": "classes",
    "Section": "sections",
    "Person": "people",
    "Enrollment": "enrollments",
    "Agent": "agents",
}


@dataclass(frozen=True)
class Visible:
    """Visible ids per GraphQL type name."""

    ids: dict[str, set[str]]

    def all(self) -> set[str]:
        """Every visible id of any type."""
        return set().union(*self.ids.values())


def visible(graph: Graph, targets: set[str] | None) -> Visible:
    """What an integration with these targets sees (None: scope ALL)."""
    rows = graph.rows
    if targets is None:
        return Visible({t: {r["id"] for r in rows[table]} for t, table in TABLES.items()})
    ts = targets & set(graph.ids("schools"))
    tc = targets & set(graph.ids("courses"))
    tk = targets & set(graph.ids("classes"))
    classes = {
        c["id"]
        for c in rows["classes"]
        if c["school_id"] in ts or c["course_id"] in tc or c["id"] in tk
    }
    sections = {s["id"] for s in rows["sections"] if s["class_id"] in classes}
    enrollments = {e["id"] for e in rows["enrollments"] if e["class_id"] in classes}
    direct = {e["person_id"] for e in rows["enrollments"] if e["class_id"] in classes}
    direct |= {m["person_id"] for m in rows["person_schools"] if m["school_id"] in ts}
    agents = {a["id"] for a in rows["agents"] if a["target_id"] in direct}
    people = direct | {a["observer_id"] for a in rows["agents"] if a["id"] in agents}
    class_rows = [c for c in rows["classes"] if c["id"] in classes]
    schools = ts | {c["school_id"] for c in class_rows}
    schools |= {c["school_id"] for c in rows["courses"] if c["id"] in tc and c["school_id"]}
    courses = tc | {c["id"] for c in rows["courses"] if c["school_id"] in ts}
    courses |= {c["course_id"] for c in class_rows if c["course_id"]}
    sessions = {s["id"] for s in rows["sessions"] if s["school_id"] in ts}
    sessions |= {cs["session_id"] for cs in rows["class_sessions"] if cs["class_id"] in classes}
    sessions |= {c["session_id"] for c in rows["courses"] if c["id"] in courses and c["session_id"]}
    return Visible(
        {
            "District": {d["id"] for d in rows["districts"]},
            "School": schools,
            "Session": sessions,
            "Course": courses,
            "Class": classes,
            "Section": sections,
            "Person": people,
            "Enrollment": enrollments,
            "Agent": agents,
        }
    )


# ---------------------------------------------------------------- properties (DESIGN §3)

IDENTIFIER_OR_CONTACT_KEYS = frozenset(
    {
        "sourcedid",
        "username",
        "identifier",
        "userids",
        "usermasteridentifier",
        "classcode",
        "email",
        "phone",
        "sms",
        "password",
        "studentnumber",
        "employeeid",
        "ncesid",
        "lunchpin",
    }
)
"""Keys (lower-cased) that name an identifier or contact data, which `properties` must not
hold: those are served by `identifiers`, `email` and `phone` behind their own permissions."""


def property_leaks(properties: Any, path: str = "") -> list[str]:
    """The keys of `properties` (nested ones too, as dotted paths) that are references to other
    rows (`…SourcedId`, `…SourcedIds`) or identifiers or contact data."""
    found: list[str] = []
    if isinstance(properties, dict):
        for key, value in properties.items():
            lowered = key.lower()
            if lowered.endswith(("sourcedid", "sourcedids")) or lowered in (
                IDENTIFIER_OR_CONTACT_KEYS
            ):
                found.append(path + key)
            found += property_leaks(value, f"{path}{key}.")
    elif isinstance(properties, list):
        for item in properties:
            found += property_leaks(item, path)
    return found
