"""The OneRoster CSV import: both public samples, mapping, bulk and delta, idempotence, errors
that name file, line and column and change nothing, and the command line. Tests of what the
database does (`any_db_url`) run on SQLite and, when GATEWAY_TEST_POSTGRES_URL is set, on
PostgreSQL."""

from __future__ import annotations

import csv
import json
import uuid
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from gateway import models
from gateway.access.grant import Scope
from gateway.admin.service import create_integration, create_source
from gateway.errors import ValidationFailed
from gateway.importers.cli import register
from gateway.importers.oneroster import ImportResult, import_oneroster
from gateway.importers.reading import OneRosterError
from tests.conftest import LiveServer, run_db
from tests.oracle import property_leaks

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "oneroster"
LEPO = SAMPLES / "lepo-roster-hub-en-v1p1"
CATALYST = SAMPLES / "catalyst-moodle-v1p2-min"
TODAY = date(2024, 10, 1)

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(),
    reason=f"the public OneRoster samples are not at {SAMPLES} (a copy of shared/ beside the repo)",
)


# ---------------------------------------------------------------- helpers


def import_folder(db_url: str, folder: Path, source: str = "Springfield") -> ImportResult:
    """Import `folder` into the source named `source` of the database at `db_url`."""

    async def body(engine: AsyncEngine) -> ImportResult:
        return await import_oneroster(engine, folder, source_name=source, today=TODAY)

    return run_db(db_url, body)


def dump(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""

    async def body(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
        async with engine.connect() as conn:
            found = {}
            for table in SQLModel.metadata.sorted_tables:
                query = sa.select(table).order_by(*table.primary_key.columns)
                found[table.name] = [tuple(row) for row in await conn.execute(query)]
            return found

    return run_db(db_url, body)


def rows(db_url: str, model: Any, **where: Any) -> list[dict[str, Any]]:
    """The rows of `model`'s table matching `where`, as dicts, ordered by their first column."""
    table = model.__table__

    async def body(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            query = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
            result = await conn.execute(query.order_by(*table.primary_key.columns))
            return [dict(row) for row in result.mappings()]

    return run_db(db_url, body)


def stable_id(source_id: str, kind: str, sourced_id: str) -> str:
    """The id the importer gives the `kind` row of `sourced_id` (documented: UUID v5)."""
    return str(uuid.uuid5(uuid.UUID(source_id), f"{kind}:{sourced_id}"))


Files = dict[str, list[dict[str, str]]]


def write_folder(
    path: Path, files: Files, *, version: str = "1.2", mode: str = "bulk", manifest: bool = True
) -> Path:
    """Write `files` (file stem → rows) as a OneRoster folder with its manifest."""
    path.mkdir(parents=True, exist_ok=True)
    for stem, data in files.items():
        with (path / f"{stem}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(data[0]) if data else ["sourcedId"])
            writer.writeheader()
            writer.writerows(data)
    if manifest:
        lines = [("manifest.version", "1.0"), ("oneroster.version", version)]
        lines += [(f"file.{stem}", mode) for stem in files]
        with (path / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
            writer_ = csv.writer(handle)
            writer_.writerow(["propertyName", "value"])
            writer_.writerows(lines)
    return path


def _meta(status: str = "") -> dict[str, str]:
    return {"status": status, "dateLastModified": ""}


def district_files() -> Files:
    """A small 1.2 bulk folder: a district with two schools, a year and a semester, a course,
    two classes, a teacher, two students, a guardian, roles, demographics, four enrollments."""
    user_columns = {
        "enabledUser": "true",
        "userIds": "",
        "middleName": "",
        "identifier": "",
        "sms": "",
        "phone": "",
        "agentSourcedIds": "",
        "grades": "",
        "password": "",
        "userMasterIdentifier": "",
        "preferredGivenName": "",
        "preferredMiddleName": "",
        "preferredFamilyName": "",
        "primaryOrgSourcedId": "",
        "pronouns": "",
    }

    def user(sid: str, given: str, family: str, **extra: str) -> dict[str, str]:
        row = {"sourcedId": sid, **_meta(), **user_columns, "username": sid.lower()}
        row.update(givenName=given, familyName=family, email=f"{sid.lower()}@example.org")
        row.update(extra)
        return row

    def role(
        sid: str, user_sid: str, role_name: str, org: str, kind: str = "primary"
    ) -> dict[str, str]:
        return {
            "sourcedId": sid,
            **_meta(),
            "userSourcedId": user_sid,
            "roleType": kind,
            "role": role_name,
            "beginDate": "",
            "endDate": "",
            "orgSourcedId": org,
            "userProfileSourcedId": "",
        }

    def enrollment(
        sid: str, class_sid: str, user_sid: str, role_name: str, **extra: str
    ) -> dict[str, str]:
        row = {
            "sourcedId": sid,
            **_meta(),
            "classSourcedId": class_sid,
            "schoolSourcedId": "S1",
            "userSourcedId": user_sid,
            "role": role_name,
            "primary": "false",
            "beginDate": "",
            "endDate": "",
        }
        row.update(extra)
        return row

    def org(sid: str, name: str, kind: str, parent: str = "") -> dict[str, str]:
        return {
            "sourcedId": sid,
            **_meta(),
            "name": name,
            "type": kind,
            "identifier": "",
            "parentSourcedId": parent,
        }

    def klass(sid: str, title: str, school: str, **extra: str) -> dict[str, str]:
        row = {
            "sourcedId": sid,
            **_meta(),
            "title": title,
            "grades": "09",
            "courseSourcedId": "C1",
            "classCode": f"{sid}-code",
            "classType": "scheduled",
            "location": "",
            "schoolSourcedId": school,
            "termSourcedIds": "T1",
            "subjects": "Mathematics",
            "subjectCodes": "",
            "periods": "1,2",
        }
        row.update(extra)
        return row

    def session(
        sid: str, title: str, kind: str, start: str, end: str, parent: str = ""
    ) -> dict[str, str]:
        return {
            "sourcedId": sid,
            **_meta(),
            "title": title,
            "type": kind,
            "startDate": start,
            "endDate": end,
            "parentSourcedId": parent,
            "schoolYear": "2025",
        }

    return {
        "orgs": [
            org("D1", "Springfield District", "district"),
            org("S1", "Springfield High", "school", "D1"),
            org("S2", "Shelbyville High", "school", "D1"),
        ],
        "academicSessions": [
            session("Y1", "2024-2025", "schoolYear", "2024-08-15", "2025-06-15"),
            session("T1", "Fall 2024", "semester", "2024-08-15", "2024-12-20", "Y1"),
        ],
        "courses": [
            {
                "sourcedId": "C1",
                **_meta(),
                "schoolYearSourcedId": "Y1",
                "title": "Algebra I",
                "courseCode": "ALG1",
                "grades": "9,10",
                "orgSourcedId": "S1",
                "subjects": "Mathematics",
                "subjectCodes": "",
            }
        ],
        "classes": [
            klass("K1", "Algebra I - P1", "S1"),
            klass("K2", "Algebra I - P2", "S2", termSourcedIds="T1,Y1", periods="3"),
        ],
        "users": [
            user(
                "U1",
                "Lisa",
                "Simpson",
                agentSourcedIds="G1",
                grades="9",
                userIds="{LDAP:lsimpson},{SIS:1001}",
                identifier="1001",
                primaryOrgSourcedId="S1",
            ),
            user("U2", "Bart", "Simpson", sms="555-0101", grades="10"),
            user("TE", "Edna", "Krabappel", phone="555-0199", preferredGivenName="Mrs."),
            user("G1", "Marge", "Simpson", password="secret"),
        ],
        "roles": [
            role("R1", "U1", "student", "S1"),
            role("R2", "U2", "student", "S1"),
            role("R3", "TE", "teacher", "S1"),
            role("R4", "TE", "teacher", "S2", "secondary"),
            role("R5", "G1", "parent", "D1"),
        ],
        "demographics": [
            {
                "sourcedId": "U1",
                **_meta(),
                "birthDate": "2010-05-09",
                "sex": "female",
                "americanIndianOrAlaskaNative": "false",
                "asian": "true",
                "blackOrAfricanAmerican": "false",
                "nativeHawaiianOrOtherPacificIslander": "",
                "white": "true",
                "demographicRaceTwoOrMoreRaces": "true",
                "hispanicOrLatinoEthnicity": "false",
                "countryOfBirthCode": "US",
                "stateOfBirthAbbreviation": "OR",
                "cityOfBirth": "Springfield",
                "publicSchoolResidenceStatus": "",
            }
        ],
        "enrollments": [
            enrollment("E1", "K1", "U1", "student", beginDate="2024-08-15", endDate="2024-12-20"),
            enrollment("E2", "K1", "U2", "student"),
            enrollment("E3", "K1", "TE", "teacher", primary="true"),
            enrollment("E4", "K2", "U2", "student", beginDate="2025-01-06"),
        ],
    }


def without(files: Files, stem: str, *sourced_ids: str, column: str = "sourcedId") -> Files:
    """`files` with the rows of `stem` whose `column` is one of `sourced_ids` left out."""
    changed = dict(files)
    changed[stem] = [row for row in files[stem] if row[column] not in sourced_ids]
    return changed


def edited(files: Files, stem: str, index: int, **cells: str) -> Files:
    """`files` with row `index` of `stem` changed."""
    changed = {k: [dict(r) for r in v] for k, v in files.items()}
    changed[stem][index].update(cells)
    return changed


# ---------------------------------------------------------------- the public samples


@needs_samples
def test_lepo_sample_imports_with_its_quirks_as_warnings(any_db_url: str) -> None:
    result = import_folder(any_db_url, LEPO, "Lepo")

    assert result.counts == {
        "districts": 1,
        "schools": 1,
        "sessions": 4,
        "courses": 2,
        "classes": 5,
        "sections": 0,
        "people": 20,
        "enrollments": 30,
        "agents": 0,
    }
    assert result.warnings == [
        "manifest.csv, line 10: unknown key 'fiel.demographics', read as 'file.demographics'",
        "enrollments.csv, line 2: user 'us0001' is STUDENT in users.csv but enrolled as TEACHER",
        "enrollments.csv, line 6: user 'us0002' is STUDENT in users.csv but enrolled as TEACHER",
    ]
    assert (result.version, result.created_source) == ("1.1", True)
    [district] = rows(any_db_url, models.District)
    assert district["name"] == "Lepo"  # the sample has no district org
    teacher = rows(any_db_url, models.Person, id=stable_id(result.source_id, "person", "us0001"))[0]
    assert (teacher["first_name"], teacher["last_name"], teacher["roles"]) == (
        "GN 01",
        "FN 01",
        ["STUDENT"],
    )
    assert teacher["properties"]["givenName"] == "GN 01"
    # An extension column cannot be known not to be an identifier: properties leave it out.
    assert "metadata.phoneticGivenName" not in teacher["properties"]


@needs_samples
def test_catalyst_sample_imports_a_1_2_delta(any_db_url: str) -> None:
    result = import_folder(any_db_url, CATALYST, "Catalyst")

    assert result.counts == {
        "districts": 1,
        "schools": 1,
        "sessions": 1,
        "courses": 1,
        "classes": 1,
        "sections": 0,
        "people": 1,
        "enrollments": 1,
        "agents": 0,
    }
    assert result.warnings == ["userProfiles.csv has no place in the Graph and was not imported"]
    assert result.modes == dict.fromkeys(
        (
            "orgs",
            "academicSessions",
            "courses",
            "classes",
            "users",
            "roles",
            "demographics",
            "enrollments",
        ),
        "delta",
    )
    [person] = rows(any_db_url, models.Person)
    school = stable_id(result.source_id, "school", "ORG_1")
    assert person["roles"] == ["STUDENT"]
    assert person["demographics"]["birthday"] == "2010-04-17"
    assert person["properties"]["roles"][0]["role"] == "student"
    assert "password" not in person["properties"]
    assert rows(any_db_url, models.PersonSchool) == [
        {"person_id": person["id"], "school_id": school, "source_id": result.source_id}
    ]
    [session] = rows(any_db_url, models.Session)
    assert (session["type"], session["state"], session["start_date"]) == (
        "SEMESTER",
        "COMPLETED",
        date(2023, 9, 4),
    )


def test_an_import_never_replaces_a_source_fed_by_another_provider(
    db_url: str, tmp_path: Path
) -> None:
    # Same name by accident: the demo's or a Canvas source's rows must not be swapped for the
    # folder's under every grant on that source.
    async def canvas(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await create_source(conn, "Springfield", provider_application="canvas")

    run_db(db_url, canvas)
    before = dump(db_url)
    with pytest.raises(ValidationFailed, match="is fed by provider 'canvas', not by OneRoster"):
        import_folder(db_url, write_folder(tmp_path / "f", district_files()))
    assert dump(db_url) == before


def test_an_import_that_changes_rows_is_audited(db_url: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", district_files())
    result = import_folder(db_url, folder)
    import_folder(db_url, folder)  # changes nothing: no entry
    entries = sorted(rows(db_url, models.AuditEntry), key=lambda e: e["at"])
    assert [(e["action"], e["subject_id"], e["actor"]) for e in entries] == [
        ("source.create", result.source_id, "cli"),
        ("source.import", result.source_id, "cli"),
    ]
    assert entries[1]["after"]["counts"] == result.counts


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param(LEPO, marks=needs_samples, id="lepo-1.1-bulk"),
        pytest.param(CATALYST, marks=needs_samples, id="catalyst-1.2-delta"),
        pytest.param(None, id="generated-1.2-bulk"),
    ],
)
def test_importing_a_folder_twice_changes_nothing(
    any_db_url: str, tmp_path: Path, sample: Path | None
) -> None:
    sample = sample or write_folder(tmp_path / "f", district_files())
    first = import_folder(any_db_url, sample)
    before = dump(any_db_url)

    again = import_folder(any_db_url, sample)

    assert dump(any_db_url) == before  # row contents and updated dates
    assert (again.inserted, again.updated, again.deleted) == ({}, {}, {})
    assert (again.source_id, again.counts, again.created_source) == (
        first.source_id,
        first.counts,
        False,
    )


# ---------------------------------------------------------------- mapping


def test_a_1_2_folder_maps_onto_the_graph(any_db_url: str, tmp_path: Path) -> None:
    result = import_folder(any_db_url, write_folder(tmp_path / "f", district_files()))
    source = result.source_id

    def sid(kind: str, sourced_id: str) -> str:
        return stable_id(source, kind, sourced_id)

    assert result.counts == {
        "districts": 1,
        "schools": 2,
        "sessions": 2,
        "courses": 1,
        "classes": 2,
        "sections": 0,
        "people": 4,
        "enrollments": 4,
        "agents": 1,
    }
    assert result.warnings == []
    [district] = rows(any_db_url, models.District)
    assert (district["id"], district["name"]) == (sid("district", "D1"), "Springfield District")
    lisa = rows(any_db_url, models.Person, id=sid("person", "U1"))[0]
    assert {
        k: lisa[k]
        for k in (
            "first_name",
            "last_name",
            "display_name",
            "roles",
            "email",
            "phone",
            "grade_levels",
            "district_id",
            "identifiers",
        )
    } == {
        "first_name": "Lisa",
        "last_name": "Simpson",
        "display_name": "Lisa Simpson",
        "roles": ["STUDENT"],
        "email": "u1@example.org",
        "phone": None,
        "grade_levels": ["09"],
        "district_id": sid("district", "D1"),
        "identifiers": [
            {"type": "sourcedId", "value": "U1"},
            {"type": "username", "value": "u1"},
            {"type": "identifier", "value": "1001"},
            {"type": "LDAP", "value": "lsimpson"},
            {"type": "SIS", "value": "1001"},
        ],
    }
    assert lisa["demographics"] == {
        "birthday": "2010-05-09",
        "gender": "female",
        "races": ["Asian", "White", "DemographicRaceTwoorMoreRaces"],
        "hispanicOrLatinoEthnicity": False,
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
        "countryOfBirth": "US",
        "stateOfBirth": "OR",
        "cityOfBirth": "Springfield",
    }
    teacher = rows(any_db_url, models.Person, id=sid("person", "TE"))[0]
    assert (teacher["roles"], teacher["display_name"], teacher["phone"]) == (
        ["TEACHER"],
        "Mrs. Krabappel",
        "555-0199",
    )
    assert rows(any_db_url, models.Person, id=sid("person", "U2"))[0]["phone"] == "555-0101"
    marge = rows(any_db_url, models.Person, id=sid("person", "G1"))[0]
    assert marge["roles"] == ["PARENT"]
    # properties:read must not bypass emails:read or phones:read, nor show a password
    assert not {"password", "email", "phone", "sms"} & set(marge["properties"])
    assert marge["properties"]["givenName"] == "Marge"
    assert {(r["person_id"], r["school_id"]) for r in rows(any_db_url, models.PersonSchool)} == {
        (sid("person", "U1"), sid("school", "S1")),
        (sid("person", "U2"), sid("school", "S1")),
        (sid("person", "TE"), sid("school", "S1")),
        (sid("person", "TE"), sid("school", "S2")),
    }
    [agent] = rows(any_db_url, models.Agent)
    assert (agent["observer_id"], agent["target_id"], agent["relationship"]) == (
        sid("person", "G1"),
        sid("person", "U1"),
        "PARENT",
    )
    k2 = rows(any_db_url, models.Class, id=sid("class", "K2"))[0]
    assert {
        k: k2[k]
        for k in (
            "name",
            "school_id",
            "course_id",
            "state",
            "grade_levels",
            "subjects",
            "periods",
            "identifiers",
        )
    } == {
        "name": "Algebra I - P2",
        "school_id": sid("school", "S2"),
        "course_id": sid("course", "C1"),
        "state": "ACTIVE",
        "grade_levels": ["09"],
        "subjects": ["Mathematics"],
        "periods": ["3"],
        "identifiers": [
            {"type": "sourcedId", "value": "K2"},
            {"type": "classCode", "value": "K2-code"},
        ],
    }
    assert {(r["class_id"], r["session_id"]) for r in rows(any_db_url, models.ClassSession)} == {
        (sid("class", "K1"), sid("session", "T1")),
        (sid("class", "K2"), sid("session", "T1")),
        (sid("class", "K2"), sid("session", "Y1")),
    }
    course = rows(any_db_url, models.Course)[0]
    assert (course["school_id"], course["session_id"], course["code"], course["grade_levels"]) == (
        sid("school", "S1"),
        sid("session", "Y1"),
        "ALG1",
        ["09", "10"],
    )
    sessions = {s["name"]: (s["type"], s["state"]) for s in rows(any_db_url, models.Session)}
    assert sessions == {"2024-2025": ("SCHOOL_YEAR", "ACTIVE"), "Fall 2024": ("SEMESTER", "ACTIVE")}
    enrollments = {
        e["identifiers"][0]["value"]: (
            e["role"],
            e["primary"],
            e["state"],
            e["start_date"],
            e["end_date"],
            e["section_id"],
        )
        for e in rows(any_db_url, models.Enrollment)
    }
    assert enrollments == {
        "E1": ("STUDENT", False, "ACTIVE", date(2024, 8, 15), date(2024, 12, 20), None),
        "E2": ("STUDENT", False, "ACTIVE", None, None, None),
        "E3": ("TEACHER", True, "ACTIVE", None, None, None),
        "E4": ("STUDENT", False, "UPCOMING", date(2025, 1, 6), None, None),
    }


@pytest.mark.parametrize(
    ("oneroster_role", "edlink_role", "relationship"),
    [
        ("student", "STUDENT", "OTHER"),
        ("teacher", "TEACHER", "OTHER"),
        ("aide", "AIDE", "AIDE"),
        ("guardian", "GUARDIAN", "GUARDIAN"),
        ("parent", "PARENT", "PARENT"),
        ("relative", "GUARDIAN", "RELATIVE"),
        ("proctor", "TA", "AIDE"),
        ("districtAdministrator", "DISTRICT_ADMINISTRATOR", "OTHER"),
        ("siteAdministrator", "ADMINISTRATOR", "OTHER"),
        ("systemAdministrator", "ADMINISTRATOR", "OTHER"),
        ("principal", "ADMINISTRATOR", "OTHER"),
        ("counselor", "STAFF", "OTHER"),
        ("ext:nurse", "MEMBER", "OTHER"),
    ],
)
def test_roles_map_to_edlink_roles_and_agent_relationships(
    db_url: str, tmp_path: Path, oneroster_role: str, edlink_role: str, relationship: str
) -> None:
    files = edited(district_files(), "roles", 4, role=oneroster_role)
    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    observer = stable_id(result.source_id, "person", "G1")
    assert rows(db_url, models.Person, id=observer)[0]["roles"] == [edlink_role]
    assert rows(db_url, models.Agent)[0]["relationship"] == relationship


def test_a_1_1_folder_takes_roles_and_orgs_from_users(any_db_url: str, tmp_path: Path) -> None:
    files = district_files()
    del files["roles"]
    files["orgs"].append(
        {
            **files["orgs"][1],
            "sourcedId": "M2",
            "type": "department",
            "name": "Mathematics",
            "parentSourcedId": "S2",
        }
    )
    users = files["users"]
    for row, (role, orgs) in zip(
        users,
        [("student", "S1"), ("student", "S1"), ("teacher", "S1,M2"), ("guardian", "D1")],
        strict=True,
    ):
        row.update(role=role, orgSourcedIds=orgs)
    result = import_folder(any_db_url, write_folder(tmp_path / "f", files, version="1.1"))

    source = result.source_id
    teacher = rows(any_db_url, models.Person, id=stable_id(source, "person", "TE"))[0]
    assert teacher["roles"] == ["TEACHER"]
    assert "roles" not in teacher["properties"]
    schools = {
        r["school_id"] for r in rows(any_db_url, models.PersonSchool, person_id=teacher["id"])
    }
    assert schools == {stable_id(source, "school", "S1"), stable_id(source, "school", "S2")}
    assert rows(any_db_url, models.Agent)[0]["relationship"] == "GUARDIAN"


def test_a_folder_without_schools_gets_a_placeholder_school(
    any_db_url: str, tmp_path: Path
) -> None:
    files = without(district_files(), "orgs", "S1", "S2")
    files = {k: [dict(r) for r in v] for k, v in files.items()}
    for stem, column in (
        ("classes", "schoolSourcedId"),
        ("courses", "orgSourcedId"),
        ("enrollments", "schoolSourcedId"),
        ("roles", "orgSourcedId"),
    ):
        for row in files[stem]:
            row[column] = "D1"
    files["users"][0]["primaryOrgSourcedId"] = ""
    result = import_folder(any_db_url, write_folder(tmp_path / "f", files), "No Schools")

    [school] = rows(any_db_url, models.School)
    assert (school["name"], school["district_id"]) == (
        "No Schools",
        stable_id(result.source_id, "district", "D1"),
    )
    assert {c["school_id"] for c in rows(any_db_url, models.Class)} == {school["id"]}
    assert rows(any_db_url, models.Course)[0]["school_id"] is None

    # Once the source has a real school, the unused placeholder goes.
    import_folder(any_db_url, write_folder(tmp_path / "g", district_files()), "No Schools")
    names = sorted(s["name"] for s in rows(any_db_url, models.School))
    assert names == ["Shelbyville High", "Springfield High"]


def test_a_zip_file_imports_like_its_folder(db_url: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", district_files())
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.iterdir():
            zipped.write(path, f"export/{path.name}")

    assert import_folder(db_url, archive).counts["enrollments"] == 4


def _zipped(archive: Path, members: dict[str, Path]) -> Path:
    """A zip file at `archive` holding each folder of `members` (its files) under its prefix."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for prefix, folder in members.items():
            for path in sorted(folder.iterdir()):
                zipped.write(path, f"{prefix}{path.name}")
    return archive


def test_a_zip_of_a_folder_without_a_manifest_imports_that_folder(
    db_url: str, tmp_path: Path
) -> None:
    # As `zip -r x.zip x` makes it; the message said the zip was empty (found by a review).
    folder = write_folder(tmp_path / "f", district_files(), manifest=False)
    result = import_folder(db_url, _zipped(tmp_path / "x.zip", {"x/": folder}))

    assert result.counts["enrollments"] == 4
    assert any("manifest.csv is missing" in warning for warning in result.warnings)


@pytest.mark.parametrize("prefixes", [("", "archive/old/"), ("a/", "b/")])
def test_a_zip_of_two_exports_is_an_error_and_changes_nothing(
    db_url: str, tmp_path: Path, prefixes: tuple[str, str]
) -> None:
    # It imported whichever export the zip listed first, silently (found by a review).
    import_folder(db_url, write_folder(tmp_path / "good", district_files()))
    before = dump(db_url)
    old = write_folder(tmp_path / "old", edited(district_files(), "users", 1, email="old@x.org"))
    new = write_folder(tmp_path / "new", district_files())
    archive = _zipped(tmp_path / "both.zip", {prefixes[1]: old, prefixes[0]: new})

    with pytest.raises(ValidationFailed) as raised:
        import_folder(db_url, archive)

    shown = " and ".join(p or "its top" for p in sorted(prefixes))
    assert str(raised.value) == (
        f"{archive} holds more than one OneRoster export (a manifest.csv in {shown}); zip one "
        "export alone, or unzip it and import the folder of the one you mean"
    )
    assert dump(db_url) == before


# ---------------------------------------------------------------- bulk, delta, idempotence


def test_reimport_keeps_ids_and_touches_only_changed_rows(any_db_url: str, tmp_path: Path) -> None:
    files = district_files()
    first = import_folder(any_db_url, write_folder(tmp_path / "a", files))
    before = {p["id"]: p for p in rows(any_db_url, models.Person)}

    changed = edited(files, "users", 1, email="bart@example.org")
    again = import_folder(any_db_url, write_folder(tmp_path / "b", changed))

    after = {p["id"]: p for p in rows(any_db_url, models.Person)}
    bart = stable_id(first.source_id, "person", "U2")
    assert again.source_id == first.source_id
    assert set(after) == set(before)
    assert again.updated == {"people": 1}
    assert after[bart]["email"] == "bart@example.org"
    assert after[bart]["updated_date"] > before[bart]["updated_date"]
    assert after[bart]["created_date"] == before[bart]["created_date"]
    for person_id in set(after) - {bart}:
        assert after[person_id] == before[person_id]


def test_the_same_export_with_its_columns_in_another_order_changes_nothing(
    any_db_url: str, tmp_path: Path
) -> None:
    # An SIS that writes its columns in another order sends the same data: no row is updated
    # (no change-feed event, no new updatedDate), on either engine and for every file,
    # enrollments too, whose `properties` the SQLite road compares in SQL.
    files = district_files()
    import_folder(any_db_url, write_folder(tmp_path / "a", files))
    models_ = (models.Person, models.Class, models.Enrollment, models.School, models.Course)
    before = {model: rows(any_db_url, model) for model in models_}

    reordered = {stem: [dict(reversed(r.items())) for r in data] for stem, data in files.items()}
    again = import_folder(any_db_url, write_folder(tmp_path / "b", reordered))

    assert (again.updated, again.inserted, again.deleted) == ({}, {}, {})
    assert {model: rows(any_db_url, model) for model in models_} == before


def test_bulk_import_removes_rows_missing_from_the_files(any_db_url: str, tmp_path: Path) -> None:
    files = district_files()
    first = import_folder(any_db_url, write_folder(tmp_path / "a", files))

    smaller = without(files, "users", "U2")
    smaller = without(smaller, "roles", "U2", column="userSourcedId")
    smaller = without(smaller, "enrollments", "E2", "E4")
    smaller = without(smaller, "classes", "K2")
    result = import_folder(any_db_url, write_folder(tmp_path / "b", smaller))

    assert result.counts == {**first.counts, "people": 3, "enrollments": 2, "classes": 1}
    assert rows(any_db_url, models.Person, id=stable_id(first.source_id, "person", "U2")) == []
    assert result.deleted == {"people": 1, "enrollments": 2, "classes": 1}


def test_delta_import_upserts_and_deletes_tobedeleted_rows(any_db_url: str, tmp_path: Path) -> None:
    first = import_folder(any_db_url, write_folder(tmp_path / "a", district_files()))
    base = district_files()
    delta = {
        "users": [dict(base["users"][1], status="tobedeleted")],
        "enrollments": [
            dict(base["enrollments"][0], status="active", role="teacher"),
            dict(base["enrollments"][0], sourcedId="E5", classSourcedId="K2", status="active"),
        ],
        "classes": [dict(base["classes"][0], status="active", title="Algebra I - Period 1")],
    }
    result = import_folder(any_db_url, write_folder(tmp_path / "b", delta, mode="delta"))

    source = first.source_id
    assert result.counts == {**first.counts, "people": 3, "enrollments": 3}
    assert rows(any_db_url, models.Person, id=stable_id(source, "person", "U2")) == []
    e1 = rows(any_db_url, models.Enrollment, id=stable_id(source, "enrollment", "E1"))[0]
    assert e1["role"] == "TEACHER"
    k1 = rows(any_db_url, models.Class, id=stable_id(source, "class", "K1"))[0]
    assert k1["name"] == "Algebra I - Period 1"
    assert result.warnings == [
        "classes.csv: rows with an empty dateLastModified (first at line 2)",
        "users.csv: rows with an empty dateLastModified (first at line 2)",
        "enrollments.csv: rows with an empty dateLastModified (first at line 2)",
        "enrollments.csv, line 2: user 'U1' is STUDENT in users.csv but enrolled as TEACHER",
    ]


def _as_earlier_versions_stored_people(db_url: str) -> None:
    """Put the people's role rows and orgs back into `properties`, where imports before the
    `oneroster_people` table kept them, and empty that table."""
    memory = models.table_of(models.OneRosterPerson)
    people = models.table_of(models.Person)

    async def body(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            for row in (await conn.execute(sa.select(memory))).mappings().all():
                query = sa.select(people.c.properties).where(people.c.id == row["person_id"])
                properties = (await conn.execute(query)).scalar_one()
                legacy = {
                    **properties,
                    "primaryOrgSourcedId": ",".join(row["orgs"]),
                    "roles": row["roles"],
                }
                await conn.execute(
                    people.update().where(people.c.id == row["person_id"]).values(properties=legacy)
                )
            await conn.execute(memory.delete())

    run_db(db_url, body)


@pytest.mark.parametrize("stored_by", ["this-version", "earlier-versions"])
def test_delta_roles_and_demographics_update_people_not_in_users(
    any_db_url: str, tmp_path: Path, stored_by: str
) -> None:
    first = import_folder(any_db_url, write_folder(tmp_path / "a", district_files()))
    if stored_by == "earlier-versions":
        _as_earlier_versions_stored_people(any_db_url)
    base = district_files()
    delta = {
        "roles": [
            {
                **base["roles"][0],
                "sourcedId": "R6",
                "roleType": "secondary",
                "role": "aide",
                "orgSourcedId": "S2",
                "status": "active",
                "dateLastModified": "2024-09-01T00:00:00Z",
            },
            {
                **base["roles"][3],
                "status": "tobedeleted",
                "dateLastModified": "2024-09-01T00:00:00Z",
            },
        ],
        "demographics": [
            {
                **base["demographics"][0],
                "status": "tobedeleted",
                "dateLastModified": "2024-09-01T00:00:00Z",
            },
        ],
    }
    result = import_folder(any_db_url, write_folder(tmp_path / "b", delta, mode="delta"))

    source = first.source_id
    lisa = rows(any_db_url, models.Person, id=stable_id(source, "person", "U1"))[0]
    assert (lisa["roles"], lisa["demographics"]) == (["STUDENT", "AIDE"], None)
    teacher = stable_id(source, "person", "TE")
    schools = {r["school_id"] for r in rows(any_db_url, models.PersonSchool, person_id=teacher)}
    assert schools == {stable_id(source, "school", "S1")}
    assert result.updated == {"people": 2}
    assert result.warnings == []
    for person_id in (lisa["id"], teacher):
        assert property_leaks(rows(any_db_url, models.Person, id=person_id)[0]["properties"]) == []


# ---------------------------------------------------------------- properties (DESIGN §3)

WITH_PROPERTIES = (
    models.District,
    models.School,
    models.Session,
    models.Course,
    models.Class,
    models.Person,
    models.Enrollment,
    models.Agent,
)


def _folder_1_1(path: Path, **user_2: str) -> Path:
    """A 1.1 folder (roles and orgs on users.csv), with `user_2`'s cells on the second user."""
    files = district_files()
    del files["roles"]
    roles_and_orgs = [("student", "S1"), ("student", "S1"), ("teacher", "S1,S2"), ("parent", "D1")]
    for row, (role, orgs) in zip(files["users"], roles_and_orgs, strict=True):
        row.update(role=role, orgSourcedIds=orgs)
        del row["primaryOrgSourcedId"]
    files["users"][3]["agentSourcedIds"] = "U1"
    files["users"][1].update(user_2)
    return write_folder(path, files, version="1.1")


def test_a_1_2_delta_keeps_the_roles_and_schools_a_1_1_import_gave(
    any_db_url: str, tmp_path: Path
) -> None:
    # A district whose SIS moves from 1.1 to 1.2: its first 1.2 delta users.csv (no role or
    # orgSourcedIds columns, no roles.csv) left the people it lists without roles or their
    # other schools (found by a review). A delta that says nothing of roles changes none.
    first = import_folder(any_db_url, _folder_1_1(tmp_path / "old"))
    teacher = stable_id(first.source_id, "person", "TE")

    def schools() -> set[str]:
        return {r["school_id"] for r in rows(any_db_url, models.PersonSchool, person_id=teacher)}

    before = (rows(any_db_url, models.Person, id=teacher)[0]["roles"], schools())
    assert before == (["TEACHER"], {stable_id(first.source_id, "school", s) for s in ("S1", "S2")})
    edna = dict(district_files()["users"][2], status="active", email="edna@example.org")
    delta = write_folder(tmp_path / "new", {"users": [edna]}, mode="delta")
    result = import_folder(any_db_url, delta)

    person = rows(any_db_url, models.Person, id=teacher)[0]
    assert (person["email"], person["roles"], schools()) == ("edna@example.org", *before)
    assert result.updated == {"people": 1}


def _departments_1_1(path: Path, teacher_orgs: str) -> Path:
    """`_folder_1_1` with departments M1 (of S1) and M3 (of S2), the teacher in `teacher_orgs`."""
    folder = _folder_1_1(path)
    files = district_files()
    orgs = [*files["orgs"], _department("M1", "S1"), _department("M3", "S2")]
    with (folder / "orgs.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(files["orgs"][0]))
        writer.writeheader()
        writer.writerows({k: v for k, v in org.items() if k in files["orgs"][0]} for org in orgs)
    users = (folder / "users.csv").read_text().replace("S1,S2", teacher_orgs)
    (folder / "users.csv").write_text(users)
    return folder


def _teacher_schools(db_url: str, source_id: str) -> set[str]:
    teacher = stable_id(source_id, "person", "TE")
    return {r["school_id"] for r in rows(db_url, models.PersonSchool, person_id=teacher)}


@pytest.mark.parametrize(
    ("status", "parent", "schools"), [("active", "S2", {"S2"}), ("tobedeleted", "S1", set())]
)
def test_a_delta_that_moves_or_deletes_a_department_moves_its_people(
    any_db_url: str, tmp_path: Path, status: str, parent: str, schools: set[str]
) -> None:
    # Its people kept the school of the department's old parent: an integration scoped to that
    # school went on reading them, one scoped to the new school did not see them (found by a
    # review).
    first = import_folder(any_db_url, _departments_1_1(tmp_path / "bulk", "M1"))
    source = first.source_id
    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", "S1")}
    moved = {**_department("M1", parent), "status": status}
    import_folder(any_db_url, write_folder(tmp_path / "delta", {"orgs": [moved]}, mode="delta"))

    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", s) for s in schools}


_CHANGES = {
    # the teacher's orgs, the delta's change, the teacher's schools after it
    "move M1": ("M1,M3", {"S2"}),
    "delete S1": ("S1,M3", {"S2"}),
}


def _change(change: str) -> list[dict[str, str]]:
    school = next(o for o in district_files()["orgs"] if o["sourcedId"] == "S1")
    return {
        "move M1": [_department("M1", "S2")],
        # with its department M1, which would be left without a parent
        "delete S1": [
            {**school, "status": "tobedeleted"},
            {**_department("M1", "S1"), "status": "tobedeleted"},
        ],
    }[change]


@pytest.mark.parametrize("change", list(_CHANGES))
def test_a_delta_that_changes_an_org_of_people_in_a_department_it_does_not_list(
    any_db_url: str, tmp_path: Path, change: str
) -> None:
    # The teacher's other department, M3, is one the delta does not list: it resolves from what
    # the bulk import stored of it (departments were known only from the orgs.csv that listed
    # them, and such a delta was refused).
    teacher_orgs, schools = _CHANGES[change]
    first = import_folder(any_db_url, _departments_1_1(tmp_path / "bulk", teacher_orgs))
    delta = write_folder(tmp_path / "delta", {"orgs": _change(change)}, mode="delta")
    import_folder(any_db_url, delta)

    source = first.source_id
    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", s) for s in schools}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "move M1",
            "orgs.csv, line 2, column 'sourcedId': org 'M1' changes departments of a source "
            "imported by a version that did not remember its departments, whose people this "
            "import cannot all find: import a bulk orgs.csv (alone will do), then this folder",
        ),
        (
            "delete S1",
            "orgs.csv, line 2, column 'sourcedId': org 'S1' changes departments of a source "
            "imported by a version that did not remember its departments, whose people this "
            "import cannot all find: import a bulk orgs.csv (alone will do), then this folder",
        ),
    ],
)
def test_without_the_stored_orgs_of_an_earlier_version_such_a_delta_is_an_error(
    any_db_url: str, tmp_path: Path, change: str, message: str
) -> None:
    # A database imported by a version that did not store its departments knows M3 from no
    # file: rather than silently drop the teacher's school of M3 (or of the people of forgotten
    # departments below M1, found by a review), the delta is refused.
    import_folder(any_db_url, _departments_1_1(tmp_path / "bulk", _CHANGES[change][0]))
    _forget_orgs(any_db_url)
    before = dump(any_db_url)
    delta = write_folder(tmp_path / "delta", {"orgs": _change(change)}, mode="delta")
    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, delta)

    assert str(raised.value) == message
    assert dump(any_db_url) == before


FOLDERS: dict[str, Callable[[Path], Path]] = {
    "lepo-1.1": lambda path: LEPO,
    "catalyst-1.2": lambda path: CATALYST,
    "district-1.2": lambda path: write_folder(path, district_files()),
    "district-1.1": _folder_1_1,
}


@needs_samples
@pytest.mark.parametrize("folder", FOLDERS)
def test_properties_hold_no_references_identifiers_or_contacts(
    db_url: str, tmp_path: Path, folder: str
) -> None:
    import_folder(db_url, FOLDERS[folder](tmp_path / "f"))

    leaks = {
        model.__tablename__: sorted(
            {key for row in rows(db_url, model) for key in property_leaks(row["properties"])}
        )
        for model in WITH_PROPERTIES
    }
    assert leaks == {model.__tablename__: [] for model in WITH_PROPERTIES}


def test_properties_keep_the_allowed_columns_of_each_file(db_url: str, tmp_path: Path) -> None:
    import_folder(db_url, write_folder(tmp_path / "f", district_files()))

    kept = {
        model.__tablename__: sorted(
            {key for row in rows(db_url, model) for key in (row["properties"] or {})}
        )
        for model in WITH_PROPERTIES
    }
    common = ["dateLastModified", "status"]
    assert kept == {
        "districts": sorted([*common, "name", "type"]),
        "schools": sorted([*common, "name", "type"]),
        "sessions": sorted([*common, "title", "type", "startDate", "endDate", "schoolYear"]),
        "courses": sorted([*common, "title", "courseCode", "grades", "subjects", "subjectCodes"]),
        "classes": sorted(
            [
                *common,
                *("title", "grades", "classType", "location", "subjects", "subjectCodes"),
                "periods",
            ]
        ),
        "people": sorted(
            [
                *common,
                *("enabledUser", "givenName", "familyName", "middleName", "grades"),
                *("preferredGivenName", "preferredMiddleName", "preferredFamilyName", "pronouns"),
                "roles",
            ]
        ),
        "enrollments": sorted([*common, "role", "primary", "beginDate", "endDate"]),
        "agents": [],
    }
    te = stable_id(rows(db_url, models.Source)[0]["id"], "person", "TE")
    assert rows(db_url, models.Person, id=te)[0]["properties"]["roles"] == [
        {"roleType": "primary", "role": "teacher", "beginDate": "", "endDate": ""},
        {"roleType": "secondary", "role": "teacher", "beginDate": "", "endDate": ""},
    ]


# ---------------------------------------------------------------- guardian links (DESIGN §10)


def _agents(db_url: str) -> list[tuple[str, str, str, str]]:
    """(id, observer, target, relationship) of every agent."""
    return [
        (a["id"], a["observer_id"], a["target_id"], a["relationship"])
        for a in rows(db_url, models.Agent)
    ]


def _link_files(lisa_lists: str, marge_lists: str, *, marge_role: str = "parent") -> Files:
    files = edited(district_files(), "users", 0, agentSourcedIds=lisa_lists)
    files = edited(files, "users", 3, agentSourcedIds=marge_lists)
    return edited(files, "roles", 4, role=marge_role)


@pytest.mark.parametrize(
    ("lisa_lists", "marge_lists"),
    [("G1", "U1"), ("G1", ""), ("", "U1")],
    ids=["both-rows", "student-row-only", "parent-row-only"],
)
def test_a_guardian_link_is_one_agent_whichever_row_lists_it(
    any_db_url: str, tmp_path: Path, lisa_lists: str, marge_lists: str
) -> None:
    files = _link_files(lisa_lists, marge_lists)
    result = import_folder(any_db_url, write_folder(tmp_path / "f", files))

    source = result.source_id
    lisa, marge = stable_id(source, "person", "U1"), stable_id(source, "person", "G1")
    link = stable_id(source, "agent", json.dumps(["U1", "G1"]))
    assert _agents(any_db_url) == [(link, marge, lisa, "PARENT")]
    assert result.counts["agents"] == 1
    assert result.warnings == []


@pytest.mark.parametrize(
    ("marge_role", "relationship"),
    [("guardian", "GUARDIAN"), ("relative", "RELATIVE"), ("aide", "AIDE"), ("proctor", "AIDE")],
)
def test_the_observer_is_the_side_with_the_guardian_or_aide_role(
    db_url: str, tmp_path: Path, marge_role: str, relationship: str
) -> None:
    # Listed from the observer's row only: the observer is still Marge.
    files = _link_files("", "U1", marge_role=marge_role)
    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    source = result.source_id
    assert [(o, t, r) for _, o, t, r in _agents(db_url)] == [
        (stable_id(source, "person", "G1"), stable_id(source, "person", "U1"), relationship)
    ]


@pytest.mark.parametrize(
    ("lisa_lists", "bart_lists"),
    [("U2", ""), ("U2", "U1")],
    ids=["one-row", "both-rows"],
)
def test_a_link_between_two_students_is_one_agent_targeting_the_lister_with_a_warning(
    any_db_url: str, tmp_path: Path, lisa_lists: str, bart_lists: str
) -> None:
    files = edited(district_files(), "users", 0, agentSourcedIds=lisa_lists)
    files = edited(files, "users", 1, agentSourcedIds=bart_lists)
    result = import_folder(any_db_url, write_folder(tmp_path / "f", files))

    source = result.source_id
    lisa, bart = stable_id(source, "person", "U1"), stable_id(source, "person", "U2")
    link = stable_id(source, "agent", json.dumps(["U1", "U2"]))
    assert _agents(any_db_url) == [(link, bart, lisa, "OTHER")]
    assert result.warnings == [
        "users.csv, line 2: neither 'U1' nor 'U2' has a parent, guardian, relative, aide or "
        "proctor role, so the agent link between them has no clear observer; stored with 'U1' "
        "(who lists it) as the target"
    ]


def test_two_guardians_linked_to_each_other_are_one_agent_with_a_warning(
    db_url: str, tmp_path: Path
) -> None:
    files = _link_files("G1", "U1")
    files = edited(files, "roles", 0, role="guardian")
    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    source = result.source_id
    lisa, marge = stable_id(source, "person", "U1"), stable_id(source, "person", "G1")
    assert [(o, t) for _, o, t, _ in _agents(db_url)] == [(marge, lisa)]
    assert [w for w in result.warnings if "agent" in w] == [
        "users.csv, line 2: both 'U1' and 'G1' have a parent, guardian, relative, aide or "
        "proctor role, so the agent link between them has no clear observer; stored with 'U1' "
        "(who lists it) as the target"
    ]


def test_a_delta_listing_a_link_from_the_other_side_changes_nothing(
    any_db_url: str, tmp_path: Path
) -> None:
    import_folder(any_db_url, write_folder(tmp_path / "a", _link_files("G1", "")))
    before = rows(any_db_url, models.Agent)
    marge = dict(_link_files("G1", "U1")["users"][3], status="active")
    delta = {"users": [marge]}
    result = import_folder(any_db_url, write_folder(tmp_path / "b", delta, mode="delta"))

    assert rows(any_db_url, models.Agent) == before
    assert result.counts["agents"] == 1
    assert "agents" not in result.inserted
    assert "agents" not in result.deleted


def test_a_delta_row_that_no_longer_lists_a_link_removes_it(
    any_db_url: str, tmp_path: Path
) -> None:
    import_folder(any_db_url, write_folder(tmp_path / "a", _link_files("", "U1")))
    marge = dict(_link_files("", "")["users"][3], status="active")
    result = import_folder(
        any_db_url, write_folder(tmp_path / "b", {"users": [marge]}, mode="delta")
    )

    assert _agents(any_db_url) == []
    assert result.counts["agents"] == 0


def test_a_reimport_leaves_one_agent_per_link_in_a_database_that_has_two(
    any_db_url: str, tmp_path: Path
) -> None:
    folder = write_folder(tmp_path / "f", _link_files("G1", "U1"))
    first = import_folder(any_db_url, folder)
    source = first.source_id
    lisa, marge = stable_id(source, "person", "U1"), stable_id(source, "person", "G1")

    (agent,) = [a for a in rows(any_db_url, models.Agent) if a["observer_id"] == marge]

    async def add_the_reversed_agent(engine: AsyncEngine) -> None:
        # What earlier versions made of Marge's row: Lisa observing Marge.
        reversed_ = {
            **agent,
            "id": stable_id(source, "agent", json.dumps(["G1", "U1"])),
            "observer_id": lisa,
            "target_id": marge,
            "relationship": "OTHER",
        }
        async with engine.begin() as conn:
            await conn.execute(sa.insert(models.Agent.__table__).values(**reversed_))

    run_db(any_db_url, add_the_reversed_agent)
    assert len(rows(any_db_url, models.Agent)) == 2
    for mode in ("bulk", "delta"):
        files = _link_files("G1", "U1")
        if mode == "delta":
            files = {"users": [dict(u, status="active") for u in files["users"]]}
            run_db(any_db_url, add_the_reversed_agent)
        import_folder(any_db_url, write_folder(tmp_path / mode, files, mode=mode))
        assert [(o, t) for _, o, t, _ in _agents(any_db_url)] == [(marge, lisa)], mode


@pytest.mark.parametrize("second", ["bulk", "delta"])
def test_a_guardian_at_a_target_school_does_not_open_her_student_to_it(
    db_url: str, tmp_path: Path, live_server: Callable[..., LiveServer], second: str
) -> None:
    # Lisa and her mother Marge list each other; Marge is a member of Shelbyville (S2). Lisa was
    # at Shelbyville too, then moved to Springfield (S1).
    files = _link_files("G1", "U1")
    files = edited(files, "roles", 4, orgSourcedId="S2")
    at_s2 = edited(files, "users", 0, primaryOrgSourcedId="S2")
    at_s2 = edited(at_s2, "roles", 0, orgSourcedId="S2")
    at_s2 = without(at_s2, "enrollments", "E1")
    import_folder(db_url, write_folder(tmp_path / "a", at_s2))
    if second == "bulk":
        result = import_folder(db_url, write_folder(tmp_path / "b", files))
    else:
        moved = {
            "users": [dict(files["users"][0], status="active")],
            "roles": [dict(files["roles"][0], status="active")],
            "enrollments": [dict(files["enrollments"][0], status="active")],
        }
        result = import_folder(db_url, write_folder(tmp_path / "b", moved, mode="delta"))
    source = result.source_id

    async def grant(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            created = await create_integration(
                conn,
                source_id=source,
                scope=Scope.SELECTED,
                permissions=["people:read", "agents:read"],
                targets=[stable_id(source, "school", "S2")],
            )
        return created.token

    token = run_db(db_url, grant)
    query = "{ people { nodes { id } } agents { nodes { id } } }"
    with live_server() as server:
        status, body = server.graphql(query, token)
    assert status == 200
    seen = {n["id"] for n in body["data"]["people"]["nodes"]}
    assert stable_id(source, "person", "G1") in seen
    assert stable_id(source, "person", "U1") not in seen
    assert body["data"]["agents"]["nodes"] == []


# ---------------------------------------------------------------- errors


def _bad_header(files: Files) -> Files:
    return {
        **files,
        "users": [{k: v for k, v in r.items() if k != "givenName"} for r in files["users"]],
    }


ERRORS = [
    pytest.param(
        _bad_header,
        "users.csv, line 1, column 'givenName': missing required column 'givenName'",
        id="missing-required-column",
    ),
    pytest.param(
        lambda f: edited(f, "enrollments", 2, beginDate="2024-13-01"),
        "enrollments.csv, line 4, column 'beginDate': '2024-13-01' is not a date",
        id="bad-date",
    ),
    pytest.param(
        lambda f: edited(f, "academicSessions", 1, endDate="12/20/2024"),
        "academicSessions.csv, line 3, column 'endDate': '12/20/2024' is not a date",
        id="bad-date-format",
    ),
    pytest.param(
        lambda f: edited(f, "users", 0, dateLastModified="yesterday"),
        "users.csv, line 2, column 'dateLastModified': 'yesterday' is not an ISO 8601",
        id="bad-timestamp",
    ),
    pytest.param(
        lambda f: edited(f, "enrollments", 3, classSourcedId="NOPE"),
        "enrollments.csv, line 5, column 'classSourcedId': unknown class 'NOPE' (not in classes",
        id="unknown-class",
    ),
    pytest.param(
        lambda f: edited(f, "enrollments", 0, userSourcedId="GHOST"),
        "enrollments.csv, line 2, column 'userSourcedId': unknown user 'GHOST'",
        id="unknown-user",
    ),
    pytest.param(
        lambda f: edited(f, "classes", 1, termSourcedIds="T1,T9"),
        "classes.csv, line 3, column 'termSourcedIds': unknown academic session 'T9'",
        id="unknown-term",
    ),
    pytest.param(
        lambda f: edited(f, "classes", 0, courseSourcedId="C9"),
        "classes.csv, line 2, column 'courseSourcedId': unknown course 'C9'",
        id="unknown-course",
    ),
    pytest.param(
        lambda f: edited(f, "courses", 0, orgSourcedId="S9"),
        "courses.csv, line 2, column 'orgSourcedId': unknown org 'S9'",
        id="unknown-org",
    ),
    pytest.param(
        lambda f: edited(f, "users", 0, primaryOrgSourcedId="S9"),
        "users.csv, line 2, column 'primaryOrgSourcedId': unknown org 'S9' (not in orgs.csv)",
        id="users-unknown-org",
    ),
    pytest.param(
        lambda f: edited(f, "users", 0, agentSourcedIds="G9"),
        "users.csv, line 2, column 'agentSourcedIds': unknown user 'G9'",
        id="unknown-agent",
    ),
    pytest.param(
        lambda f: edited(f, "roles", 2, userSourcedId="X"),
        "roles.csv, line 4, column 'userSourcedId': unknown user 'X'",
        id="roles-unknown-user",
    ),
    pytest.param(
        lambda f: edited(f, "demographics", 0, sourcedId="X"),
        "demographics.csv, line 2, column 'sourcedId': unknown user 'X'",
        id="demographics-unknown-user",
    ),
    pytest.param(
        lambda f: {**f, "users": [*f["users"], f["users"][1]]},
        "users.csv, line 6, column 'sourcedId': duplicate sourcedId 'U2' (first at line 3)",
        id="duplicate-sourcedId",
    ),
    pytest.param(
        lambda f: edited(f, "orgs", 2, type="planet"),
        "orgs.csv, line 4, column 'type': 'planet' is not one of",
        id="unknown-org-type",
    ),
    pytest.param(
        lambda f: edited(f, "academicSessions", 0, type="quarter"),
        "academicSessions.csv, line 2, column 'type': 'quarter' is not one of",
        id="unknown-session-type",
    ),
    pytest.param(
        lambda f: edited(f, "enrollments", 1, role="janitor"),
        "enrollments.csv, line 3, column 'role': 'janitor' is not one of",
        id="unknown-enrollment-role",
    ),
    pytest.param(
        lambda f: edited(f, "demographics", 0, sex="F"),
        "demographics.csv, line 2, column 'sex': 'F' is not one of",
        id="unknown-sex",
    ),
    pytest.param(
        lambda f: edited(f, "courses", 0, status="archived"),
        "courses.csv, line 2, column 'status': 'archived' is not one of",
        id="unknown-status",
    ),
    pytest.param(
        lambda f: edited(f, "enrollments", 0, primary="maybe"),
        "enrollments.csv, line 2, column 'primary': 'maybe' is not a boolean",
        id="bad-boolean",
    ),
    pytest.param(
        lambda f: edited(f, "orgs", 2, type="district"),
        "orgs.csv, line 4, column 'type': a second district org 'S2'",
        id="second-district",
    ),
    pytest.param(
        lambda f: edited(f, "classes", 0, schoolSourcedId="D1"),
        "classes.csv, line 2, column 'schoolSourcedId': org 'D1' is a district, not a school",
        id="class-at-a-district",
    ),
    pytest.param(
        lambda f: edited(f, "classes", 0, title=""),
        "classes.csv, line 2, column 'title': the value is required but the cell is empty",
        id="empty-title",
    ),
    # Found by a review: these columns were required to be there, not to be filled.
    pytest.param(
        lambda f: edited(f, "classes", 1, termSourcedIds=" "),
        "classes.csv, line 3, column 'termSourcedIds': the value is required but the cell is empty",
        id="empty-terms",
    ),
    pytest.param(
        lambda f: edited(f, "users", 1, givenName=""),
        "users.csv, line 3, column 'givenName': the value is required but the cell is empty",
        id="empty-given-name",
    ),
    pytest.param(
        lambda f: {
            **f,
            "orgs": [
                *f["orgs"],
                {**f["orgs"][1], "sourcedId": "M9", "type": "department", "parentSourcedId": "S9"},
            ],
        },
        "orgs.csv, line 5, column 'parentSourcedId': unknown org 'S9' (not in orgs.csv)",
        id="department-of-an-unknown-org",
    ),
    pytest.param(
        lambda f: edited(f, "users", 1, status="tobedeleted"),
        "roles.csv, line 3, column 'userSourcedId': unknown user 'U2' (users.csv marks it "
        "tobedeleted)",
        id="role-of-a-deleted-user",
    ),
    pytest.param(
        lambda f: edited(f, "users", 2, familyName="  "),
        "users.csv, line 4, column 'familyName': the value is required but the cell is empty",
        id="empty-family-name",
    ),
]
"""Each case spoils the good folder and names the message that must start the error."""


@pytest.mark.parametrize(("spoil", "expected"), ERRORS)
def test_a_bad_folder_names_file_line_column_and_changes_nothing(
    any_db_url: str, tmp_path: Path, spoil: Callable[[Files], Files], expected: str
) -> None:
    import_folder(any_db_url, write_folder(tmp_path / "good", district_files()))
    before = dump(any_db_url)

    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, write_folder(tmp_path / "bad", spoil(district_files())))

    error = raised.value
    where = f"{error.file}, line {error.line}"
    if error.column is not None:
        where += f", column '{error.column}'"
    assert expected.startswith(where + ": ")
    assert str(error).startswith(expected)
    assert dump(any_db_url) == before


@pytest.mark.parametrize("column", ["role", "orgSourcedIds"])
def test_a_1_1_user_without_its_role_or_orgs_is_an_error_and_changes_nothing(
    any_db_url: str, tmp_path: Path, column: str
) -> None:
    # OneRoster 1.1 requires both on every users.csv row (1.2 moved them to roles.csv); an
    # empty one made a person without roles or schools (found by a review).
    import_folder(any_db_url, _folder_1_1(tmp_path / "good"))
    before = dump(any_db_url)
    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, _folder_1_1(tmp_path / "bad", **{column: ""}))

    assert str(raised.value) == (
        f"users.csv, line 3, column '{column}': the value is required but the cell is empty"
    )
    assert dump(any_db_url) == before


def _department(sourced_id: str, parent: str) -> dict[str, str]:
    """An orgs.csv row of a department under `parent`, for a delta file (with its status)."""
    return {
        **district_files()["orgs"][1],
        "sourcedId": sourced_id,
        "name": "Mathematics",
        "type": "department",
        "parentSourcedId": parent,
        "status": "active",
    }


def test_a_row_that_a_deletion_changes_gets_its_updated_date_and_is_counted(
    any_db_url: str, tmp_path: Path
) -> None:
    # The database sets a deleted course's classes' course to null: they kept their
    # updatedDate, and an application syncing with `updatedAfter` never saw the change, nor
    # did the import's summary (found by a review).
    import_folder(any_db_url, write_folder(tmp_path / "good", district_files()))
    before = {c["id"]: c for c in rows(any_db_url, models.Class)}
    course = dict(district_files()["courses"][0], status="tobedeleted")
    delta = write_folder(tmp_path / "delta", {"courses": [course]}, mode="delta")
    result = import_folder(any_db_url, delta)

    after = rows(any_db_url, models.Class)
    assert [c["course_id"] for c in after] == [None, None]
    assert all(c["updated_date"] > before[c["id"]]["updated_date"] for c in after)
    assert (result.deleted, result.updated) == ({"courses": 1}, {"classes": 2})


def test_a_delta_may_update_the_sources_district(any_db_url: str, tmp_path: Path) -> None:
    import_folder(any_db_url, write_folder(tmp_path / "good", district_files()))
    renamed = {**district_files()["orgs"][0], "name": "Springfield USD", "status": "active"}
    import_folder(any_db_url, write_folder(tmp_path / "ok", {"orgs": [renamed]}, mode="delta"))

    assert [d["name"] for d in rows(any_db_url, models.District)] == ["Springfield USD"]


DELTA_ERRORS = [
    # Found by a review: a department stands for its parent school, and one whose parent
    # neither the file nor the source has gave its people no school, silently.
    pytest.param(
        {"orgs": [_department("M1", "S1"), _department("M9", "S9")]},
        "orgs.csv, line 3, column 'parentSourcedId': unknown org 'S9' (not in orgs.csv nor in "
        "the source)",
        id="department-of-an-org-known-nowhere",
    ),
    # Found by a review: it was ignored, the school staying with its classes (a bulk orgs.csv
    # does it: the school goes, its classes with it unless classes.csv moves them).
    pytest.param(
        {"orgs": [{**_department("S2", "S1"), "name": "Shelbyville Middle"}]},
        "orgs.csv, line 2, column 'type': org 'S2' is a school of the source, and a delta file "
        "cannot make it a department: mark it tobedeleted, or import a bulk orgs.csv",
        id="school-made-a-department",
    ),
    # Found by a review: it replaced the source's district (a new id for every application)
    # and reported only an insert.
    pytest.param(
        {
            "orgs": [
                {
                    **district_files()["orgs"][0],
                    "sourcedId": "D2",
                    "name": "Other",
                    "status": "active",
                }
            ]
        },
        "orgs.csv, line 2, column 'sourcedId': a district org 'D2', but the source's district "
        "is 'D1'; a source holds exactly one district: a delta file may update it, not add "
        "another",
        id="another-district",
    ),
]
"""Each case is a delta folder (file stem → rows) that the good folder's source refuses, and
the message of its error."""


@pytest.mark.parametrize(("delta", "expected"), DELTA_ERRORS)
def test_a_bad_delta_names_file_line_column_and_changes_nothing(
    any_db_url: str, tmp_path: Path, delta: Files, expected: str
) -> None:
    import_folder(any_db_url, write_folder(tmp_path / "good", district_files()))
    before = dump(any_db_url)
    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, write_folder(tmp_path / "bad", delta, mode="delta"))

    assert str(raised.value) == expected
    assert dump(any_db_url) == before


def test_a_delta_department_of_a_school_the_source_has_stands_for_that_school(
    any_db_url: str, tmp_path: Path
) -> None:
    first = import_folder(any_db_url, write_folder(tmp_path / "good", district_files()))
    bart = dict(district_files()["users"][1], status="active")
    role = {**district_files()["roles"][1], "orgSourcedId": "M2", "status": "active"}
    assert (bart["sourcedId"], role["userSourcedId"], role["orgSourcedId"]) == ("U2", "U2", "M2")
    delta = {"orgs": [_department("M2", "S2")], "users": [bart], "roles": [role]}
    import_folder(any_db_url, write_folder(tmp_path / "delta", delta, mode="delta"))

    person = stable_id(first.source_id, "person", "U2")
    schools = {r["school_id"] for r in rows(any_db_url, models.PersonSchool, person_id=person)}
    assert schools == {stable_id(first.source_id, "school", "S2")}


def test_a_row_with_too_many_fields_is_an_error(db_url: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", district_files())
    with (folder / "courses.csv").open("a", newline="") as handle:
        handle.write("C2,,,,Geometry,GEO,,S1,,,surplus\r\n")

    with pytest.raises(OneRosterError) as raised:
        import_folder(db_url, folder)

    assert str(raised.value) == "courses.csv, line 3: the row has 11 fields but the header has 10"


def test_a_file_that_is_not_utf8_is_an_error(db_url: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", district_files())
    users = folder / "users.csv"
    users.write_bytes(users.read_bytes().replace(b"Edna", "Ednä".encode("latin-1")))

    with pytest.raises(OneRosterError) as raised:
        import_folder(db_url, folder)

    assert str(raised.value) == (
        "users.csv, line 4, column 'givenName': not UTF-8 text (byte 0xe4 at character 4 of "
        "the cell)"
    )


def test_a_nul_character_in_a_cell_is_an_error(any_db_url: str, tmp_path: Path) -> None:
    # PostgreSQL text cannot hold U+0000 and SQLite would store it: both refuse it up front.
    folder = write_folder(tmp_path / "f", district_files())
    users = folder / "users.csv"
    users.write_bytes(users.read_bytes().replace(b"Edna", b"Ed\x00na"))

    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, folder)

    assert str(raised.value).startswith(
        "users.csv, line 4, column 'givenName': the cell holds a NUL character (U+0000)"
    )


def test_two_sources_with_the_name_make_the_import_refuse(db_url: str, tmp_path: Path) -> None:
    # A source's name is unique since `create_source` refuses one taken; a database from
    # before that may still hold two of one name.
    async def two(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            created = await create_source(conn, "Twice")
            sources = models.table_of(models.Source)
            row = (await conn.execute(sa.select(sources).where(sources.c.id == created.id))).one()
            await conn.execute(sources.insert().values({**row._asdict(), "id": str(uuid.uuid4())}))

    run_db(db_url, two)

    with pytest.raises(ValidationFailed, match="2 sources are named 'Twice'"):
        import_folder(db_url, write_folder(tmp_path / "f", district_files()), "Twice")


def test_a_bad_first_import_creates_no_source(any_db_url: str, tmp_path: Path) -> None:
    files = edited(district_files(), "enrollments", 0, classSourcedId="NOPE")
    before = dump(any_db_url)

    with pytest.raises(OneRosterError):
        import_folder(any_db_url, write_folder(tmp_path / "bad", files))

    assert dump(any_db_url) == before


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            [("oneroster.version", "1.2"), ("file.orgs", "sometimes")],
            "manifest.csv, line 3, column 'value': 'sometimes' is not a file mode",
        ),
        (
            [("oneroster.version", "1.2"), ("file.users", "bulk")],
            "manifest.csv, line 3, column 'value': file.users is 'bulk' but users.csv is not",
        ),
        (
            [("oneroster.version", "2.0"), ("file.orgs", "bulk")],
            "manifest.csv, line 2, column 'value': '2.0' is not a OneRoster version",
        ),
        (
            [("oneroster.version", "1.2"), ("file.orgs", "bulk"), ("file.orgs", "delta")],
            "manifest.csv, line 4, column 'propertyName': key 'file.orgs' appears twice",
        ),
    ],
    ids=["bad-mode", "missing-file", "unknown-version", "repeated-key"],
)
def test_manifest_errors(
    db_url: str, tmp_path: Path, manifest: list[tuple[str, str]], message: str
) -> None:
    folder = write_folder(tmp_path / "f", {"orgs": district_files()["orgs"]}, manifest=False)
    with (folder / "manifest.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("propertyName", "value"), *manifest])
    before = dump(db_url)

    with pytest.raises(OneRosterError) as raised:
        import_folder(db_url, folder)

    assert str(raised.value).startswith(message)
    assert dump(db_url) == before


def test_a_folder_without_manifest_is_read_as_bulk_with_a_warning(
    db_url: str, tmp_path: Path
) -> None:
    result = import_folder(db_url, write_folder(tmp_path / "f", district_files(), manifest=False))

    assert result.counts["people"] == 4
    assert result.version == "1.2"
    assert result.warnings == [
        "manifest.csv is missing: every OneRoster file in the folder is read in bulk mode"
    ]


def test_warnings_are_capped_per_kind(db_url: str, tmp_path: Path) -> None:
    files = district_files()
    students = [
        {**files["users"][1], "sourcedId": f"V{n:02d}", "username": f"v{n:02d}"} for n in range(12)
    ]
    files["users"] += students
    files["roles"] += [
        {**files["roles"][1], "sourcedId": f"RV{n:02d}", "userSourcedId": f"V{n:02d}"}
        for n in range(12)
    ]
    files["enrollments"] += [
        {
            **files["enrollments"][1],
            "sourcedId": f"EV{n:02d}",
            "userSourcedId": f"V{n:02d}",
            "role": "teacher",
        }
        for n in range(12)
    ]
    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    assert result.warnings == [
        *(
            f"enrollments.csv, line {n + 6}: user 'V{n:02d}' is STUDENT in users.csv but "
            "enrolled as TEACHER"
            for n in range(10)
        ),
        "2 more warnings like the above (enrollment role)",
    ]


def test_a_warning_repeated_on_many_rows_is_shown_once_and_its_repeats_counted(
    db_url: str, tmp_path: Path
) -> None:
    # The same bad grade on sixteen rows: one message (its first row), and the fifteen others
    # counted, as for sixteen different values past the first ten (found by a review: the
    # repeats went unmentioned).
    files = district_files()
    files["users"] += [
        {**files["users"][1], "sourcedId": f"V{n:02d}", "username": f"v{n:02d}", "grades": "ZZ"}
        for n in range(16)
    ]
    result = import_folder(db_url, write_folder(tmp_path / "f", files))

    assert result.warnings == [
        "users.csv, line 6, column 'grades': 'ZZ' is not a CEDS grade level and was left out",
        "15 more warnings like the above (grades users.csv)",
    ]


class RecordingProgress:
    """A Progress that records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def start(self, name: str, total_bytes: int) -> None:
        self.events.append(("start", name))

    def advance(self, done_bytes: int) -> None:
        self.events.append(("advance", done_bytes))

    def finish(self) -> None:
        self.events.append(("finish", None))


def test_progress_follows_each_file_in_batches(db_url: str, tmp_path: Path) -> None:
    files = district_files()
    folder = write_folder(tmp_path / "f", files)
    progress = RecordingProgress()

    async def body(engine: AsyncEngine) -> ImportResult:
        return await import_oneroster(
            engine, folder, source_name="S", progress=progress, batch_size=2, today=TODAY
        )

    run_db(db_url, body)

    started = [name for event, name in progress.events if event == "start"]
    assert started == [
        "orgs.csv",
        "academicSessions.csv",
        "courses.csv",
        "classes.csv",
        "roles.csv",
        "demographics.csv",
        "users.csv",
        "users.csv",  # agentSourcedIds, read again once every user exists
        "enrollments.csv",
    ]
    assert progress.events.count(("finish", None)) == len(started)
    advanced = [n for event, n in progress.events if event == "advance"]
    assert advanced
    assert all(n > 0 for n in advanced)


# ---------------------------------------------------------------- the command line


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """The gateway command line, with only the import commands registered."""

    register(app)
    return app


def test_cli_prints_the_json_object_of_design_section_7(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    folder = write_folder(tmp_path / "f", district_files())

    first = CliRunner().invoke(
        _cli(), ["import", "oneroster", str(folder), "--source-name", "Springfield", "--json"]
    )
    again = CliRunner().invoke(
        _cli(), ["import", "oneroster", str(folder), "--source-name", "Springfield", "--json"]
    )

    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body == {
        "source": {"id": body["source"]["id"], "name": "Springfield"},
        "counts": {
            "districts": 1,
            "schools": 2,
            "sessions": 2,
            "courses": 1,
            "classes": 2,
            "sections": 0,
            "people": 4,
            "enrollments": 4,
            "agents": 1,
        },
        "warnings": [],
    }
    uuid.UUID(body["source"]["id"])
    assert "Created source 'Springfield'" in first.stderr
    assert json.loads(again.stdout) == body
    assert "already existed; the folder was imported into it" in again.stderr


def test_cli_reports_a_bad_folder_with_exit_code_2(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    files = edited(district_files(), "enrollments", 2, endDate="soon")
    folder = write_folder(tmp_path / "f", files)

    result = CliRunner().invoke(
        _cli(), ["import", "oneroster", str(folder), "--source-name", "S", "--json"]
    )

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: enrollments.csv, line 4, column 'endDate': 'soon' is not a date "
        "(expected YYYY-MM-DD)\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------- import → GraphQL


def test_imported_people_are_served_by_the_graph_api(
    db_url: str, tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    result = import_folder(db_url, write_folder(tmp_path / "f", district_files()))

    async def grant(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            created = await create_integration(
                conn,
                source_id=result.source_id,
                scope=Scope.ALL,
                permissions=["people:read", "demographics:read", "organizations:read"],
            )
        return created.token

    token = run_db(db_url, grant)
    lisa = stable_id(result.source_id, "person", "U1")
    with live_server() as server, server.client(token) as http:
        people = http.post(
            "/graphql", json={"query": "{ people(first: 5) { nodes { id firstName } } }"}
        )
        person = http.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { person(id: $id) { displayName roles "
                "demographics { birthday gender races countryOfBirth } "
                "schools { nodes { name } } } }",
                "variables": {"id": lisa},
            },
        )

    assert people.status_code == 200
    nodes = people.json()["data"]["people"]["nodes"]
    assert sorted(n["firstName"] for n in nodes) == ["Bart", "Edna", "Lisa", "Marge"]
    assert lisa in {n["id"] for n in nodes}
    assert person.json() == {
        "data": {
            "person": {
                "displayName": "Lisa Simpson",
                "roles": ["STUDENT"],
                "demographics": {
                    "birthday": "2010-05-09",
                    "gender": "female",
                    "races": ["Asian", "White", "DemographicRaceTwoorMoreRaces"],
                    "countryOfBirth": "US",
                },
                "schools": {"nodes": [{"name": "Springfield High"}]},
            }
        }
    }


def _parent_of_an_export(path: Path) -> Path:
    write_folder(path / "export-2026-01-20", district_files())
    return path


def _unrelated_files(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("not a roster\n")
    (path / "grades.csv").write_text("student,grade\nA,1\n")
    return path


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda path: path.mkdir() or path, "it is empty"),
        (_parent_of_an_export, "it holds export-2026-01-20/"),
        (_unrelated_files, "it holds grades.csv, notes.txt"),
    ],
    ids=["empty", "parent-of-an-export", "unrelated-files"],
)
def test_a_folder_without_any_oneroster_file_is_an_error_and_creates_nothing(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[Path], Path],
    found: str,
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    folder = make(tmp_path / "typo")
    before = dump(db_url)

    result = CliRunner().invoke(
        _cli(), ["import", "oneroster", str(folder), "--source-name", "Typo", "--json"]
    )

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {folder} holds no OneRoster file ({found}): expected manifest.csv or at least "
        "one of orgs.csv, academicSessions.csv, courses.csv, classes.csv, users.csv, roles.csv, "
        "demographics.csv, enrollments.csv\n"
    )
    assert dump(db_url) == before


def test_a_delta_users_csv_keeps_the_school_of_a_role_in_a_department(
    any_db_url: str, tmp_path: Path
) -> None:
    # The teacher's 1.2 role rows are in departments M1 (of S1) and M3 (of S2); a delta that
    # lists only the teacher's users.csv row (a new email) knows no department, and the schools
    # that came through them were dropped silently: an integration scoped to S1 or S2 lost the
    # teacher.
    files = district_files()
    files["orgs"] = [*files["orgs"], _department("M1", "S1"), _department("M3", "S2")]
    for role in files["roles"]:
        if role["userSourcedId"] == "TE":
            role["orgSourcedId"] = {"S1": "M1", "S2": "M3"}[role["orgSourcedId"]]
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", files))
    source = first.source_id
    both = {stable_id(source, "school", s) for s in ("S1", "S2")}
    assert _teacher_schools(any_db_url, source) == both
    edna = _teacher_with_new_email(files)
    import_folder(any_db_url, write_folder(tmp_path / "delta", {"users": [edna]}, mode="delta"))

    teacher = stable_id(source, "person", "TE")
    assert rows(any_db_url, models.Person, id=teacher)[0]["email"] == "edna@example.org"
    assert _teacher_schools(any_db_url, source) == both


def _nested_departments() -> Files:
    """`district_files` with departments M1 (of S1), M2 (of M1) and M3 (of S2): the teacher's
    role rows are in M2 and M3, Bart's in M1."""
    files = district_files()
    departments = [_department("M1", "S1"), _department("M2", "M1"), _department("M3", "S2")]
    files["orgs"] = [*files["orgs"], *departments]
    moved = {("TE", "S1"): "M2", ("TE", "S2"): "M3", ("U2", "S1"): "M1"}
    for role in files["roles"]:
        role["orgSourcedId"] = moved.get((role["userSourcedId"], role["orgSourcedId"]), "S1")
    return files


def _org_row(sourced_id: str, kind: str, parent: str, status: str = "active") -> dict[str, str]:
    return {**_department(sourced_id, parent), "type": kind, "status": status}


_ORG_CHANGES: dict[str, tuple[str, list[dict[str, str]], dict[str, set[str]]]] = {
    # (the orgs.csv's mode, its rows, the people's schools after it)
    "move a parent department": (
        "delta",
        [_org_row("M1", "department", "S2")],
        {"TE": {"S2"}, "U2": {"S2"}},
    ),
    "make a department a school": (
        "delta",
        [_org_row("M1", "school", "D1")],
        {"TE": {"M1", "S2"}, "U2": {"M1"}},
    ),
    "make a department a local org": (
        "delta",
        [_org_row("M3", "local", "D1")],
        {"TE": {"S1"}, "U2": {"S1"}},
    ),
    "delete a school": (
        "delta",
        [
            {**district_files()["orgs"][2], "status": "tobedeleted"},
            _org_row("M3", "department", "S2", status="tobedeleted"),
        ],
        {"TE": {"S1"}, "U2": {"S1"}},
    ),
    "move a department in a bulk file": (
        "bulk",
        [
            *(o for o in district_files()["orgs"]),
            _org_row("M1", "department", "S2"),
            _org_row("M2", "department", "M1"),
            _org_row("M3", "department", "S2"),
        ],
        {"TE": {"S2"}, "U2": {"S2"}},
    ),
    "leave a department out of a bulk file": (
        "bulk",
        [
            *(o for o in district_files()["orgs"]),
            _org_row("M1", "department", "S1"),
            _org_row("M2", "department", "M1"),
        ],
        {"TE": {"S1"}, "U2": {"S1"}},
    ),
}


@pytest.mark.parametrize("change", list(_ORG_CHANGES))
def test_an_orgs_csv_that_changes_departments_moves_the_people_below_them(
    any_db_url: str, tmp_path: Path, change: str
) -> None:
    # Found by a review, each left the people where they were: a moved department's
    # sub-departments, a department that became a school or another org, and (users.csv and
    # roles.csv not in the folder) a bulk orgs.csv that moves or leaves out a department.
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", _nested_departments()))
    source = first.source_id

    def schools(user: str) -> set[str]:
        person = stable_id(source, "person", user)
        return {r["school_id"] for r in rows(any_db_url, models.PersonSchool, person_id=person)}

    assert (schools("TE"), schools("U2")) == (
        {stable_id(source, "school", s) for s in ("S1", "S2")},
        {stable_id(source, "school", "S1")},
    )
    before = {
        user: (schools(user), _updated_date(any_db_url, source, user)) for user in ("TE", "U2")
    }
    mode, orgs, expected = _ORG_CHANGES[change]
    result = import_folder(any_db_url, write_folder(tmp_path / "orgs", {"orgs": orgs}, mode=mode))

    moved = set()
    for user, names in expected.items():
        assert schools(user) == {stable_id(source, "school", s) for s in names}, user
        if schools(user) != before[user][0]:
            moved.add(user)
            # Person.schools changed: an application syncing by updatedAfter must see the person
            assert _updated_date(any_db_url, source, user) > before[user][1], user
        else:
            assert _updated_date(any_db_url, source, user) == before[user][1], user
    assert result.updated.get("people", 0) == len(moved)


def _updated_date(db_url: str, source_id: str, user: str) -> Any:
    [person] = rows(db_url, models.Person, id=stable_id(source_id, "person", user))
    return person["updated_date"]


@pytest.mark.parametrize(
    ("orgs", "message"),
    [
        (
            [_org_row("M1", "department", "S1", status="tobedeleted")],
            "orgs.csv, line 2, column 'status': deleting org 'M1' leaves department 'M2' (of an "
            "earlier orgs.csv) without a parent; delete or move 'M2' in this file too, or import "
            "a bulk orgs.csv",
        ),
        (
            [_org_row("M1", "department", "M2")],
            "orgs.csv, line 2, column 'parentSourcedId': department 'M1' is its own ancestor "
            "(M1 → M2 → M1); a department's parent must lead to a school or the district",
        ),
    ],
)
def test_a_delta_orgs_csv_that_would_leave_departments_without_a_school_is_an_error(
    any_db_url: str, tmp_path: Path, orgs: list[dict[str, str]], message: str
) -> None:
    # Both were taken (found by a review): the stored sub-department M2 kept a parent that was
    # no more, and a loop of departments gave their people no school, silently.
    import_folder(any_db_url, write_folder(tmp_path / "bulk", _nested_departments()))
    before = dump(any_db_url)
    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, write_folder(tmp_path / "delta", {"orgs": orgs}, mode="delta"))

    assert str(raised.value) == message
    assert dump(any_db_url) == before


def _teacher_with_new_email(files: Files) -> dict[str, str]:
    """The teacher's users.csv row of `files` with a new email, for a delta file."""
    teacher = next(u for u in files["users"] if u["sourcedId"] == "TE")
    return {**teacher, "status": "active", "email": "edna@example.org"}


def _forget_orgs(db_url: str) -> None:
    """What a database imported by a version that did not remember orgs holds of them."""

    async def forget(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(models.OneRosterOrg.__table__.delete())  # type: ignore[attr-defined]

    run_db(db_url, forget)


def test_a_delta_naming_a_department_an_earlier_version_did_not_remember_is_an_error(
    any_db_url: str, tmp_path: Path
) -> None:
    # The teacher's role rows are in departments M2 and M3, which this database does not know:
    # a delta listing the teacher gave them no school, silently (found by a review). A bulk
    # orgs.csv alone makes them known.
    files = _nested_departments()
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", files))
    source = first.source_id
    _forget_orgs(any_db_url)
    before = dump(any_db_url)
    edna = _teacher_with_new_email(files)
    delta = write_folder(tmp_path / "delta", {"users": [edna]}, mode="delta")
    with pytest.raises(OneRosterError) as raised:
        import_folder(any_db_url, delta)

    assert str(raised.value) == (
        "users.csv, line 2, column 'sourcedId': user 'TE' is in org 'M2' (by an earlier "
        "import), which this import cannot resolve: the source was imported by a version that "
        "did not remember its departments; import a bulk orgs.csv (alone will do), then this "
        "folder"
    )
    assert dump(any_db_url) == before

    import_folder(any_db_url, write_folder(tmp_path / "orgs", {"orgs": files["orgs"]}))
    import_folder(any_db_url, delta)
    assert _teacher_schools(any_db_url, source) == {
        stable_id(source, "school", s) for s in ("S1", "S2")
    }


def test_a_delta_listing_a_person_of_a_deleted_department_leaves_its_school_out(
    any_db_url: str, tmp_path: Path
) -> None:
    # Where orgs are remembered, an org nowhere is one deleted since: not an error.
    files = _nested_departments()
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", files))
    source = first.source_id
    gone = _org_row("M3", "department", "S2", status="tobedeleted")
    import_folder(any_db_url, write_folder(tmp_path / "d1", {"orgs": [gone]}, mode="delta"))
    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", "S1")}

    edna = _teacher_with_new_email(files)
    import_folder(any_db_url, write_folder(tmp_path / "d2", {"users": [edna]}, mode="delta"))
    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", "S1")}
    teacher = stable_id(source, "person", "TE")
    assert rows(any_db_url, models.Person, id=teacher)[0]["email"] == "edna@example.org"


def test_a_person_still_in_a_department_deleted_earlier_does_not_stop_another_change(
    any_db_url: str, tmp_path: Path
) -> None:
    # The teacher's role row in M3 outlives M3's deletion: moving M1 was refused, naming M3 as
    # a department the delta did not list (found by a review).
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", _nested_departments()))
    source = first.source_id
    gone = _org_row("M3", "department", "S2", status="tobedeleted")
    import_folder(any_db_url, write_folder(tmp_path / "d1", {"orgs": [gone]}, mode="delta"))
    moved = _org_row("M1", "department", "S2")
    import_folder(any_db_url, write_folder(tmp_path / "d2", {"orgs": [moved]}, mode="delta"))

    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", "S2")}


def test_a_department_ten_deep_stands_for_its_school(any_db_url: str, tmp_path: Path) -> None:
    # Parents were followed eight deep: the people of a ninth level had no school, silently
    # (found by a review).
    files = district_files()
    chain = [_department("L1", "S1"), *(_department(f"L{i}", f"L{i - 1}") for i in range(2, 11))]
    files["orgs"] = [*files["orgs"], *chain]
    for role in files["roles"]:
        if role["userSourcedId"] == "TE":
            role["orgSourcedId"] = "L10"
    first = import_folder(any_db_url, write_folder(tmp_path / "bulk", files))

    source = first.source_id
    assert _teacher_schools(any_db_url, source) == {stable_id(source, "school", "S1")}
