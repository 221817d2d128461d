"""users.csv with roles.csv, demographics.csv and agents, and classes.csv: an import into a new
source skips what cannot exist yet (stored rows, remembered roles, schools, terms); what it
writes, warns of and refuses is what the general path gives."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from gateway.importers.reading import OneRosterError
from gateway.importers.store import Store
from tests.conftest import run_db
from tests.test_importers_enrollments import import_in_batches
from tests.test_importers_oneroster import Files, district_files, write_folder

_TIMES = {"created_date", "updated_date", "at", "date"}
"""Columns that hold when a row was written (not what the import wrote)."""


def _contents(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log, in primary-key order, without the times."""

    async def body(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
        async with engine.connect() as conn:
            found = {}
            for table in SQLModel.metadata.sorted_tables:
                if table.name == "audit_log":
                    continue
                columns = [c for c in table.columns if c.name not in _TIMES]
                query = sa.select(*columns).order_by(*table.primary_key.columns)
                found[table.name] = [tuple(row) for row in await conn.execute(query)]
            return found

    return run_db(db_url, body)


def _outcome(db_url: str, folder: Path, batch_size: int) -> Any:
    """The error an import raises, or its result and the database after it."""
    try:
        result = import_in_batches(db_url, folder, batch_size)
    except OneRosterError as error:
        return str(error)
    changes = (result.inserted, result.updated, result.deleted)
    return result.counts, result.warnings, changes, _contents(db_url)


async def _note_nothing(self: Store, tables: Any) -> None:
    """`Store.note_empty` that takes no table for empty: every pass takes its general path."""


# ---------------------------------------------------------------- random folders


def _cell(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """A good value most of the time, a bad one (unknown, malformed, warned of) now and then."""
    return st.sampled_from(good * 16 + bad)


_USERS = ["U1", "U2", "TE", "G1", "U3"]
_ANY = st.sampled_from(["", "active", "inactive", "tobedeleted"])

_user = {
    "status": _cell(["", "active", "inactive"], ["tobedeleted", "gone"]),
    "enabledUser": _cell(["true", "", "FALSE"], ["maybe"]),
    "userIds": _cell(["", "{LDAP:x1}", "{LDAP:x1},{SIS:7}"], ["plain"]),
    "givenName": _cell(["Lisa", "Bart", ""], []),
    "familyName": _cell(["Simpson", "Ëdna"], []),
    "preferredGivenName": _cell(["", "Mrs."], []),
    "grades": _cell(["", "9", "09,10", "KG"], ["XX"]),
    "primaryOrgSourcedId": _cell(["", "S1", "S2", "D1"], ["S9"]),
    "email": _cell(["", "a@example.org"], []),
    "phone": _cell(["", "555-0100"], []),
}
_role = {
    "status": _cell(["", "active", "tobedeleted"], []),
    "roleType": _cell(["primary", "secondary"], ["main"]),
    "role": _cell(["student", "teacher", "parent", "guardian", "aide"], ["ext:coach", "pupil"]),
    "orgSourcedId": _cell(["S1", "S2", "D1"], ["S9"]),
    "beginDate": _cell(["", "2024-08-15"], ["2024-02-30"]),
    "endDate": _cell(["", "2025-06-15"], []),
}
_demographic = {
    "status": _cell(["", "active", "tobedeleted"], []),
    "birthDate": _cell(["", "2010-05-09"], ["2010-13-01"]),
    "sex": _cell(["", "female", "male"], ["ext:x", "bogus"]),
    "asian": _cell(["", "true", "false"], ["yes please"]),
    "white": _cell(["", "true"], []),
    "hispanicOrLatinoEthnicity": _cell(["", "false"], []),
    "cityOfBirth": _cell(["", "Springfield"], []),
}
_class = {
    "status": _cell(["", "active", "inactive"], ["tobedeleted", "bogus"]),
    "schoolSourcedId": _cell(["S1", "S2"], ["D1", "S9"]),
    "termSourcedIds": _cell(["T1", "T1,Y1", "Y1"], ["T9"]),
    "periods": _cell(["", "1,2"], []),
}

Rows = list[dict[str, str]]


@st.composite
def _folders(draw: st.DrawFn) -> tuple[Rows, Rows, Rows, Rows]:
    """users, roles, demographics and classes rows: the district's users and classes (which its
    enrollments name) and maybe one more of each, with random cells; roles and demographics of
    those users, now and then of one who is not listed; and now and then a file's first row
    repeated (a duplicate sourcedId)."""
    users = [
        draw(st.fixed_dictionaries({"sourcedId": st.just(sid), **_user}))
        for sid in _USERS
        if sid != "U3" or draw(st.booleans())
    ]
    listed = [u["sourcedId"] for u in users if u["status"] != "tobedeleted"] or _USERS
    someone = _cell(listed, ["Z9"])
    for user in users:
        user["agentSourcedIds"] = ",".join(
            draw(st.lists(someone, max_size=2)) if draw(st.booleans()) else []
        )
    roles = draw(
        st.lists(
            st.fixed_dictionaries(
                {"sourcedId": _cell([f"R{n}" for n in range(8)], []), "userSourcedId": someone}
                | _role
            ),
            max_size=6,
            unique_by=lambda row: row["sourcedId"],
        )
    )
    demographics = draw(
        st.lists(
            st.fixed_dictionaries({"sourcedId": someone} | _demographic),
            max_size=6,
            unique_by=lambda row: row["sourcedId"],
        )
    )
    classes = [
        draw(st.fixed_dictionaries({"sourcedId": st.just(sid), **_class}))
        for sid in ("K1", "K2", "K3")
        if sid != "K3" or draw(st.booleans())
    ]
    files = [users, roles, demographics, classes]
    repeated = draw(st.sampled_from([None] * 6 + [0, 1, 2, 3]))
    if repeated is not None and files[repeated]:
        files[repeated].append({**files[repeated][0], "status": draw(_ANY)})
    return users, roles, demographics, classes


def _files(
    users: Rows,
    roles: Rows,
    demographics: Rows,
    classes: Rows,
) -> Files:
    """The district's folder with these rows (over the district's own, column by column)."""
    base = district_files()

    def over(stem: str, rows: Rows) -> Rows:
        template = base[stem][0]
        return [{**template, **row} for row in rows] if rows else base[stem]

    return {
        **base,
        "users": over("users", users),
        "roles": over("roles", roles),
        "demographics": over("demographics", demographics),
        "classes": over("classes", classes),
    }


@settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(first=([], [], [], []), second=([], [], [], []), mode="bulk", batch_size=2000)
@given(
    first=_folders(),
    second=_folders(),
    mode=st.sampled_from(["bulk", "delta"]),
    batch_size=st.sampled_from([1, 2, 2000]),
)
def test_a_new_source_gets_what_the_general_path_gives(
    tmp_path_factory: pytest.TempPathFactory,
    first: tuple[Rows, Rows, Rows, Rows],
    second: tuple[Rows, Rows, Rows, Rows],
    mode: str,
    batch_size: int,
) -> None:
    # A source with its district and schools only (the same source in both databases), then an
    # import into it and a second, bulk or delta; one database's imports take no table for empty.
    scratch = tmp_path_factory.mktemp("people")
    new_db, general_db = scratch / "new.db", scratch / "general.db"
    seed = write_folder(scratch / "o", {"orgs": district_files()["orgs"]})
    import_in_batches(f"sqlite+aiosqlite:///{new_db}", seed, 2000)
    shutil.copy(new_db, general_db)  # the engine is closed: the write-ahead log is merged
    folders = [
        write_folder(scratch / "first", _files(*first)),
        write_folder(scratch / "second", _files(*second), mode=mode),
    ]
    for n, folder in enumerate(folders):
        new = _outcome(f"sqlite+aiosqlite:///{new_db}", folder, batch_size)
        with mock.patch.object(Store, "note_empty", _note_nothing):
            general = _outcome(f"sqlite+aiosqlite:///{general_db}", folder, batch_size)
        assert new == general, f"import {n + 1}"
        if isinstance(new, str):
            break
