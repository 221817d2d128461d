"""Which columns of each OneRoster file a row's `properties` keeps: an allow-list.

`properties` holds the raw upstream fields that are neither references to other rows nor
identifiers nor contact data (DESIGN §3); those are edges, `identifiers`, `email` and `phone`,
each behind its own permission and the scope, and `properties:read` must not be a side door to
them. An allow-list, because a column it does not know (a later OneRoster version's, or a
`metadata.*` extension) cannot be known to be none of those.
"""

from __future__ import annotations

from collections.abc import Mapping

_COMMON = ("status", "dateLastModified")

KEPT: dict[str, frozenset[str]] = {
    stem: frozenset((*_COMMON, *columns))
    for stem, columns in {
        "orgs": ("name", "type"),
        "academicSessions": ("title", "type", "startDate", "endDate", "schoolYear"),
        "courses": ("title", "courseCode", "grades", "subjects", "subjectCodes"),
        "classes": (
            "title",
            "grades",
            "classType",
            "location",
            "subjects",
            "subjectCodes",
            "periods",
        ),
        "users": (
            "enabledUser",
            "role",
            "givenName",
            "familyName",
            "middleName",
            "grades",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "pronouns",
        ),
        "roles": ("roleType", "role", "beginDate", "endDate"),
        "enrollments": ("role", "primary", "beginDate", "endDate"),
    }.items()
}
"""Per file stem, the columns `properties` keeps. Left out everywhere: `sourcedId` and every
other identifier (`identifier`, `username`, `userIds`, `userMasterIdentifier`, `classCode`),
every reference (`…SourcedId`, `…SourcedIds`), contact data (`email`, `phone`, `sms`), the
`password`, and columns outside the OneRoster 1.1/1.2 binding (`metadata.*`)."""


def kept(stem: str, cells: Mapping[str, str]) -> dict[str, str]:
    """The cells of a `stem` row that its `properties` keeps, in file order."""
    columns = tuple(cells)
    found = _KEPT_COLUMNS.get((stem, columns))
    if found is None:
        if len(_KEPT_COLUMNS) >= 64:
            _KEPT_COLUMNS.clear()
        allowed = KEPT[stem]
        found = _KEPT_COLUMNS[stem, columns] = tuple(c for c in columns if c in allowed)
    return {column: cells[column] for column in found}


_KEPT_COLUMNS: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
"""The kept columns of each header seen lately: every row of a file has the same columns, so
the allow-list is applied once per file, not once per cell."""
