"""enrollments.csv on SQLite: each distinct cell value is checked once by `Cells` and the rows go
in set-wise; what is stored is what the row-by-row mapping gives, also into an empty table whose
indexes are dropped and built again."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import models
from gateway.importers import apart as apart_module
from gateway.importers import enrollments, oneroster, schedule, staging
from gateway.importers import run as run_module
from gateway.importers.cells import Cells
from gateway.importers.oneroster import ImportResult, import_oneroster
from gateway.importers.reading import Row, Warnings
from gateway.importers.run import ENROLLMENTS
from tests.conftest import run_db
from tests.test_importers_oneroster import (
    TODAY,
    district_files,
    edited,
    import_folder,
    rows,
    write_folder,
)


def import_in_batches(db_url: str, folder: Path, batch_size: int) -> ImportResult:
    async def body(engine: AsyncEngine) -> ImportResult:
        return await import_oneroster(
            engine, folder, source_name="S", batch_size=batch_size, today=TODAY
        )

    return run_db(db_url, body)


def _varied() -> dict[str, list[dict[str, str]]]:
    """The district with enrollments that repeat values, also spelled differently."""
    files = district_files()
    first = files["enrollments"][0]
    extra = [
        {**first, "sourcedId": f"X{n}", "userSourcedId": user, **cells}
        for n, (user, cells) in enumerate(
            [
                ("U1", {"role": " Student ", "beginDate": " 2024-08-15", "primary": "FALSE"}),
                ("U2", {"role": "student", "beginDate": "2024-08-15 ", "primary": " true"}),
                ("U1", {"role": "ext:mentor", "endDate": "2024-09-01", "status": "inactive"}),
                ("U2", {"role": "ext:mentor", "endDate": "2024-09-01", "schoolSourcedId": " S1"}),
                ("U1", {"role": "STUDENT", "beginDate": "", "endDate": " "}),
            ]
        )
    ]
    return {**files, "enrollments": [*files["enrollments"], *extra]}


def _by_rows(files: dict[str, list[dict[str, str]]], source_id: str) -> dict[str, dict[str, Any]]:
    """What the row-by-row mapping (`Cells`, as the batch pass reads a row) gives each row."""

    class FakeRun:
        today = TODAY

        def __init__(self) -> None:
            self.namespace = uuid.UUID(source_id)

        def id(self, kind: str, sourced_id: str, *, remember: bool = True) -> str:
            return str(uuid.uuid5(self.namespace, f"{kind}:{sourced_id}"))

        def resolve_org(self, sourced_id: str) -> tuple[str, str]:
            return "school", self.id("school", sourced_id)

    run: Any = FakeRun()
    cells = Cells("enrollments.csv", Warnings())
    found = {}
    for line, cells_of_row in enumerate(files["enrollments"], start=2):
        row = Row(line, dict(cells_of_row))
        status = cells.status(row, "bulk")
        sourced_id = cells.required(row, "sourcedId")
        values = schedule.enrollment_of(run, cells, row, sourced_id, status).values
        found[run.id("enrollment", sourced_id)] = values
    return found


def test_each_row_is_stored_as_the_row_by_row_mapping_gives_it(db_url: str, tmp_path: Path) -> None:
    files = _varied()

    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    expected = _by_rows(files, result.source_id)
    stored = {
        row["id"]: {k: row[k] for k in expected[row["id"]]}
        for row in rows(db_url, models.Enrollment)
    }
    assert stored == expected
    assert any("'ext:mentor' read as MEMBER" in w for w in result.warnings)


def _indexes(db_url: str) -> list[tuple[str, str]]:
    async def body(engine: AsyncEngine) -> list[tuple[str, str]]:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = :table ORDER BY name"
                ),
                {"table": ENROLLMENTS.name},
            )
            return [(name, sql) for name, sql in found]

    return run_db(db_url, body)


def test_an_empty_table_gets_its_indexes_back_as_they_were(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folder(tmp_path / "f", _varied())
    import_folder(db_url, write_folder(tmp_path / "empty", {"orgs": district_files()["orgs"]}))
    before = _indexes(db_url)
    monkeypatch.setattr(enrollments, "REBUILD_INDEXES_FROM", 1)

    first = import_folder(db_url, folder)
    again = import_folder(db_url, folder)

    assert len(before) == len(ENROLLMENTS.indexes) + 1  # and the primary key's
    assert _indexes(db_url) == before
    assert first.inserted["enrollments"] == len(_varied()["enrollments"])
    assert again.inserted == again.updated == again.deleted == {}


def test_a_sections_enrollments_are_found_by_an_index_of_only_the_rows_in_a_section(
    db_url: str, tmp_path: Path
) -> None:
    # OneRoster writes no section: the index holds none of its rows, so an import keeps it up
    # to date for nothing, and it still serves the lookups by section (`x = ?` and `x IN (…)`
    # imply `x IS NOT NULL`).
    import_folder(db_url, write_folder(tmp_path / "f", _varied()))

    async def plans(engine: AsyncEngine) -> list[str]:
        async with engine.connect() as conn:
            found = []
            for query in (
                "SELECT id FROM enrollments WHERE section_id = ? ORDER BY id LIMIT 10",
                "SELECT id FROM enrollments WHERE section_id IN (SELECT value FROM json_each(?))",
            ):
                plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", ("x",))
                found.append(" ".join(str(row[-1]) for row in plan))
            return found

    for plan in run_db(db_url, plans):
        assert "ix_enrollments_section_id_id_set" in plan
    index = dict(_indexes(db_url))["ix_enrollments_section_id_id_set"]
    assert index.endswith("WHERE section_id IS NOT NULL")


def test_a_changed_value_is_checked_even_after_others_of_its_column(
    db_url: str, tmp_path: Path
) -> None:
    files = edited(_varied(), "enrollments", 6, beginDate="2024-08-32")

    with pytest.raises(enrollments.OneRosterError) as raised:
        import_folder(db_url, write_folder(tmp_path / "f", files))

    assert str(raised.value) == (
        "enrollments.csv, line 8, column 'beginDate': '2024-08-32' is not a date "
        "(expected YYYY-MM-DD)"
    )


@pytest.mark.parametrize("batch_size", [1, 2, 2000])
def test_a_duplicate_in_an_earlier_batch_wins_over_a_later_bad_cell(
    any_db_url: str, tmp_path: Path, batch_size: int
) -> None:
    files = district_files()
    # Line 3 repeats line 2's sourcedId; line 5 has a bad date: the error of the earlier batch
    # wins, and within one batch reading comes first; on PostgreSQL the batch pass says so.
    files = edited(files, "enrollments", 1, sourcedId=files["enrollments"][0]["sourcedId"])
    files = edited(files, "enrollments", 3, beginDate="2024-02-30")

    with pytest.raises(enrollments.OneRosterError) as raised:
        import_in_batches(any_db_url, write_folder(tmp_path / "f", files), batch_size)

    expected = (
        "enrollments.csv, line 5, column 'beginDate': '2024-02-30' is not a date "
        "(expected YYYY-MM-DD)"
        if batch_size == 2000
        else "enrollments.csv, line 3, column 'sourcedId': duplicate sourcedId 'E1' "
        "(first at line 2)"
    )
    assert str(raised.value) == expected


def test_rows_alike_but_for_their_date_last_modified_keep_their_own(
    db_url: str, tmp_path: Path
) -> None:
    # The parser remembers a row's properties by its kept cells; dateLastModified is one of them.
    files = _varied()
    first = files["enrollments"][0]
    files["enrollments"] += [
        {**first, "sourcedId": f"M{n}", "dateLastModified": stamp}
        for n, stamp in enumerate(["2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", ""])
    ]

    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    expected = _by_rows(files, result.source_id)
    stored = {row["id"]: row["properties"] for row in rows(db_url, models.Enrollment)}
    assert stored == {row_id: values["properties"] for row_id, values in expected.items()}
    assert len({str(p) for p in stored.values()}) > 3


@pytest.mark.parametrize(
    ("variables", "limit"), [(26, None), (39, None), (32_766, None), (32_766, 6)]
)
def test_rows_are_appended_whole_and_in_order_however_many_a_statement_binds(
    db_url: str, tmp_path: Path, variables: int, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 13, 19 or 16,383 rows a statement; 3 when the SQLite build allows only 6 parameters
    monkeypatch.setattr(staging, "_VARIABLES", variables)
    append = staging.Appender("temp.appended", ("n", "label"))
    wanted = [(n, f"row {n}") for n in range(7)]

    async def body(engine: AsyncEngine) -> list[tuple[int, str]]:
        async with engine.connect() as conn:
            if limit is not None:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                driver._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
            await conn.exec_driver_sql("CREATE TEMPORARY TABLE appended (n, label)")
            await append(conn, wanted[:5])
            await append(conn, wanted[5:])
            await append(conn, [])
            found = await conn.exec_driver_sql("SELECT n, label FROM appended ORDER BY rowid")
            return [(n, label) for n, label in found]

    assert run_db(db_url, body) == wanted


# ---------------------------------------------------------------- the two roads agree

_GOOD: dict[str, list[str]] = {
    "sourcedId": [*(f"E{n}" for n in range(12)), "Ë6"],
    "status": ["", "active", "inactive", "tobedeleted"],
    "userSourcedId": ["U1", "U2", "TE", "G1"],
    "classSourcedId": ["K1", "K2"],
    "schoolSourcedId": ["S1", "S2"],
    "role": ["student", "teacher", "Teacher ", "ext:mentor", "aide"],
    "primary": ["", "false", "true"],
    "beginDate": ["", "2024-08-15"],
    "endDate": ["", "2025-01-06"],
}
_BAD: dict[str, list[str]] = {
    "sourcedId": ["", " E1"],
    "userSourcedId": ["Ü9", ""],
    "classSourcedId": ["KX", ""],
    "schoolSourcedId": ["S9"],
    "role": ["pupil", ""],
    "primary": ["maybe"],
    "beginDate": ["2024-02-30"],
}
"""Enrollment cells: good ones (repeated sourcedIds, tobedeleted rows, non-ASCII, extension
roles), and bad ones that spoil one row in twenty (blank, unknown, not a date)."""


def _spoiled(row: dict[str, str], spoil: tuple[int, str, int]) -> dict[str, str]:
    chance, column, n = spoil
    if chance == 0:
        row = {**row, column: _BAD[column][n % len(_BAD[column])]}
    # The columns in one order, as an export writes them: when the order changes between two
    # imports, the staged road compares properties as JSON text and rewrites every row.
    return {"dateLastModified": "", **{column: row[column] for column in _GOOD}}


_enrollment_rows = st.lists(
    st.builds(
        _spoiled,
        st.fixed_dictionaries({column: st.sampled_from(v) for column, v in _GOOD.items()}),
        st.tuples(st.integers(0, 19), st.sampled_from(list(_BAD)), st.integers(0, 1)),
    ),
    max_size=12,
)


def _batch_road(db_url: str, folder: Path, batch_size: int) -> Any:
    """The outcome of the import as the batch pass (PostgreSQL's road) gives it."""

    async def batch_pass(run: Any, apart: Any = None) -> None:
        await schedule.entity_pass(
            run,
            "enrollments",
            "enrollment",
            enrollments._REQUIRED,
            schedule.enrollment_of,
            schedule.role_mismatches,
        )

    with (
        mock.patch.object(oneroster, "import_enrollments", batch_pass),
        mock.patch.object(run_module.Run, "check_duplicates", _earliest_duplicate),
    ):
        return _outcome(db_url, folder, batch_size)


async def _earliest_duplicate(
    self: run_module.Run, file: str, kind: str, rows: Sequence[tuple[str, int, str]]
) -> None:
    """`Run.check_duplicates` as the staged road decides: of a batch's rows that repeat a
    sourcedId, in it or before it, the earliest. The batch pass names a repeat within the batch
    before an earlier row's repeat of an earlier batch: a difference of the two roads that both
    had before this test, which it leaves aside."""
    first: dict[str, int] = {}
    found: list[tuple[int, str, int]] = []
    for row_id, line, sourced_id in rows:
        if row_id in first:
            found.append((line, sourced_id, first[row_id]))
        else:
            first[row_id] = line
    earlier = await self.store.seen_lines(kind, first)
    found += [(first[i], sourced_id, earlier[i]) for i, _, sourced_id in rows if i in earlier]
    if found:
        line, sourced_id, at = min(found)
        raise run_module._duplicate(file, line, sourced_id, at)


def _outcome(db_url: str, folder: Path, batch_size: int) -> Any:
    """The error an import raises, or its result and the enrollments after it."""
    try:
        result = import_in_batches(db_url, folder, batch_size)
    except enrollments.OneRosterError as error:
        return str(error)
    stored = [
        {k: v for k, v in row.items() if k not in ("created_date", "updated_date")}
        for row in rows(db_url, models.Enrollment)
    ]
    return result.counts, result.warnings, result.inserted, result.updated, result.deleted, stored


@settings(
    max_examples=60,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(first=[], second=[], mode="bulk", batch_size=1, people=False, gone=None, roles="memory")
@given(
    first=_enrollment_rows,
    second=_enrollment_rows,
    mode=st.sampled_from(["bulk", "delta"]),
    batch_size=st.sampled_from([1, 3, 2000]),
    people=st.booleans(),
    gone=st.sampled_from([None, "U2", "TE"]),
    roles=st.sampled_from(["memory", "then-sql", "late"]),
)
def test_the_staged_road_gives_what_the_batch_pass_gives(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[dict[str, str]],
    second: list[dict[str, str]],
    mode: str,
    batch_size: int,
    people: bool,
    gone: str | None,
    roles: str,
) -> None:
    # Into a source without enrollments (with or without people and classes), then a bulk or
    # delta import that changes, adds and removes rows; each road from the same database (one
    # source, so the same ids).
    scratch = tmp_path_factory.mktemp("roads")
    base = district_files()
    staged_db, batch_db = (scratch / "staged.db", scratch / "batch.db")
    seed = write_folder(scratch / "o", base if people else {"orgs": base["orgs"]})
    import_in_batches(f"sqlite+aiosqlite:///{staged_db}", seed, 2000)
    shutil.copy(staged_db, batch_db)  # the engine is closed: the write-ahead log is merged
    run_db(f"sqlite+aiosqlite:///{staged_db}", _delete_enrollments)
    run_db(f"sqlite+aiosqlite:///{batch_db}", _delete_enrollments)
    # a user the source has that the first import's users.csv deletes: unknown to enrollments
    # although the people table still holds it until the import's end
    files = {**base, "enrollments": first or base["enrollments"]}
    if gone is not None:
        deleted = {"status": "tobedeleted"}
        files["users"] = [{**u, **deleted} if u["sourcedId"] == gone else u for u in base["users"]]
        files["roles"] = [r for r in base["roles"] if r["userSourcedId"] != gone]
    folders = [
        write_folder(scratch / "first", files),
        write_folder(
            scratch / "second",
            {"enrollments": second or base["enrollments"]}
            if mode == "delta"
            else {**base, "enrollments": second or base["enrollments"]},
            mode=mode,
        ),
    ]
    for n, folder in enumerate(folders):
        with _role_check(roles):
            staged = _outcome(f"sqlite+aiosqlite:///{staged_db}", folder, batch_size)
        by_batch = _batch_road(f"sqlite+aiosqlite:///{batch_db}", folder, batch_size)
        assert staged == by_batch, f"import {n + 1}"
        if isinstance(staged, str):
            break


def _role_check(how: str) -> contextlib.AbstractContextManager[Any]:
    """Role mismatches looked for batch by batch in memory ("memory"), so until the second
    batch's values and then by query ("then-sql"), or as with many people, in person id order
    at the end ("late")."""
    if how == "late":
        return mock.patch.object(enrollments, "ROLES_CACHED", 0)
    if how == "then-sql":
        return mock.patch.object(enrollments, "ROLES_OF_VALUES", 1)
    return contextlib.nullcontext()


async def _delete_enrollments(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(ENROLLMENTS.delete())


@pytest.mark.parametrize("roles", ["memory", "then-sql", "late"])
@pytest.mark.parametrize("batch_size", [1, 2, 2000])
def test_role_warnings_keep_their_place_among_a_later_batchs_reading_warnings(
    tmp_path: Path, batch_size: int, roles: str
) -> None:
    # Role mismatches (lines 2 and 4) before and after a row whose cell warns when read (line 3,
    # an extension role) and after another (line 5): the staged road looks for mismatches once
    # for several batches, and must still warn in the order the batch pass does.
    files = district_files()
    first = files["enrollments"][0]
    files["enrollments"] = [
        {**first, "sourcedId": "M1", "userSourcedId": "U1", "role": "teacher"},
        {**first, "sourcedId": "M2", "userSourcedId": "U2", "role": "ext:mentor"},
        {**first, "sourcedId": "M3", "userSourcedId": "U2", "role": "aide"},
        {**first, "sourcedId": "M4", "userSourcedId": "TE", "role": "ext:coach"},
        {**first, "sourcedId": "M5", "userSourcedId": "TE", "role": "student"},
    ]
    folder = write_folder(tmp_path / "f", files)

    with _role_check(roles):
        staged = _outcome(f"sqlite+aiosqlite:///{tmp_path / 'staged.db'}", folder, batch_size)
    by_batch = _batch_road(f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}", folder, batch_size)

    assert staged[1] == by_batch[1]
    # each warning as its line and E (an extension value, read) or R (a role mismatch)
    kinds = " ".join(
        w.removeprefix("enrollments.csv, line ")[0] + ("E" if "extension" in w else "R")
        for w in staged[1]
    )
    assert kinds == {1: "2R 3E 3R 5E 5R", 2: "3E 2R 3R 5E 5R", 2000: "3E 5E 2R 3R 5R"}[batch_size]


_CELLS = st.dictionaries(
    st.sampled_from(["role", "primary", "beginDate", "endDate", "x"]),
    st.text(alphabet=st.sampled_from(' aZ"\\é,:{}'), max_size=4),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    stored=st.none() | _CELLS,
    staged=st.none() | _CELLS,
    order=st.randoms(use_true_random=False),
    spaced=st.booleans(),
)
@example(stored={"role": "student", "primary": "true"}, staged=None, order=None, spaced=False)
def test_stored_json_differs_from_staged_json_as_the_batch_pass_compares_them(
    stored: dict[str, str] | None,
    staged: dict[str, str] | None,
    order: Any,
    spaced: bool,
) -> None:
    # The batch pass compares parsed values: key order and spacing do not matter, a value,
    # an added or a removed key does. `_json_differs` must say the same in SQL.
    import json

    if order is not None and stored is not None:
        keys = list(stored)
        order.shuffle(keys)
        shuffled = {k: stored[k] for k in keys}
    else:
        shuffled = stored
    as_text = (
        None
        if shuffled is None
        else json.dumps(shuffled, separators=None if spaced else (",", ":"), ensure_ascii=spaced)
    )
    new_text = None if staged is None else json.dumps(staged, separators=(",", ":"))
    with sqlite3.connect(":memory:") as conn:
        differs = conn.execute(
            f"SELECT {enrollments._json_differs('?1', '?2')}", (as_text, new_text)
        ).fetchone()[0]
    assert bool(differs) == (stored != staged)


# ---------------------------------------------------------------- parsed in a process of its own


class _Recorded:
    """A Progress that records what it hears about enrollments.csv."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.current = ""

    def start(self, name: str, total_bytes: int) -> None:
        self.current = name
        if name == "enrollments.csv":
            self.calls.append(("start", total_bytes))

    def advance(self, done_bytes: int) -> None:
        if self.current == "enrollments.csv":
            self.calls.append(("advance", done_bytes))

    def finish(self) -> None:
        if self.current == "enrollments.csv":
            self.calls.append(("finish", None))


def _importing(folder: Path, progress: _Recorded) -> Any:
    async def body(engine: AsyncEngine) -> ImportResult:
        return await import_oneroster(
            engine, folder, source_name="S", batch_size=2, today=TODAY, progress=progress
        )

    return body


def _two_databases(tmp_path: Path) -> tuple[str, str]:
    """Two databases that hold the same source (so the same ids), its orgs only."""
    seed = tmp_path / "seed.db"
    import_in_batches(
        f"sqlite+aiosqlite:///{seed}",
        write_folder(tmp_path / "orgs", {"orgs": district_files()["orgs"]}),
        2000,
    )
    shutil.copy(seed, tmp_path / "here.db")  # the engine is closed: the write-ahead log is merged
    shutil.copy(seed, tmp_path / "apart.db")
    return (
        f"sqlite+aiosqlite:///{tmp_path / 'here.db'}",
        f"sqlite+aiosqlite:///{tmp_path / 'apart.db'}",
    )


def _apart_outcome(
    db_url: str,
    folders: Sequence[Path],
    monkeypatch: pytest.MonkeyPatch,
    *,
    apart: bool,
    change: Callable[[Path], None] | None = None,
    before: bool = False,
) -> tuple[list[Any], list[int | None]]:
    """Each folder's outcome (`_outcome`, and what the progress heard of enrollments.csv),
    imported one after the other, with enrollments.csv parsed in a process of its own or not;
    and the exit code of each such process (None: not started). `change(folder)` is made
    just `before` that process starts, or else once it has ended (before users.csv is read)."""
    started: list[apart_module.Apart | None] = []
    real_parse_apart = oneroster.parse_apart
    real_import_users = oneroster.import_users

    def watched(run: Any) -> apart_module.Apart | None:
        if change is not None and before:
            change(run.folder.path)
        found = real_parse_apart(run)
        started.append(found)
        return found

    async def import_users(run: Any) -> None:
        if change is not None and not before:
            if started[-1] is not None:
                started[-1].process.wait()
            change(run.folder.path)
        await real_import_users(run)

    outcomes: list[Any] = []
    with monkeypatch.context() as patched:
        patched.setattr(oneroster, "parse_apart", watched)
        patched.setattr(oneroster, "import_users", import_users)
        patched.setattr(apart_module, "PARSE_APART_FROM", 0 if apart else 1 << 40)
        for folder in folders:
            progress = _Recorded()
            try:
                result = run_db(db_url, _importing(folder, progress))
            except enrollments.OneRosterError as error:
                outcomes.append((str(error), progress.calls))
                break
            stored = [
                {k: v for k, v in row.items() if k not in ("created_date", "updated_date")}
                for row in rows(db_url, models.Enrollment)
            ]
            outcomes.append(
                (
                    result.counts,
                    result.warnings,
                    result.updated,
                    result.deleted,
                    stored,
                    progress.calls,
                )
            )
    return outcomes, [None if a is None else a.process.returncode for a in started]


def _apart_cases(tmp_path: Path) -> dict[str, list[Path]]:
    files = _varied()
    first = files["enrollments"][0]
    spoiled = [*files["enrollments"]]
    spoiled.insert(5, {**first, "sourcedId": "BAD", "beginDate": "2024-02-30"})
    repeated = [*files["enrollments"], {**first, "role": "teacher"}]
    unknown = [*files["enrollments"], {**first, "sourcedId": "UNK", "userSourcedId": "NOBODY"}]
    delta = [
        {**files["enrollments"][1], "status": "tobedeleted"},
        {**first, "sourcedId": "NEW", "role": "teacher", "status": "active"},
        {**files["enrollments"][2], "primary": "true", "status": "active"},
    ]
    zipped = write_folder(tmp_path / "zipped", files)
    archive = Path(shutil.make_archive(str(tmp_path / "export"), "zip", zipped))
    return {
        "a bulk file, then its delta": [
            write_folder(tmp_path / "bulk", files),
            write_folder(tmp_path / "delta", {"enrollments": delta}, mode="delta"),
        ],
        "a bad cell after two batches": [
            write_folder(tmp_path / "spoiled", {**files, "enrollments": spoiled})
        ],
        "a repeated sourcedId": [
            write_folder(tmp_path / "repeated", {**files, "enrollments": repeated})
        ],
        "an unknown user": [write_folder(tmp_path / "unknown", {**files, "enrollments": unknown})],
        "a zip": [archive],
    }


def _scratch_files(tmp_path: Path) -> list[Path]:
    return list(tmp_path.rglob("gateway-enrollments-*"))


def test_a_file_parsed_in_a_process_of_its_own_imports_as_one_parsed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """enrollments.csv parsed by a process of its own (`parse_apart`, for large files) gives
    the import the same rows, warnings, errors (a bad cell after two batches, a repeated
    sourcedId, an unknown user) and progress as parsed in this one, bulk and delta, from a
    folder or a zip; the process wrote all of it (exit code 0), and no scratch file is left."""
    for name, folders in _apart_cases(tmp_path / "cases").items():
        here_db, apart_db = _two_databases(tmp_path / name)
        here, exits_here = _apart_outcome(here_db, folders, monkeypatch, apart=False)
        apart, exits = _apart_outcome(apart_db, folders, monkeypatch, apart=True)
        assert apart == here, name
        assert exits_here == [None] * len(exits_here)
        assert exits == [0] * len(exits), name
    assert _scratch_files(tmp_path) == []
    # the last case's progress: the file's size, read to its end, then finished
    (*_, calls) = here[0]
    assert calls[0][0] == "start"
    assert calls[-2:] == [("advance", calls[0][1]), ("finish", None)]


def _rewrite_enrollments(folder: Path) -> None:
    """Replace the folder's enrollments.csv with one whose sixth row is bad, as an export
    written again while the import runs."""
    with (folder / "enrollments.csv").open(newline="", encoding="utf-8") as handle:
        data = list(csv.DictReader(handle))
    data[4] = {**data[4], "status": "BOGUS"}
    write_folder(folder.parent / "again", {"enrollments": data}, manifest=False)
    os.replace(folder.parent / "again" / "enrollments.csv", folder / "enrollments.csv")


def _replace_zip(archive: Path) -> None:
    """Replace the zip with another whose enrollments.csv differs, as a new export dropped in
    its place while the import runs (it holds the first one open)."""
    files = _varied()
    files["enrollments"] = [{**e, "role": "aide"} for e in files["enrollments"]]
    other = write_folder(archive.parent / "other", files)
    made = shutil.make_archive(str(archive.parent / "other-export"), "zip", other)
    os.replace(made, archive)


@pytest.mark.parametrize("change", ["rewritten", "zip replaced"])
def test_a_file_changed_under_the_parsing_process_is_parsed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """An export that changes while the import runs is read as the import would read it
    without the parsing process: enrollments.csv written again after the process parsed it is
    read as it is when the import reaches it; a zip replaced by another before the process
    opened it is read from the zip the import holds open. The process's batches, of another
    file, are left unread."""
    files = _varied()
    if change == "rewritten":
        folder, changing = write_folder(tmp_path / "f" / "export", files), _rewrite_enrollments
    else:
        zipped = write_folder(tmp_path / "z", files)
        folder = Path(shutil.make_archive(str(tmp_path / "f" / "export"), "zip", zipped))
        changing = _replace_zip
    here_db, apart_db = _two_databases(tmp_path / "db")
    copy = tmp_path / "copy"
    shutil.copytree(folder.parent, copy)
    before = change == "zip replaced"
    here, _ = _apart_outcome(
        here_db, [copy / folder.name], monkeypatch, apart=False, change=changing, before=before
    )
    apart, exits = _apart_outcome(
        apart_db, [folder], monkeypatch, apart=True, change=changing, before=before
    )
    assert apart == here
    assert exits == [0]  # it parsed what it read, to the end
    if change == "rewritten":
        assert "'BOGUS' is not one of" in here[0][0]
    else:
        assert not any("AIDE" in str(row) for row in here[0][4])


def test_a_parse_that_fails_apart_is_done_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the parsing process does not write all of the file (here it is killed), the import
    parses the file in this process instead, to the same outcome."""
    folders = [write_folder(tmp_path / "f", _varied())]
    real = oneroster.parse_apart

    def killed(run: Any) -> apart_module.Apart | None:
        found = real(run)
        assert found is not None
        found.process.kill()
        return found

    here_db, apart_db = _two_databases(tmp_path)
    here, _ = _apart_outcome(here_db, folders, monkeypatch, apart=False)
    monkeypatch.setattr(oneroster, "parse_apart", killed)
    apart, exits = _apart_outcome(apart_db, folders, monkeypatch, apart=True)
    assert apart == here
    assert exits[0] not in (0, None)


def test_an_import_that_fails_before_enrollments_ends_the_parsing_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad users.csv stops the import while enrollments.csv is still being parsed apart: the
    process is ended with the import, and no scratch file is left."""
    started: list[apart_module.Apart | None] = []
    real = oneroster.parse_apart

    def watched(run: Any) -> apart_module.Apart | None:
        started.append(real(run))
        return started[-1]

    monkeypatch.setattr(oneroster, "parse_apart", watched)
    monkeypatch.setattr(apart_module, "PARSE_APART_FROM", 0)
    files = _varied()
    files["users"] = [{**files["users"][0], "sourcedId": ""}, *files["users"][1:]]
    with pytest.raises(enrollments.OneRosterError, match=r"users\.csv"):
        import_in_batches(
            f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", write_folder(tmp_path / "f", files), 2
        )
    (found,) = started
    assert found is not None
    assert found.process.returncode is not None  # ended (and waited for)
    assert found.scratch.closed
    assert _scratch_files(tmp_path) == []


def test_the_parsing_process_cannot_be_started_and_the_import_parses_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the process cannot be started (no process left to the user, say), the import parses
    the file itself."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(apart_module.subprocess, "Popen", refused)
    here_db, apart_db = _two_databases(tmp_path)
    folders = [write_folder(tmp_path / "f", _varied())]
    here, _ = _apart_outcome(here_db, folders, monkeypatch, apart=False)
    apart, exits = _apart_outcome(apart_db, folders, monkeypatch, apart=True)
    assert apart == here
    assert exits == [None]
    assert _scratch_files(tmp_path) == []
