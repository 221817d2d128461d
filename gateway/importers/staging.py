"""roles.csv (1.2) and demographics.csv, checked and staged in temporary tables until the users
pass folds them into People (so that each Person row is written once, whole); and the appending
of rows to a staging table."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.importers.cells import RACE_FLAGS, ROLE_TYPES, SEXES, TO_BE_DELETED, USER_ROLES, Cells
from gateway.importers.reading import OneRosterError, Row
from gateway.importers.run import PEOPLE, Run
from gateway.importers.store import SEEN, STAGED_DEMOGRAPHICS, STAGED_ROLES

_ROLE_COLUMNS = (
    "sourcedId",
    "roleType",
    "role",
    "orgSourcedId",
    "beginDate",
    "endDate",
    "userProfileSourcedId",
)

EMPTY_DEMOGRAPHICS: dict[str, Any] = {
    "birthday": None,
    "gender": None,
    "races": [],
    "hispanicOrLatinoEthnicity": None,
    "englishLanguageLearner": None,
    "individualizedEducationPlan": None,
    "economicallyDisadvantaged": None,
    "section504": None,
    "giftedTalented": None,
    "migrant": None,
    "homeless": None,
    "fosterCare": None,
    "militaryConnected": None,
    "primaryLanguage": None,
    "countryOfBirth": None,
    "stateOfBirth": None,
    "cityOfBirth": None,
}
"""The shape of Person.demographics (DESIGN §3), camelCase; OneRoster fills some of it."""


async def stage_roles(run: Run) -> None:
    """roles.csv → the staging table (checked: enums, dates, orgs, duplicate sourcedIds)."""
    mode = run.mode("roles")
    if mode == "absent":
        return
    csv_file, cells = run.open(
        "roles", ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId")
    )
    for batch in csv_file.batches(run.batch_size):
        seen: list[tuple[str, int, str]] = []
        staged: list[dict[str, Any]] = []
        for row in batch:
            sourced_id = cells.required(row, "sourcedId")
            seen.append((run.id("role", sourced_id), row.line, sourced_id))
            live = cells.status(row, mode) != TO_BE_DELETED
            if not live and mode == "bulk":
                continue
            user = cells.required(row, "userSourcedId")
            entry = {"sourcedId": sourced_id}
            if live:
                cells.enum(row, "roleType", ROLE_TYPES, required=True)
                cells.enum(row, "role", USER_ROLES, extension="MEMBER", required=True)
                run.school_of(cells, row, "orgSourcedId", cells.required(row, "orgSourcedId"))
                cells.date(row, "beginDate")
                cells.date(row, "endDate")
                entry.update({c: row.cells[c].strip() for c in _ROLE_COLUMNS if c in row.cells})
            staged.append(
                {
                    "line": row.line,
                    "person_id": run.id("person", user),
                    "user_sid": user,
                    "sourced_id": sourced_id,
                    "live": live,
                    "entry": entry,
                }
            )
        await run.check_duplicates(cells.file, "role", seen)
        await run.store.mark_seen("role", [(i, line, True) for i, line, _ in seen])
        if staged:
            await run.store.insert(STAGED_ROLES, staged)


def demographics_of(cells: Cells, row: Row) -> dict[str, Any]:
    """A demographics.csv row as Person.demographics."""
    birthday = cells.date(row, "birthDate")
    races = [code for flag, code in RACE_FLAGS if cells.boolean(row, flag)]
    return {
        **EMPTY_DEMOGRAPHICS,
        "birthday": birthday.isoformat() if birthday else None,
        "gender": cells.enum(row, "sex", SEXES, extension="other"),
        "races": races,
        "hispanicOrLatinoEthnicity": cells.boolean(row, "hispanicOrLatinoEthnicity"),
        "countryOfBirth": cells.text(row, "countryOfBirthCode"),
        "stateOfBirth": cells.text(row, "stateOfBirthAbbreviation"),
        "cityOfBirth": cells.text(row, "cityOfBirth"),
    }


async def stage_demographics(run: Run) -> None:
    """demographics.csv → the staging table (one row per user; sourcedId is the user's)."""
    mode = run.mode("demographics")
    if mode == "absent":
        return
    csv_file, cells = run.open("demographics", ("sourcedId",))
    for batch in csv_file.batches(run.batch_size):
        seen: list[tuple[str, int, str]] = []
        staged: list[dict[str, Any]] = []
        for row in batch:
            user = cells.required(row, "sourcedId")
            person_id = run.id("person", user)
            seen.append((person_id, row.line, user))
            live = cells.status(row, mode) != TO_BE_DELETED
            if not live and mode == "bulk":
                continue
            staged.append(
                {
                    "person_id": person_id,
                    "line": row.line,
                    "user_sid": user,
                    "live": live,
                    "demographics": demographics_of(cells, row) if live else None,
                }
            )
        await run.check_duplicates(cells.file, "demographic", seen)
        await run.store.mark_seen("demographic", [(i, line, True) for i, line, _ in seen])
        if staged:
            await run.store.insert(STAGED_DEMOGRAPHICS, staged)


async def staged(
    run: Run, ids: Sequence[str]
) -> tuple[dict[str, list[tuple[bool, dict[str, Any]]]], dict[str, dict[str, Any] | None]]:
    """The staged role rows (in file order) and demographics of the people `ids`."""
    roles: dict[str, list[tuple[bool, dict[str, Any]]]] = {}
    demographics: dict[str, dict[str, Any] | None] = {}
    if run.mode("roles") != "absent":
        rows = await run.conn.execute(
            sa.select(STAGED_ROLES.c.person_id, STAGED_ROLES.c.live, STAGED_ROLES.c.entry)
            .where(run.store.among(STAGED_ROLES.c.person_id, ids))
            .order_by(STAGED_ROLES.c.line)
        )
        for person_id, live, entry in rows:
            roles.setdefault(person_id, []).append((live, entry))
    if run.mode("demographics") != "absent":
        found = await run.conn.execute(
            sa.select(STAGED_DEMOGRAPHICS.c.person_id, STAGED_DEMOGRAPHICS.c.demographics).where(
                run.store.among(STAGED_DEMOGRAPHICS.c.person_id, ids)
            )
        )
        demographics = {row.person_id: row.demographics for row in found}
    return roles, demographics


async def check_staged_users(run: Run) -> None:
    """Raise for the first staged role or demographics row whose user does not exist."""
    if run.bulk("person"):
        known = sa.select(SEEN.c.id).where(SEEN.c.kind == "person", SEEN.c.live.is_(True))
    else:
        known = sa.select(PEOPLE.c.id).where(PEOPLE.c.source_id == run.source_id)
    for stem, table, column in (
        ("roles", STAGED_ROLES, "userSourcedId"),
        ("demographics", STAGED_DEMOGRAPHICS, "sourcedId"),
    ):
        if run.mode(stem) == "absent":
            continue
        found = (
            await run.conn.execute(
                sa.select(table.c.line, table.c.user_sid)
                .where(table.c.live.is_(True), table.c.person_id.not_in(known))
                .order_by(table.c.line)
                .limit(1)
            )
        ).first()
        if found is not None:
            raise OneRosterError(
                await run.unknown("person", found.user_sid),
                file=f"{stem}.csv",
                line=found.line,
                column=column,
            )


_VARIABLES = 32_766
"""How many parameters one SQLite statement may bind at most here (SQLite's default since 3.32;
a build with a lower SQLITE_MAX_VARIABLE_NUMBER says so, `Appender`)."""


class Appender:
    """Appends rows (tuples of a table's `columns`) to a SQLite table by multi-row INSERTs.

    One statement of a few thousand rows is bound and stepped once: SQLite releases the GIL for
    the whole statement, where an executemany takes it back for every row, and waits for it
    each time while a worker thread reads the next batch."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table, self.columns = table, tuple(columns)
        self.per_statement = 0  # rows per statement, from the connection's limit (`__call__`)
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        """The INSERT of `rows` rows."""
        found = self._sql.get(rows)
        if found is None:
            one = f"({', '.join('?' * len(self.columns))})"
            # the importer's own table and column names; every value a bound parameter
            into = f"INSERT INTO {self.table} ({', '.join(self.columns)})"
            found = f"{into} VALUES {', '.join([one] * rows)}"
            if len(self._sql) < 8:
                self._sql[rows] = found
        return found

    async def __call__(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append `rows`."""
        if not self.per_statement:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection  # the aiosqlite connection
            limit = driver._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self.per_statement = max(1, min(limit, _VARIABLES) // len(self.columns))
        step = self.per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            values = tuple(itertools.chain.from_iterable(chunk))
            await conn.exec_driver_sql(self.sql(len(chunk)), values)
