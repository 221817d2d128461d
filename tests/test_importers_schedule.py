"""The batch passes read the next batch ahead in a worker thread: warnings still come out in
file order, the first error (by line) is still the one raised, and a failing import still
changes nothing, whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.importers.oneroster import ImportResult, import_oneroster
from gateway.importers.reading import OneRosterError
from tests.conftest import run_db
from tests.test_importers_oneroster import TODAY, district_files, dump, edited, write_folder


def _import(db_url: str, folder: Path, batch_size: int) -> ImportResult:
    async def body(engine: AsyncEngine) -> ImportResult:
        return await import_oneroster(
            engine, folder, source_name="S", batch_size=batch_size, today=TODAY
        )

    return run_db(db_url, body)


EXT_2 = "enrollments.csv, line 2, column 'role': extension value 'ext:observer' read as MEMBER"
MISMATCH_2 = "enrollments.csv, line 2: user 'U1' is STUDENT in users.csv but enrolled as MEMBER"
MISMATCH_3 = "enrollments.csv, line 3: user 'U2' is STUDENT in users.csv but enrolled as TEACHER"
EXT_5 = "enrollments.csv, line 5, column 'role': extension value 'ext:mentor' read as MEMBER"


@pytest.mark.parametrize(
    ("batch_size", "expected"),
    [
        # Batch by batch: the batch's reading warnings, then its database pass's.
        (1, [EXT_2, MISMATCH_2, MISMATCH_3, EXT_5]),
        (2, [EXT_2, MISMATCH_2, MISMATCH_3, EXT_5]),
        (2000, [EXT_2, EXT_5, MISMATCH_2, MISMATCH_3]),
    ],
)
def test_warnings_of_read_ahead_batches_keep_file_order(
    db_url: str, tmp_path: Path, batch_size: int, expected: list[str]
) -> None:
    files = district_files()
    # Line 2: an extension role (a warning of the mapping, made while reading ahead); line 3:
    # a student enrolled as a teacher (a warning of the database pass, made after writing);
    # line 5: another extension role (U2's second mismatch is not repeated).
    files = edited(files, "enrollments", 0, role="ext:observer")
    files = edited(files, "enrollments", 1, role="teacher")
    files = edited(files, "enrollments", 3, role="ext:mentor")
    result = _import(db_url, write_folder(tmp_path / "f", files), batch_size)

    assert [w for w in result.warnings if w.startswith("enrollments.csv")] == expected
    assert result.counts["enrollments"] == 4


UNKNOWN_3 = (
    "enrollments.csv, line 3, column 'userSourcedId': unknown user 'NOBODY' (not in users.csv)"
)
BAD_DATE_4 = (
    "enrollments.csv, line 4, column 'beginDate': '2024-13-45' is not a date (expected YYYY-MM-DD)"
)


@pytest.mark.parametrize(
    ("batch_size", "expected"),
    [
        # Line 3's batch is checked before the batch read ahead reports line 4's error ...
        (1, UNKNOWN_3),
        (2, UNKNOWN_3),
        # ... while within one batch the reading comes first (as before reading ahead).
        (2000, BAD_DATE_4),
    ],
)
def test_the_first_error_by_line_wins_over_a_batch_read_ahead(
    db_url: str, tmp_path: Path, batch_size: int, expected: str
) -> None:
    files = district_files()
    # Line 3 names an unknown user (found by the database pass of its batch); line 4 has a bad
    # date (found while reading), which a batch size of 1 reads ahead before line 3's batch
    # has been checked.
    files = edited(files, "enrollments", 1, userSourcedId="NOBODY")
    files = edited(files, "enrollments", 2, beginDate="2024-13-45")
    before = dump(db_url)

    with pytest.raises(OneRosterError) as raised:
        _import(db_url, write_folder(tmp_path / "f", files), batch_size)

    assert str(raised.value) == expected
    assert dump(db_url) == before


def test_an_error_while_reading_ahead_changes_nothing(any_db_url: str, tmp_path: Path) -> None:
    files = district_files()
    files = edited(files, "classes", 1, schoolSourcedId="NOWHERE")
    before = dump(any_db_url)

    with pytest.raises(OneRosterError, match=r"classes.csv, line 3, column 'schoolSourcedId'"):
        _import(any_db_url, write_folder(tmp_path / "f", files), 1)

    assert dump(any_db_url) == before
