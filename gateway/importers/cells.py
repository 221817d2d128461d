"""Typed reading of OneRoster cells (dates, booleans, lists, enumerations, grades) and the
OneRoster → Graph vocabularies; a bad value raises an error naming file, line and column."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TypeVar

from gateway.importers.reading import OneRosterError, Row, Warnings

T = TypeVar("T")

ACTIVE = "active"
TO_BE_DELETED = "tobedeleted"
INACTIVE = "inactive"
STATUSES = (ACTIVE, TO_BE_DELETED, INACTIVE)

ORG_TYPES = {t: t for t in ("district", "school", "department", "local", "state", "national")}

SESSION_TYPES = {
    "schoolyear": "SCHOOL_YEAR",
    "semester": "SEMESTER",
    "term": "TERM",
    "gradingperiod": "GRADING_PERIOD",
}

USER_ROLES = {
    "student": "STUDENT",
    "teacher": "TEACHER",
    "administrator": "ADMINISTRATOR",
    "aide": "AIDE",
    "guardian": "GUARDIAN",
    "parent": "PARENT",
    "relative": "GUARDIAN",
    "proctor": "TA",
    "districtadministrator": "DISTRICT_ADMINISTRATOR",
    "siteadministrator": "ADMINISTRATOR",
    "systemadministrator": "ADMINISTRATOR",
    "principal": "ADMINISTRATOR",
    "counselor": "STAFF",
}
"""OneRoster 1.1 `users.role` and 1.2 `roles.role` → Edlink roles (extension values → MEMBER)."""

ENROLLMENT_ROLES = USER_ROLES
"""1.1 and 1.2 enrollments use administrator, proctor, student and teacher; 1.0 exports also
carry the user roles, which are accepted with the same mapping."""

OBSERVER_ROLES = {
    "parent": "PARENT",
    "guardian": "GUARDIAN",
    "relative": "RELATIVE",
    "aide": "AIDE",
    "proctor": "AIDE",
}
"""The OneRoster roles that make a user the observer of an agent link (DESIGN §10), each with
the Agent.relationship it gives; a link whose observer has none of them is OTHER."""

ROLE_TYPES = {"primary": "primary", "secondary": "secondary"}
CLASS_TYPES = {"homeroom": "homeroom", "scheduled": "scheduled"}
SEXES = {"male": "male", "female": "female", "other": "other", "unspecified": "unspecified"}

RACE_FLAGS = (
    ("americanIndianOrAlaskaNative", "AmericanIndianorAlaskaNative"),
    ("asian", "Asian"),
    ("blackOrAfricanAmerican", "BlackorAfricanAmerican"),
    ("nativeHawaiianOrOtherPacificIslander", "NativeHawaiianorOtherPacificIslander"),
    ("white", "White"),
    ("demographicRaceTwoOrMoreRaces", "DemographicRaceTwoorMoreRaces"),
)
"""demographics.csv race flags → CEDS race codes in Person.demographics.races."""

_GRADES = {g.upper(): g for g in ("IT", "PR", "PK", "TK", "KG", "PS", "UG", "Other")}
_GRADES.update({f"{n:02d}": f"{n:02d}" for n in range(1, 14)})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


_EMPTY = "the value is required but the cell is empty"


class Cells:
    """Typed access to the cells of one file's rows."""

    def __init__(self, file: str, warnings: Warnings) -> None:
        self.file = file
        self.warnings = warnings

    def error(self, row: Row, column: str | None, message: str) -> OneRosterError:
        """An error about `column` of `row`."""
        return OneRosterError(message, file=self.file, line=row.line, column=column)

    def text(self, row: Row, column: str) -> str | None:
        """The stripped cell, or None when empty or the column is absent."""
        return row.cells.get(column, "").strip() or None

    def required(self, row: Row, column: str) -> str:
        """The stripped cell, which must not be empty."""
        value = row.cells.get(column, "").strip()
        if not value:
            raise self.error(row, column, _EMPTY)
        return value

    def date(self, row: Row, column: str, *, required: bool = False) -> date | None:
        """A YYYY-MM-DD date."""
        value = self.required(row, column) if required else self.text(row, column)
        if value is None:
            return None
        try:
            if _DATE.match(value):
                return date.fromisoformat(value)
        except ValueError:
            pass
        raise self.error(row, column, f"'{value}' is not a date (expected YYYY-MM-DD)")

    def timestamp(self, row: Row, column: str) -> datetime | None:
        """An ISO 8601 date-time (`2023-10-02T00:00:00.000Z`) or date."""
        value = self.text(row, column)
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise self.error(
                row, column, f"'{value}' is not an ISO 8601 date-time (e.g. 2023-10-02T08:00:00Z)"
            ) from None

    def boolean(self, row: Row, column: str) -> bool | None:
        """true / false (any case); None when empty."""
        value = self.text(row, column)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self.error(row, column, f"'{value}' is not a boolean (expected true or false)")

    def enum(
        self,
        row: Row,
        column: str,
        values: Mapping[str, T],
        *,
        extension: T | None = None,
        required: bool = False,
    ) -> T | None:
        """The mapped value of an enumeration cell (matched in any case).

        `ext:` values are OneRoster extensions: they map to `extension` with a warning, or are an
        error when `extension` is None.
        """
        value = self.required(row, column) if required else self.text(row, column)
        if value is None:
            return None
        found = values.get(value.lower().replace("_", ""))
        if found is not None:
            return found
        if extension is not None and value.lower().startswith("ext:"):
            self.warnings.add(
                f"extension {self.file} {column}",
                f"{self.file}, line {row.line}, column '{column}': extension value '{value}' "
                f"read as {extension}",
                key=value,
            )
            return extension
        allowed = ", ".join(sorted(set(values)))
        raise self.error(row, column, f"'{value}' is not one of: {allowed}")

    def items(self, row: Row, column: str) -> list[str]:
        """A comma-separated list (empty items dropped)."""
        value = row.cells.get(column, "")
        if not value:
            return []
        return [item for item in (part.strip() for part in value.split(",")) if item]

    def required_items(self, row: Row, column: str) -> list[str]:
        """`items`, of which there must be at least one."""
        found = self.items(row, column)
        if not found:
            raise self.error(row, column, _EMPTY)
        return found

    def grades(self, row: Row, column: str) -> list[str]:
        """CEDS grade levels; `1` reads as `01`; anything else is left out with a warning."""
        grades: list[str] = []
        for item in self.items(row, column):
            upper = item.upper()
            if upper.isdigit() and 0 < int(upper) < 14:
                upper = f"{int(upper):02d}"
            grade = _GRADES.get(upper)
            if grade is None:
                self.warnings.add(
                    f"grades {self.file}",
                    f"{self.file}, line {row.line}, column '{column}': '{item}' is not a CEDS "
                    "grade level and was left out",
                    key=item,
                    repeats=True,  # a grade left out of each row: how many rows lost one
                )
            elif grade not in grades:
                grades.append(grade)
        return grades

    def status(self, row: Row, mode: str) -> str:
        """active, tobedeleted or inactive; an empty status reads as active (a warning in delta
        mode, where the binding requires it). dateLastModified is checked too."""
        value = row.cells.get("status", "").strip().lower()
        if not value:
            if mode == "delta":
                self.warnings.add(
                    "empty status",
                    f"{self.file}: rows with an empty status (first at line {row.line}) were read "
                    "as active",
                    key=self.file,
                )
            value = ACTIVE
        elif value not in STATUSES:
            raise self.error(
                row, "status", f"'{row.cells['status']}' is not one of: {', '.join(STATUSES)}"
            )
        if self.timestamp(row, "dateLastModified") is None and mode == "delta":
            self.warnings.add(
                "empty dateLastModified",
                f"{self.file}: rows with an empty dateLastModified (first at line {row.line})",
                key=self.file,
            )
        return value
