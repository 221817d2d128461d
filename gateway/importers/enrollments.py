"""enrollments.csv → Enrollments (role, primary, dates; no section; each row mapped by
`schedule.enrollment_of`): the largest file of an export, so on SQLite it takes a cheaper road
than the other files' batch pass.

There each row becomes one narrow tuple (its line, ids and sourcedIds, and a number standing for
its role, primary, state, dates and properties, which an export repeats on every row and which
are staged once per distinct combination in a second temporary table), appended to a temporary
table without an index; duplicate sourcedIds and unknown users and classes are then found by one
query each over the whole file, and the rows are written by three statements (update the
changed, insert the new in id order, delete the gone). Into a table without the source's rows, the
primary key finds the duplicates (and on a first import the foreign keys find the unknown users
and classes): their queries run only when the insert fails. A row's cells are checked by the
same `Cells` methods as everywhere else, but only once per distinct value (an export repeats its
roles, dates and statuses on every row). Errors and warnings come out as the batch pass gives
them: a batch's reading errors, then its duplicates, then its unknown references, batch by
batch.
"""

from __future__ import annotations

import asyncio
import bisect
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from gateway.importers.cells import TO_BE_DELETED, Cells
from gateway.importers.properties import KEPT
from gateway.importers.reading import CsvFile, DeferredWarnings, OneRosterError, Row
from gateway.importers.run import CLASSES, ENROLLMENTS, PEOPLE, Run
from gateway.importers.schedule import (
    enrollment_of,
    entity_pass,
    role_mismatches,
    warn_role_mismatch,
)
from gateway.importers.staging import Appender
from gateway.importers.store import SEEN

if TYPE_CHECKING:
    from gateway.importers.apart import Apart

STAGED = "oneroster_import_enrollments"
VALUES = "oneroster_import_enrollment_values"
"""The distinct combinations of a staged row's stored values (all but ids and identifiers), by
number: staging them once each instead of on every row halved the staging's cost."""
ROLES_OF = "oneroster_import_roles_of"
"""The source's people that have roles, narrow and by id: what the role check of each batch
looks up (reading the wide people rows instead cost three times as much)."""
_COLUMNS = (
    "line",
    "id",
    "sourced_id",
    "person_id",
    "user_sid",
    "class_id",
    "class_sid",
    "vkey",
)
"""The staged columns, as the parser gives them; a deleted (tobedeleted) row holds only the
first three (None from the person on). `vkey` is the number of the row's values in VALUES."""
_VALUES = ("k", "role", '"primary"', "state", "start_date", "end_date", "properties")
"""The columns of VALUES, as the parser gives them."""
_DERIVED = (
    "live INTEGER AS (person_id IS NOT NULL)",
    'identifiers TEXT AS (\'[{"type":"sourcedId","value":\' || json_quote(sourced_id) || \'}]\')',
)
"""Staged columns that SQLite computes (fewer values to bind per row); the identifiers are the
text the engine's JSON serializer writes for `identifiers(sourcedId)`."""
_WRITTEN = (
    "identifiers",
    "properties",
    "person_id",
    "class_id",
    "role",
    '"primary"',
    "state",
    "start_date",
    "end_date",
)
"""The staged columns that an enrollment row stores (besides id, source and dates)."""
_STAGED_ROWS = (
    f"temp.{STAGED} AS s CROSS JOIN temp.{VALUES} AS v ON v.k = s.vkey"  # s outer, v looked up
)
_FROM_STAGED = {"properties", "role", '"primary"', "state", "start_date", "end_date"}
_STAGED_WRITTEN = tuple(f"v.{c}" if c in _FROM_STAGED else f"s.{c}" for c in _WRITTEN)
"""The `_WRITTEN` values of a live staged row of `_STAGED_ROWS`."""

REBUILD_INDEXES_FROM = 10_000
"""Into an empty enrollments table, at least this many rows are inserted with its indexes by
class and by person dropped and built again afterwards (`_REBUILT`): building an index from
sorted rows costs a third of keeping it up to date row by row."""

ROLES_CACHED = 30_000
"""How many people with roles the role check looks up row by row (`_warn_mismatches`): about
as many as the temporary tables' cache of 2 MiB holds of the roles table (some 55 bytes each).
Up to as many, their roles are also what `_RoleCheck` holds in memory."""

ROLES_OF_VALUES = 100_000
"""How many VALUES rows `_RoleCheck` remembers the role of (some 100 bytes each); a file with
more distinct combinations of values (dateLastModified differing row by row) has the rest of its
batches checked by `_warn_mismatches`."""

_REBUILT = tuple(
    sorted(
        (i for i in ENROLLMENTS.indexes if next(iter(i.columns)).name in ("class_id", "person_id")),
        key=lambda index: str(index.name),
    )
)
"""The indexes dropped and built again (`REBUILD_INDEXES_FROM`). The insert keeps the others up
to date at little cost: the rows go in id order, all of one source, so each (source_id, id)
entry goes at the end; and it writes no section, so the index of the rows in a section gets
none. At 20,000 users and 200,000 enrollments `_write` took 1.65-1.71 s so, against 1.84-1.99 s
with all four dropped and built again (the section index then holding every row)."""

_CACHE = 4096
"""How many distinct combinations of value cells (and schools) the parser remembers; then it
forgets them all."""

_IDS = 50_000
"""How many user and class ids the parser remembers by sourcedId (about 10 MiB at most)."""

_dumps = orjson.dumps


_REQUIRED = ("classSourcedId", "schoolSourcedId", "userSourcedId", "role")


async def import_enrollments(run: Run, apart: Apart | None = None) -> None:
    """enrollments.csv → Enrollments (role, primary, dates; no section); with the batches
    `apart` parsed in a process of its own, when it did."""
    if run.conn.dialect.name != "sqlite":
        await entity_pass(
            run, "enrollments", "enrollment", _REQUIRED, enrollment_of, role_mismatches
        )
        return
    mode = run.mode("enrollments")
    if mode == "absent":
        return
    csv_file, cells = run.open("enrollments", ("sourcedId", *_REQUIRED))
    conn = run.conn
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGED}")
    await conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {STAGED} ({', '.join((*_COLUMNS, *_DERIVED))})"  # no index
    )
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{VALUES}")
    await conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {VALUES} (k INTEGER PRIMARY KEY, {', '.join(_VALUES[1:])})"
    )
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{ROLES_OF}")
    await conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {ROLES_OF} (id TEXT PRIMARY KEY, roles TEXT) WITHOUT ROWID"
    )
    with_roles = await conn.exec_driver_sql(
        f"INSERT INTO temp.{ROLES_OF} SELECT id, roles FROM people "
        "WHERE source_id = ? AND roles != '' ORDER BY id",
        (run.source_id,),
    )
    try:
        check = None
        if with_roles.rowcount <= ROLES_CACHED:
            roles = await conn.execute(
                sa.text(f"SELECT id, roles FROM temp.{ROLES_OF}").columns(
                    sa.column("id"), PEOPLE.c.roles
                )
            )
            check = _RoleCheck({str(row.id): row.roles for row in roles})
        starts = await _stage(run, csv_file, cells, mode, check=check, apart=apart)
        counted = await conn.exec_driver_sql(f"SELECT count(*), sum(live) FROM temp.{STAGED}")
        total, live = (int(n or 0) for n in counted.one())
        # Into a table without the source's rows, every live row is inserted, and the primary
        # key refuses a repeated id: then only a failed insert needs the duplicate query. When
        # neither people nor classes held the source's rows either, theirs are exactly the ones
        # this import wrote (its own ids, which no other source's row has), and the foreign keys
        # refuse an unknown user or class: then only a failed insert needs those queries too.
        by_key = ENROLLMENTS.name in run.store.empty and live == total
        by_keys = by_key and {PEOPLE.name, CLASSES.name} <= run.store.empty
        if not (by_keys and (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()):
            await _raise_first(run, starts, None, duplicates=not by_key)
        await _write(run, mode, live, starts if by_key else None)
    finally:
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGED}")
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{VALUES}")
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{ROLES_OF}")


async def _stage(
    run: Run,
    csv_file: CsvFile,
    cells: Cells,
    mode: str,
    *,
    check: _RoleCheck | None,
    apart: Apart | None,
) -> list[int]:
    """Read and stage the file batch by batch, warning about its role mismatches; return the
    first line of each batch.

    The next batch is read in a worker thread while this one's statements run in SQLite's
    (which releases the GIL); its warnings are replayed in file order, and its errors raised
    only after the batches before it are checked, as the batch pass does. The batch pass warns
    of a batch's role mismatches after its reading warnings: here too, each batch's right after
    it is staged, by `check` (in memory) while it can; or, without it (too many people with
    roles), once for all the batches staged since the last time, just before a batch's reading
    warnings and at the end, which makes the same warnings in the same order, in the usual case
    (reading warnings come from a few first batches) with one look in person id order at the
    end (`_warn_mismatches`).

    With `apart`, the batches come from the process that parsed them (once it has ended), or
    from here when it did not parse this very file to its end (`Apart.wait`)."""
    loop = asyncio.get_running_loop()
    parse_next: Callable[[], _Batch | None]
    if apart is not None and await loop.run_in_executor(None, apart.wait):
        parse_next = apart.reader(run.progress)
    else:
        parse_next = _BatchParser(run, csv_file, cells, mode)
    append = Appender(f"temp.{STAGED}", _COLUMNS)
    append_values = Appender(f"temp.{VALUES}", _VALUES)
    first_rowid = 1
    checked = 0  # the staged rows (by rowid) whose role mismatches have been warned about
    starts: list[int] = []
    upcoming = loop.run_in_executor(None, parse_next)
    try:
        while True:
            try:
                parsed = await upcoming
            except OneRosterError as error:
                await _raise_first(run, starts, error)
                raise
            if parsed is None:
                await _warn_mismatches(run, checked + 1, first_rowid - 1, by_person=check is None)
                return starts
            upcoming = loop.run_in_executor(None, parse_next)
            staged, values, warnings = parsed
            starts.append(staged[0][0])
            if warnings.recorded():
                await _warn_mismatches(run, checked + 1, first_rowid - 1)
                checked = first_rowid - 1
            warnings.replay(run.warnings)
            await append_values(run.conn, values)
            await append(run.conn, staged)
            first_rowid += len(staged)
            if check is not None:
                if not check(run, staged, values):
                    await _warn_mismatches(run, checked + 1, first_rowid - 1)
                checked = first_rowid - 1
    finally:
        # On an error, let the worker finish before the transaction and the file close.
        await asyncio.wait([upcoming])
        if not upcoming.cancelled():  # else the worker may still be running it
            upcoming.exception()  # retrieved: an error of a batch after the failing one is moot
            if isinstance(parse_next, _BatchParser):
                parse_next.close()  # the file's progress finished now, not when collected


_Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], DeferredWarnings]
"""A parsed batch: its staged rows, the VALUES rows they introduce, and its warnings."""


class _BatchParser:
    """Called, parses the file's next batch (raising a OneRosterError for a bad row, none of
    the batch's rows given), None after the last."""

    def __init__(self, run: Run, csv_file: CsvFile, cells: Cells, mode: str) -> None:
        self.parse = _Parser(run, cells, csv_file.header, mode)
        self.cells = cells
        self.batches = csv_file.records(run.batch_size)

    def __call__(self) -> _Batch | None:
        batch = next(self.batches, None)
        if batch is None:
            return None
        warnings = DeferredWarnings()
        parse = self.parse
        parse.cells = Cells(self.cells.file, warnings)
        staged = [parse(line, record) for line, record in batch]
        values, parse.values = parse.values, []
        return staged, values, warnings

    def close(self) -> None:
        """Stop reading the file (its progress finished)."""
        self.batches.close()


_VALUE_COLUMNS = ("status", "role", "primary", "beginDate", "endDate")
"""The cells whose values decide a row's role, primary, state and dates (few distinct values in
a file); dateLastModified is only checked (it may differ on every row)."""


class _Parser:
    """Turns one enrollments.csv record into its staged tuple, checking each distinct cell value
    once with `Cells` (which raises or warns as for any file) and remembering what it gave."""

    def __init__(self, run: Run, cells: Cells, header: Sequence[str], mode: str) -> None:
        self.run, self.cells, self.header, self.mode = run, cells, list(header), mode
        # A record gets one empty cell appended, where every column the header lacks points.
        position = {column: i for i, column in enumerate(header)}
        width = len(header)
        at = [position.get(column, width) for column in _VALUE_COLUMNS]
        self.values_of = operator.itemgetter(*at)
        self.sourced_id, self.modified, self.user, self.class_, self.school = (
            position.get(column, width)
            for column in (
                "sourcedId",
                "dateLastModified",
                "userSourcedId",
                "classSourcedId",
                "schoolSourcedId",
            )
        )
        self.kept = [c for c in header if c in KEPT["enrollments"]]
        indexes = [position[c] for c in self.kept]
        self.kept_cells: Callable[[list[str]], tuple[str, ...]] = (
            operator.itemgetter(*indexes)
            if len(indexes) > 1
            else lambda r: tuple(r[i] for i in indexes)
        )
        # Every cell that a row's stored values (and their checks) depend on: at least five.
        self.key_of = operator.itemgetter(*sorted({*at, *indexes, self.modified}))
        self.vkeys: dict[tuple[str, ...], int] = {}
        self.values: list[tuple[Any, ...]] = []
        """The VALUES rows numbered since the caller last took them."""
        self.numbered = 0
        self.known: dict[tuple[str, ...], tuple[str, int, str, str | None, str | None]] = {}
        self.modified_ok = ""
        self.schools: set[str] = set()
        self.people: dict[str, str] = {}
        self.classes: dict[str, str] = {}

    def __call__(self, line: int, record: list[str]) -> tuple[Any, ...]:
        record.append("")
        sourced_id = record[self.sourced_id].strip()
        user = record[self.user].strip()
        class_ = record[self.class_].strip()
        school = record[self.school].strip()
        if not (sourced_id and user and class_ and school in self.schools):
            return self._checked(line, record)
        key = self.key_of(record)
        vkey = self.vkeys.get(key)
        if vkey is None:
            known = self.known.get(self.values_of(record))
            if known is None or (
                record[self.modified] != self.modified_ok and not self._modified(record)
            ):
                return self._checked(line, record)
            vkey = self._number(key, known, self._properties(record))
        run = self.run
        person_id = self.people.get(user)
        if person_id is None:
            if len(self.people) > _IDS:
                self.people.clear()
            person_id = self.people[user] = run.id("person", user)
        class_id = self.classes.get(class_)
        if class_id is None:
            if len(self.classes) > _IDS:
                self.classes.clear()
            class_id = self.classes[class_] = run.id("class", class_)
        return (
            line,
            run.id("enrollment", sourced_id, remember=False),
            sourced_id,
            person_id,
            user,
            class_id,
            class_,
            vkey,
        )

    def _number(self, key: tuple[str, ...], known: tuple[Any, ...], properties: str) -> int:
        """A new number for the values of the rows whose cells `key` are (a VALUES row)."""
        if len(self.vkeys) > _CACHE:
            self.vkeys.clear()
        self.numbered += 1
        vkey = self.vkeys[key] = self.numbered
        self.values.append((vkey, *known, properties))
        return vkey

    def _properties(self, record: list[str]) -> str:
        """The row's properties as JSON text."""
        kept = self.kept_cells(record)
        return _dumps(dict(zip(self.kept, kept, strict=True))).decode()

    def _modified(self, record: list[str]) -> bool:
        """Whether the row's dateLastModified is a date-time (as `Cells.status` checks it)."""
        value = record[self.modified].strip()
        if not value:
            return False  # absent or empty: `Cells` decides (a warning in delta mode)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        self.modified_ok = record[self.modified]
        return True

    def _checked(self, line: int, record: list[str]) -> tuple[Any, ...]:
        """The row read by `Cells` (raising its error, making its warnings), remembering what
        its value cells gave for the rows that repeat them."""
        run, cells = self.run, self.cells
        row = Row(line, dict(zip(self.header, record[: len(self.header)], strict=True)))
        sourced_id = cells.required(row, "sourcedId")
        row_id = run.id("enrollment", sourced_id, remember=False)
        status = cells.status(row, self.mode)
        if status == TO_BE_DELETED:
            return (line, row_id, sourced_id, *([None] * (len(_COLUMNS) - 3)))
        values = enrollment_of(run, cells, row, sourced_id, status).values
        start, end = values["start_date"], values["end_date"]
        known = (
            values["role"],
            int(values["primary"]),
            values["state"],
            None if start is None else start.isoformat(),
            None if end is None else end.isoformat(),
        )
        if len(self.known) > _CACHE or len(self.schools) > _CACHE:
            self.known.clear()
            self.schools.clear()
        self.known[self.values_of(record)] = known
        self.modified_ok = record[self.modified]  # accepted (an empty one warned already)
        self.schools.add(row.cells["schoolSourcedId"].strip())
        key = self.key_of(record)
        vkey = self.vkeys.get(key)
        if vkey is None:
            vkey = self._number(key, known, _dumps(values["properties"]).decode())
        return (
            line,
            row_id,
            sourced_id,
            values["person_id"],
            row.cells["userSourcedId"].strip(),
            values["class_id"],
            row.cells["classSourcedId"].strip(),
            vkey,
        )


async def _raise_first(
    run: Run, starts: Sequence[int], error: OneRosterError | None, *, duplicates: bool = True
) -> None:
    """Raise what the batch pass would have raised first: a duplicate sourcedId or an unknown
    reference in a batch staged so far (they start at the lines `starts`, and come before
    `error`'s), the earliest batch's first; else nothing (the caller raises `error`).

    Without `duplicates`, duplicates are looked for only when a reference is unknown (to know
    which comes first): the caller has them refused otherwise (`_write`)."""
    conn = run.conn
    unknown: tuple[int, str, str] | None = None
    for kind, column, sid_column, table in (
        ("person", "person_id", "user_sid", "people"),
        ("class", "class_id", "class_sid", "classes"),
    ):
        if run.bulk(kind):
            known, params = f"SELECT id FROM temp.{SEEN.name} WHERE kind = ? AND live", (kind,)
        else:
            known, params = f"SELECT id FROM {table} WHERE source_id = ?", (run.source_id,)
        found = (
            await conn.exec_driver_sql(
                f"SELECT line, {sid_column} FROM temp.{STAGED} "
                f"WHERE live AND {column} NOT IN ({known}) ORDER BY line LIMIT 1",
                params,
            )
        ).first()
        if found is not None:
            line, sourced_id = tuple(found)
            if unknown is None or line < unknown[0]:
                unknown = (line, kind, sourced_id)
    duplicate = None
    if duplicates or unknown is not None:
        duplicate = (
            await conn.exec_driver_sql(
                f"SELECT s.line, s.sourced_id, d.first FROM temp.{STAGED} AS s "
                f"JOIN (SELECT id, min(line) AS first FROM temp.{STAGED} GROUP BY id "
                "HAVING count(*) > 1) AS d ON d.id = s.id "
                "WHERE s.line > d.first ORDER BY s.line LIMIT 1"
            )
        ).first()
    candidates: list[tuple[int, int, int, OneRosterError]] = []
    if duplicate is not None:
        line, sourced_id, first = tuple(duplicate)
        message = f"duplicate sourcedId '{sourced_id}' (first at line {first})"
        found_error = OneRosterError(message, file="enrollments.csv", line=line, column="sourcedId")
        candidates.append((bisect.bisect_right(starts, line), 0, line, found_error))
    if unknown is not None:
        line, kind, sourced_id = unknown
        column = "userSourcedId" if kind == "person" else "classSourcedId"
        message = await run.unknown(kind, sourced_id)
        found_error = OneRosterError(message, file="enrollments.csv", line=line, column=column)
        candidates.append((bisect.bisect_right(starts, line), 1, line, found_error))
    if candidates:
        raise min(candidates, key=lambda c: c[:3])[3]
    if error is not None:
        raise error


class _RoleCheck:
    """`_warn_mismatches` of a staged batch in this process, from the roles of the source's
    people (`ROLES_OF`, at most `ROLES_CACHED` of them) and the role of each VALUES row so far
    (at most `ROLES_OF_VALUES`): 0.10-0.12 s for 200,000 enrollments, where the query of each
    batch took 0.26-0.34 s in all."""

    def __init__(self, roles: dict[str, list[str]]) -> None:
        self.roles = roles
        self.role_of: dict[int, str] | None = {}
        """The role of each VALUES row so far; None once there were too many."""

    # Where a staged row (`_COLUMNS`; a deleted one has no person, so no role to check) and a
    # VALUES row (`_VALUES`) hold what the check reads.
    _LINE, _PERSON, _USER_SID, _VKEY = (
        _COLUMNS.index(c) for c in ("line", "person_id", "user_sid", "vkey")
    )
    _KEY, _ROLE = _VALUES.index("k"), _VALUES.index("role")

    def __call__(
        self, run: Run, staged: Sequence[tuple[Any, ...]], values: Sequence[tuple[Any, ...]]
    ) -> bool:
        """Warn about the live rows of a batch (`staged`, in line order; `values` the VALUES
        rows it added) whose role is not among their user's, as `_warn_mismatches` does;
        False (nothing done) once there were too many VALUES rows to remember."""
        role_of = self.role_of
        if role_of is not None and len(role_of) + len(values) > ROLES_OF_VALUES:
            role_of = self.role_of = None
        if role_of is None:
            return False
        key, role_at = self._KEY, self._ROLE
        for value in values:
            role_of[value[key]] = value[role_at]
        roles = self.roles
        line, person, user_sid, vkey = self._LINE, self._PERSON, self._USER_SID, self._VKEY
        for row in staged:
            if (have := roles.get(row[person])) is not None:
                role = role_of[row[vkey]]
                if role not in have:
                    warn_role_mismatch(run, row[line], row[user_sid], have, role)
        return True


async def _warn_mismatches(
    run: Run, first_rowid: int, last_rowid: int, *, by_person: bool = False
) -> None:
    """Warn about the staged rows `first_rowid`..`last_rowid` whose role is not among their
    user's roles, in line order.

    Row by row, each row looks its user up in the roles table, which stays in the temporary
    tables' cache (2 MiB) up to about `ROLES_CACHED` people; with more, each batch read most of
    its pages again (at 100,000 users and 1,000,000 enrollments 500 looks took 7.8 s and read
    4 GiB). `by_person` (once, at the end) indexes the staged rows by person and walks the users
    in id order instead, reading each page once."""
    if first_rowid > last_rowid:
        return
    if by_person:
        await run.conn.exec_driver_sql(
            f"CREATE INDEX temp.{STAGED}_person ON {STAGED} (person_id, vkey, line, user_sid)"
        )
        rows_and_users = (
            f"temp.{ROLES_OF} AS p CROSS JOIN temp.{STAGED} AS s INDEXED BY {STAGED}_person "
            f"ON s.person_id = p.id CROSS JOIN temp.{VALUES} AS v ON v.k = s.vkey"
        )
    else:
        rows_and_users = f"{_STAGED_ROWS} JOIN temp.{ROLES_OF} AS p ON p.id = s.person_id"
    rows = await run.conn.execute(
        sa.text(
            f"SELECT s.line, s.user_sid, p.roles, v.role FROM {rows_and_users} "
            "WHERE s.rowid BETWEEN :first AND :last AND s.live "
            "AND instr(p.roles, ',' || v.role || ',') = 0 ORDER BY s.line"
        ).columns(sa.column("line"), sa.column("user_sid"), PEOPLE.c.roles, sa.column("role")),
        {"first": first_rowid, "last": last_rowid},
    )
    for line, user, have, role in rows:
        warn_role_mismatch(run, line, user, have, role)


async def _write(run: Run, mode: str, live: int, unchecked: Sequence[int] | None) -> None:
    """Make the source's enrollments what the staged file says (`live` rows): changed rows
    updated, new rows inserted (in id order), deleted or (bulk) unlisted rows removed.

    `unchecked` (the batches' first lines) when the staged rows were not checked for duplicate
    sourcedIds (or unknown references): an insert that a key refuses raises what the checks
    would have raised instead."""
    conn, store, table = run.conn, run.store, ENROLLMENTS.name
    to_driver = ENROLLMENTS.c.updated_date.type.dialect_impl(conn.dialect).bind_processor(
        conn.dialect
    )
    stamp = to_driver(store.now) if to_driver is not None else store.now
    first = table in store.empty  # before the import: no row to update, none to look for
    if not first:
        await _update(run, stamp)
    empty = (await conn.exec_driver_sql("SELECT 1 FROM enrollments LIMIT 1")).first() is None
    rebuilt = _REBUILT if empty and live >= REBUILD_INDEXES_FROM else ()
    for index in rebuilt:
        await conn.exec_driver_sql(f"DROP INDEX {index.name}")
    new = "" if first else "AND NOT EXISTS (SELECT 1 FROM enrollments AS e WHERE e.id = s.id) "
    insert = (
        f"INSERT INTO enrollments (id, source_id, created_date, updated_date, section_id, "
        f"{', '.join(_WRITTEN)}) SELECT s.id, ?, ?, ?, NULL, "
        f"{', '.join(_STAGED_WRITTEN)} FROM {_STAGED_ROWS} "
        f"WHERE s.live {new}ORDER BY s.id"
    )
    try:
        inserted = await conn.exec_driver_sql(insert, (run.source_id, stamp, stamp))
    except sa.exc.IntegrityError:
        if unchecked is not None:
            # The statement was undone; the transaction rolls back with the error raised here.
            await _raise_first(run, unchecked, None)
        raise
    _count(store.inserted, table, inserted.rowcount)
    for index in rebuilt:
        await conn.execute(sa.schema.CreateIndex(index))
    if mode == "delta":
        gone = f"id IN (SELECT id FROM temp.{STAGED} WHERE NOT live)"
    else:
        run.pruned.add("enrollment")
        stored = await conn.exec_driver_sql(
            "SELECT count(*) FROM enrollments WHERE source_id = ?", (run.source_id,)
        )
        if stored.scalar() == live:
            return  # every row of the source is one of the file's (the usual case)
        gone = f"id NOT IN (SELECT id FROM temp.{STAGED} WHERE live)"
    deleted = await conn.exec_driver_sql(
        f"DELETE FROM enrollments WHERE source_id = ? AND {gone}", (run.source_id,)
    )
    _count(store.deleted, table, deleted.rowcount)


def _count(counts: dict[str, int], table: str, n: int) -> None:
    if n:
        counts[table] = counts.get(table, 0) + n


def _json_differs(stored: str, staged: str) -> str:
    """SQL: whether two JSON texts hold different values, as the batch pass compares them (in
    Python, after parsing): text an earlier version wrote with other spaces, or an object with
    its keys in another order (a file's columns in another order), is the same value. Objects
    are compared key by key one level deep, which covers the flat objects of cells an import
    writes; any other difference counts as a change (the row is written again)."""
    same_entry = (
        "o.key = n.key AND o.type = n.type AND CASE WHEN o.type IN ('object', 'array') "
        "THEN json(o.value) = json(n.value) ELSE o.atom IS n.atom END"
    )
    return (
        f"CASE WHEN {stored} IS {staged} THEN 0 "
        f"WHEN {stored} IS NULL OR {staged} IS NULL THEN 1 "
        f"WHEN json({stored}) = json({staged}) THEN 0 "
        f"WHEN json_type({stored}) = 'object' AND json_type({staged}) = 'object' THEN "
        f"(SELECT count(*) FROM json_each({stored})) <> (SELECT count(*) FROM json_each({staged})) "
        f"OR EXISTS (SELECT 1 FROM json_each({staged}) AS n WHERE NOT EXISTS "
        f"(SELECT 1 FROM json_each({stored}) AS o WHERE {same_entry})) "
        "ELSE 1 END"
    )


async def _update(run: Run, stamp: Any) -> None:
    """Update the stored rows whose staged values differ (JSON compared as values,
    `_json_differs`)."""
    changed = " OR ".join(
        _json_differs(f"e.{c}", f"s.{c}")
        if c in ("identifiers", "properties")
        else f"e.{c} IS NOT s.{c}"
        for c in _WRITTEN
    )
    updated = await run.conn.exec_driver_sql(
        f"UPDATE enrollments AS e SET {', '.join(f'{c} = s.{c}' for c in _WRITTEN)}, "
        f"section_id = NULL, updated_date = ? FROM (SELECT s.id, "
        f"{', '.join(f'{v} AS {c}' for v, c in zip(_STAGED_WRITTEN, _WRITTEN, strict=True))} "
        f"FROM {_STAGED_ROWS} WHERE s.live) AS s "
        f"WHERE e.id = s.id AND ({changed} OR e.section_id IS NOT NULL)",
        (stamp,),
    )
    _count(run.store.updated, ENROLLMENTS.name, updated.rowcount)
