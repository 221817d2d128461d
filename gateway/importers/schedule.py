"""academicSessions.csv, courses.csv and classes.csv → Sessions, Courses and Classes (with their
terms), one batch of rows at a time, and the mapping of an enrollments.csv row (which
`enrollments.py` imports: by this batch pass on engines other than SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from gateway.importers.cells import (
    CLASS_TYPES,
    ENROLLMENT_ROLES,
    INACTIVE,
    SESSION_TYPES,
    TO_BE_DELETED,
    Cells,
)
from gateway.importers.orgs import identifiers
from gateway.importers.properties import kept
from gateway.importers.reading import DeferredWarnings, Row
from gateway.importers.run import CLASS_SESSIONS, CLASSES, KINDS, PEOPLE, Ref, Run


@dataclass
class Mapped:
    """One row's graph values, the references to check, and kind-specific extras."""

    values: dict[str, Any]
    refs: list[Ref] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    line: int = 0
    sourced_id: str = ""


Mapper = Callable[[Run, Cells, Row, str, str], Mapped]
"""(run, cells, row, sourcedId, status) → the row's mapping."""

AfterBatch = Callable[[Run, Cells, list[Mapped]], Awaitable[None]]
"""Runs once a batch is written (links, warnings that need the database)."""


async def entity_pass(
    run: Run,
    stem: str,
    kind: str,
    required: Sequence[str],
    mapper: Mapper,
    after: AfterBatch | None = None,
) -> None:
    """Read file `stem` batch by batch: check, write, delete (delta) and remember its rows."""
    mode = run.mode(stem)
    if mode == "absent":
        return
    table = KINDS[kind].table
    csv_file, cells = run.open(stem, ("sourcedId", *required))
    batches = csv_file.batches(run.batch_size)

    def parse_next() -> _Parsed | None:
        batch = next(batches, None)
        if batch is None:
            return None
        parsed = _Parsed(Cells(cells.file, DeferredWarnings()))
        for row in batch:
            sourced_id = parsed.cells.required(row, "sourcedId")
            row_id = run.id(kind, sourced_id, remember=kind != "enrollment")
            parsed.seen.append((row_id, row.line, sourced_id))
            status = parsed.cells.status(row, mode)
            if status == TO_BE_DELETED:
                parsed.dead.add(row_id)
                continue
            mapped = mapper(run, parsed.cells, row, sourced_id, status)
            mapped.line, mapped.sourced_id = row.line, sourced_id
            mapped.values["id"] = row_id
            mapped.values["source_id"] = run.source_id
            parsed.live.append(mapped)
        return parsed

    # The next batch is read and mapped in a worker thread while this one's statements run in
    # SQLite's (which releases the GIL): the two largest costs of an import overlap. Its
    # warnings are replayed in file order and its errors raised only once this batch is done.
    loop = asyncio.get_running_loop()
    upcoming = loop.run_in_executor(None, parse_next)
    try:
        while (parsed := await upcoming) is not None:
            upcoming = loop.run_in_executor(None, parse_next)
            assert isinstance(parsed.cells.warnings, DeferredWarnings)
            parsed.cells.warnings.replay(run.warnings)
            seen, dead, live = parsed.seen, parsed.dead, parsed.live
            await run.check_duplicates(cells.file, kind, seen)
            await run.check_refs(cells.file, [ref for m in live for ref in m.refs])
            values = [m.values for m in live]
            existing = await run.store.fetch_existing(table, [v["id"] for v in values])
            await run.store.write(table, values, existing)
            if after is not None:
                await after(run, cells, live)
            if mode == "delta":
                await run.store.delete(table, dead)
            await run.store.mark_seen(kind, [(i, line, i not in dead) for i, line, _ in seen])
    finally:
        # On an error, let the worker finish before the transaction and the files close.
        await asyncio.wait([upcoming])
        if not upcoming.cancelled():
            upcoming.exception()  # retrieved: an error of a batch after the failing one is moot


@dataclass
class _Parsed:
    """One batch, read and mapped: its seen rows, deleted ids, live rows and warnings."""

    cells: Cells
    seen: list[tuple[str, int, str]] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    live: list[Mapped] = field(default_factory=list)


def state_by_dates(today: date, start: date | None, end: date | None) -> str:
    """UPCOMING, COMPLETED or ACTIVE on `today`, by the start and end dates."""
    if start is not None and today < start:
        return "UPCOMING"
    if end is not None and today > end:
        return "COMPLETED"
    return "ACTIVE"


# ---------------------------------------------------------------- academicSessions.csv


def _session(run: Run, cells: Cells, row: Row, sourced_id: str, status: str) -> Mapped:
    start = cells.date(row, "startDate", required=True)
    end = cells.date(row, "endDate", required=True)
    if start is not None and end is not None and end < start:
        cells.warnings.add(
            "session dates",
            f"academicSessions.csv, line {row.line}: endDate {end} is before startDate {start}",
        )
    return Mapped(
        {
            "identifiers": identifiers(sourced_id),
            "properties": kept("academicSessions", row.cells),
            "district_id": run.district_id,
            "school_id": None,
            "name": cells.required(row, "title"),
            "start_date": start,
            "end_date": end,
            "state": state_by_dates(run.today, start, end),
            "type": cells.enum(row, "type", SESSION_TYPES, extension="TERM", required=True),
        }
    )


async def import_sessions(run: Run) -> None:
    """academicSessions.csv → Sessions (district-wide: the CSV binding gives them no org)."""
    await entity_pass(
        run, "academicSessions", "session", ("title", "type", "startDate", "endDate"), _session
    )


# ---------------------------------------------------------------- courses.csv


def _course(run: Run, cells: Cells, row: Row, sourced_id: str, status: str) -> Mapped:
    refs: list[Ref] = []
    session_id = None
    year = cells.text(row, "schoolYearSourcedId")
    if year is not None:
        session_id = run.id("session", year)
        refs.append(Ref("session", session_id, row.line, "schoolYearSourcedId", year))
    org = cells.required(row, "orgSourcedId")
    return Mapped(
        {
            "identifiers": identifiers(sourced_id),
            "properties": kept("courses", row.cells),
            "district_id": run.district_id,
            "school_id": run.school_of(cells, row, "orgSourcedId", org),
            "session_id": session_id,
            "name": cells.required(row, "title"),
            "code": cells.text(row, "courseCode"),
            "grade_levels": cells.grades(row, "grades"),
            "subjects": cells.items(row, "subjects"),
        },
        refs,
    )


async def import_courses(run: Run) -> None:
    """courses.csv → Courses (school when orgSourcedId is a school, session from the year)."""
    await entity_pass(run, "courses", "course", ("title", "orgSourcedId"), _course)


# ---------------------------------------------------------------- classes.csv


def _class(run: Run, cells: Cells, row: Row, sourced_id: str, status: str) -> Mapped:
    refs: list[Ref] = []
    course_id = None
    course = cells.text(row, "courseSourcedId")
    if course is not None:
        course_id = run.id("course", course)
        refs.append(Ref("course", course_id, row.line, "courseSourcedId", course))
    sessions: list[str] = []
    for term in cells.required_items(row, "termSourcedIds"):
        session_id = run.id("session", term)
        refs.append(Ref("session", session_id, row.line, "termSourcedIds", term))
        if session_id not in sessions:
            sessions.append(session_id)
    cells.enum(row, "classType", CLASS_TYPES, extension="other")
    return Mapped(
        {
            "identifiers": identifiers(sourced_id, ("classCode", cells.text(row, "classCode"))),
            "properties": kept("classes", row.cells),
            "school_id": _class_school(run, cells, row),
            "course_id": course_id,
            "name": cells.required(row, "title"),
            "description": None,
            "state": "INACTIVE" if status == INACTIVE else "ACTIVE",
            "grade_levels": cells.grades(row, "grades"),
            "subjects": cells.items(row, "subjects"),
            "periods": cells.items(row, "periods"),
            "locale": None,
            "time_zone": None,
        },
        refs,
        sessions,
    )


def _class_school(run: Run, cells: Cells, row: Row) -> str:
    org = cells.required(row, "schoolSourcedId")
    found = run.resolve_org(org)
    if found is None:
        raise cells.error(row, "schoolSourcedId", f"unknown org '{org}' (not in orgs.csv)")
    org_type, school_id = found
    if org_type == "school" and school_id is not None:
        return school_id
    if run.placeholder_school is not None:
        # A school-less source: its classes belong to the placeholder school.
        return run.placeholder_school
    raise cells.error(row, "schoolSourcedId", f"org '{org}' is a {org_type}, not a school")


async def _class_terms(run: Run, cells: Cells, mapped: list[Mapped]) -> None:
    links = {m.values["id"]: m.links for m in mapped}
    # Into a source without classes, every class of the batch was just inserted (no terms yet).
    new = CLASSES.name in run.store.empty
    await run.store.replace_links(CLASS_SESSIONS, "class_id", "session_id", links, new=new)


async def import_classes(run: Run) -> None:
    """classes.csv → Classes and their sessions (termSourcedIds)."""
    await entity_pass(
        run,
        "classes",
        "class",
        ("title", "courseSourcedId", "schoolSourcedId", "termSourcedIds"),
        _class,
        _class_terms,
    )


# ---------------------------------------------------------------- enrollments.csv


def enrollment_of(run: Run, cells: Cells, row: Row, sourced_id: str, status: str) -> Mapped:
    """An enrollments.csv row's graph values and references (its cells checked by `Cells`)."""
    user = cells.required(row, "userSourcedId")
    class_ = cells.required(row, "classSourcedId")
    school = cells.required(row, "schoolSourcedId")
    if run.resolve_org(school) is None:
        raise cells.error(row, "schoolSourcedId", f"unknown org '{school}' (not in orgs.csv)")
    person_id = run.id("person", user)
    class_id = run.id("class", class_)
    start = cells.date(row, "beginDate")
    end = cells.date(row, "endDate")
    role = cells.enum(row, "role", ENROLLMENT_ROLES, extension="MEMBER", required=True)
    return Mapped(
        {
            "identifiers": identifiers(sourced_id),
            "properties": kept("enrollments", row.cells),
            "person_id": person_id,
            "class_id": class_id,
            "section_id": None,
            "role": role,
            "primary": bool(cells.boolean(row, "primary")),
            "state": "INACTIVE" if status == INACTIVE else state_by_dates(run.today, start, end),
            "start_date": start,
            "end_date": end,
        },
        [
            Ref("person", person_id, row.line, "userSourcedId", user),
            Ref("class", class_id, row.line, "classSourcedId", class_),
        ],
    )


async def role_mismatches(run: Run, cells: Cells, mapped: list[Mapped]) -> None:
    """Warn when an enrollment's role is not among its user's roles (a tolerable oddity).

    The database answers with the mismatching people only, so the usual batch costs one
    query per role and returns nothing."""
    by_role: dict[str, dict[str, Mapped]] = {}
    for m in mapped:
        by_role.setdefault(m.values["role"], {}).setdefault(m.values["person_id"], m)
    roles = sa.type_coerce(PEOPLE.c.roles, sa.Text)
    found: list[tuple[Mapped, list[str]]] = []
    for role, people in by_role.items():
        rows = await run.conn.execute(
            sa.select(PEOPLE.c.id, PEOPLE.c.roles).where(
                run.store.among(PEOPLE.c.id, people), roles != "", roles.not_like(f"%,{role},%")
            )
        )
        found.extend((people[person_id], have) for person_id, have in rows)
    for m, have in sorted(found, key=lambda item: item[0].line):
        warn_role_mismatch(run, m.line, m.refs[0].sourced_id, have, m.values["role"])


def warn_role_mismatch(run: Run, line: int, user: str, have: Sequence[str], role: str) -> None:
    """Warn that the enrollment at `line` gives user `user` a role (`role`) not among theirs."""
    run.warnings.add(
        "enrollment role",
        f"enrollments.csv, line {line}: user '{user}' is {' and '.join(have)} in "
        f"users.csv but enrolled as {role}",
        key=user,
    )
