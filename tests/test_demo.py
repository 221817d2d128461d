"""The demo data (gateway/demo/): shape, determinism, refusal, CLI output and token rotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from gateway import demo, models
from gateway.access.authentication import load_grant
from gateway.access.grant import Grant, IntegrationStatus, Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.errors import ValidationFailed
from tests.conftest import run_db
from tests.oracle import property_leaks

REPO = Path(__file__).resolve().parents[1]
PEOPLE = 200
GRAPH = (
    models.District,
    models.School,
    models.Session,
    models.Course,
    models.Class,
    models.ClassSession,
    models.Section,
    models.Person,
    models.PersonSchool,
    models.Enrollment,
    models.Agent,
)
PRIVATE = {
    "emails:read",
    "phones:read",
    "demographics:read",
    "addresses:read",
    "identifiers:read",
    "properties:read",
}
ROLES = {
    "STUDENT",
    "DISTRICT_ADMINISTRATOR",
    "ADMINISTRATOR",
    "TEACHER",
    "STAFF",
    "OBSERVER",
    "PARENT",
    "GUARDIAN",
    "TA",
    "AIDE",
    "DESIGNER",
    "MEMBER",
}


def has_role(people: sa.Table, role: str) -> sa.ColumnElement[bool]:
    # Compare the stored `,A,B,` text itself: binding the pattern as a TagList would encode it.
    return sa.type_coerce(people.c.roles, sa.Text).like(f"%,{role},%")


def load(url: str, people: int = PEOPLE) -> demo.DemoResult:
    return run_db(url, lambda engine: demo.load_demo(engine, people=people))


def query(url: str, statement: sa.Executable) -> list[Any]:
    async def body(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as conn:
            return list(await conn.execute(statement))

    return run_db(url, body)


def scalar(url: str, statement: sa.Executable) -> Any:
    return query(url, statement)[0][0]


def every_count(url: str) -> dict[str, int]:
    """Rows in every table of the database, not only the graph."""
    names = sorted(SQLModel.metadata.tables)
    counts = query(
        url,
        sa.select(
            *(
                sa.select(sa.func.count())
                .select_from(SQLModel.metadata.tables[n])
                .scalar_subquery()
                for n in names
            )
        ),
    )[0]
    return dict(zip(names, counts, strict=True))


def grants(url: str, tokens: Sequence[str]) -> list[Grant | None]:
    async def body(engine: AsyncEngine) -> list[Grant | None]:
        async with engine.connect() as conn:
            return [await load_grant(conn, token) for token in tokens]

    return run_db(url, body)


def run_cli(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---------------------------------------------------------------- the data


def test_same_people_gives_the_same_rows(tmp_path: Path) -> None:
    first, second = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    load(first)
    load(second)

    def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
        snapshot = {}
        for model in GRAPH:
            t = models.table_of(model)
            columns = [c for c in t.columns if c.name != "source_id"]
            ordered = sa.select(*columns).order_by(*t.primary_key.columns)
            snapshot[t.name] = [tuple(row) for row in query(url, ordered)]
        return snapshot

    a, b = rows(first), rows(second)
    assert {name: len(r) for name, r in a.items()} == {name: len(r) for name, r in b.items()}
    assert a == b
    assert a["people"][0] != a["people"][1]


def test_counts_grow_with_people(tmp_path: Path) -> None:
    small = load(f"sqlite+aiosqlite:///{tmp_path / 'small.db'}", 200)
    large = load(f"sqlite+aiosqlite:///{tmp_path / 'large.db'}", 1000)

    for result, people in ((small, 200), (large, 1000)):
        counts = result.counts
        assert counts["people"] == people
        assert (counts["districts"], counts["schools"], counts["sessions"]) == (1, 4, 25)
        assert counts["classes"] >= counts["courses"] > 0
        assert counts["class_sessions"] >= counts["classes"]
        assert counts["sections"] > 0
        assert counts["agents"] > 0
        assert people * 0.8 <= counts["person_schools"] <= people * 1.05
    assert large.counts["enrollments"] / small.counts["enrollments"] == pytest.approx(5, rel=0.15)
    assert large.counts["classes"] > small.counts["classes"]


def test_students_are_most_people_in_five_to_seven_classes(db_url: str) -> None:
    load(db_url, 2000)
    p, e = models.table_of(models.Person), models.table_of(models.Enrollment)
    students = scalar(db_url, sa.select(sa.func.count()).where(has_role(p, "STUDENT")))
    assert 0.82 <= students / 2000 <= 0.88
    per_student = (
        sa.select(sa.func.count())
        .select_from(e.join(p, p.c.id == e.c.person_id))
        .where(e.c.role == "STUDENT")
        .group_by(e.c.person_id)
        .subquery()
    )
    fewest, most, average = query(
        db_url,
        sa.select(
            sa.func.min(per_student.c[0]),
            sa.func.max(per_student.c[0]),
            sa.func.avg(per_student.c[0]),
        ),
    )[0]
    assert fewest >= 5
    assert most <= 8  # 5-7 classes at home, plus one at a second school for a few
    assert 5.5 <= average <= 6.6
    class_sizes = sa.select(sa.func.count()).where(e.c.role == "STUDENT").group_by(e.c.class_id)
    assert max(row[0] for row in query(db_url, class_sizes)) <= 32


def test_every_role_is_present(db_url: str) -> None:
    load(db_url, demo.MIN_PEOPLE)
    found: set[str] = set()
    for (roles,) in query(db_url, sa.select(models.table_of(models.Person).c.roles)):
        found.update(roles)
    assert found == ROLES


def test_guardians_have_agents_and_no_schools_or_enrollments(db_url: str) -> None:
    load(db_url)
    p, a = models.table_of(models.Person), models.table_of(models.Agent)
    ps, e = models.table_of(models.PersonSchool), models.table_of(models.Enrollment)
    contacts = sa.or_(has_role(p, "PARENT"), has_role(p, "GUARDIAN"))
    guardians = {row[0] for row in query(db_url, sa.select(p.c.id).where(contacts))}
    assert len(guardians) >= 2
    observed = {row[0] for row in query(db_url, sa.select(a.c.observer_id))}
    assert guardians <= observed
    assert not query(db_url, sa.select(ps.c.person_id).where(ps.c.person_id.in_(guardians)))
    assert not query(db_url, sa.select(e.c.person_id).where(e.c.person_id.in_(guardians)))
    relationships = {
        row[0]
        for row in query(
            db_url,
            sa.select(a.c.relationship).join(p, p.c.id == a.c.observer_id).where(contacts),
        )
    }
    assert relationships == {"PARENT", "GUARDIAN"}
    all_relationships = {row[0] for row in query(db_url, sa.select(a.c.relationship))}
    assert {"AIDE", "OTHER"} <= all_relationships
    targets = sa.select(p.c.roles).join(a, a.c.target_id == p.c.id).distinct()
    assert {tuple(row[0]) for row in query(db_url, targets)} == {("STUDENT",)}


def test_staff_have_a_school_and_no_enrollments(db_url: str) -> None:
    load(db_url)
    p, ps, e = (
        models.table_of(models.Person),
        models.table_of(models.PersonSchool),
        models.table_of(models.Enrollment),
    )
    staff = {row[0] for row in query(db_url, sa.select(p.c.id).where(has_role(p, "STAFF")))}
    assert staff
    assert not query(db_url, sa.select(e.c.id).where(e.c.person_id.in_(staff)))
    members = {row[0] for row in query(db_url, sa.select(ps.c.person_id))}
    assert staff <= members


def test_organisations_cover_every_shape(db_url: str) -> None:
    load(db_url)
    c, co = models.table_of(models.Class), models.table_of(models.Course)
    s, cs, sec = (
        models.table_of(models.Session),
        models.table_of(models.ClassSession),
        models.table_of(models.Section),
    )
    assert scalar(db_url, sa.select(sa.func.count()).where(c.c.course_id.is_(None))) > 0
    assert scalar(db_url, sa.select(sa.func.count()).where(co.c.school_id.is_(None))) >= 3
    assert scalar(db_url, sa.select(sa.func.count()).where(co.c.session_id.is_not(None))) > 0
    per_course = query(db_url, sa.select(sa.func.count()).group_by(c.c.course_id).where(
        c.c.course_id.is_not(None)
    ))  # fmt: skip
    assert {row[0] for row in per_course} <= {1, 2, 3}
    sessions = query(db_url, sa.select(s.c.type, s.c.state, s.c.school_id))
    assert {row.type for row in sessions} == {"SCHOOL_YEAR", "SEMESTER", "TERM", "GRADING_PERIOD"}
    assert {row.state for row in sessions} == {"ACTIVE", "COMPLETED", "UPCOMING"}
    assert [row.type for row in sessions if row.school_id is None] == ["SCHOOL_YEAR"]
    without_term = sa.select(sa.func.count()).where(c.c.id.not_in(sa.select(cs.c.class_id)))
    assert scalar(db_url, without_term) == 0
    assert scalar(db_url, sa.select(sa.func.count(sa.distinct(sec.c.class_id)))) > 0
    grades = {
        school.name: school.grade_levels
        for school in query(db_url, sa.select(models.table_of(models.School)))
    }
    assert grades == {
        "Maple Grove Elementary School": ["KG", "01", "02", "03", "04", "05"],
        "Riverside Elementary School": ["KG", "01", "02", "03", "04", "05"],
        "Lincoln Middle School": ["06", "07", "08"],
        "Jefferson High School": ["09", "10", "11", "12"],
    }


def test_enrollments_cover_every_shape(db_url: str) -> None:
    load(db_url)
    e = models.table_of(models.Enrollment)
    rows = query(db_url, sa.select(e.c.role, e.c.primary, e.c.state, e.c.section_id))
    assert {r.state for r in rows} >= {"ACTIVE", "DROPPED", "COMPLETED"}
    assert {r.role for r in rows} == {"STUDENT", "TEACHER", "TA", "DESIGNER"}
    assert {r.primary for r in rows if r.role == "TEACHER"} == {True}
    assert {r.primary for r in rows if r.role != "TEACHER"} == {False}
    assert any(r.section_id for r in rows if r.role == "STUDENT")
    teachers = sa.select(sa.func.count(sa.distinct(e.c.class_id))).where(e.c.role == "TEACHER")
    assert scalar(db_url, teachers) == scalar(
        db_url, sa.select(sa.func.count()).select_from(models.table_of(models.Class))
    )


def test_people_in_two_schools(db_url: str) -> None:
    load(db_url)
    ps, p = models.table_of(models.PersonSchool), models.table_of(models.Person)
    two = (
        sa.select(p.c.roles)
        .join(ps, ps.c.person_id == p.c.id)
        .group_by(p.c.id, p.c.roles)
        .having(sa.func.count() == 2)
    )
    assert {tuple(row[0]) for row in query(db_url, two)} == {("STUDENT",), ("TEACHER",)}


def test_json_columns_are_filled_and_camel_case(db_url: str) -> None:
    load(db_url)
    person = query(
        db_url,
        sa.select(models.table_of(models.Person)).where(
            has_role(models.table_of(models.Person), "STUDENT")
        ),
    )[0]
    assert set(person.address) == {
        "street",
        "unit",
        "city",
        "state",
        "postalCode",
        "country",
        "phone",
        "latitude",
        "longitude",
    }
    assert {
        "birthday",
        "gender",
        "races",
        "hispanicOrLatinoEthnicity",
        "englishLanguageLearner",
        "individualizedEducationPlan",
        "economicallyDisadvantaged",
        "countryOfBirth",
        "stateOfBirth",
        "cityOfBirth",
    } <= set(person.demographics)
    assert person.graduation_year
    assert person.grade_levels
    assert person.email
    assert person.phone
    assert {i["type"] for i in person.identifiers} >= {"sis_id", "state_id"}
    never_filled = []
    for model in GRAPH:
        t = models.table_of(model)
        # count(column) counts the rows where the column is not null.
        filled = query(db_url, sa.select(*(sa.func.count(c) for c in t.columns)))[0]
        never_filled += [
            f"{t.name}.{c.name}" for c, n in zip(t.columns, filled, strict=True) if not n
        ]
    assert never_filled == []


def test_people_outside_the_range_are_refused(db_url: str) -> None:
    for people in (0, demo.MIN_PEOPLE - 1, demo.MAX_PEOPLE + 1):
        with pytest.raises(ValidationFailed, match="out of range"):
            load(db_url, people)
    assert every_count(db_url)["sources"] == 0


def test_a_second_load_is_refused_and_changes_nothing(db_url: str) -> None:
    first = load(db_url)
    before = every_count(db_url)
    with pytest.raises(ValidationFailed) as refused:
        load(db_url)
    message = str(refused.value)
    assert first.source_id in message
    assert "already holds the demo source" in message
    assert "GATEWAY_DATABASE_URL" in message
    assert "`gateway serve --demo --new-demo-tokens`" in message
    assert every_count(db_url) == before


# ---------------------------------------------------------------- the integrations


def check_grants(url: str, integrations: list[dict[str, Any]]) -> None:
    """Every token resolves to its integration's scope, status, permissions and targets."""
    found = grants(url, [i["token"] for i in integrations])
    by_name: dict[str, Grant | None] = dict(
        zip((str(i["name"]) for i in integrations), found, strict=True)
    )
    for integration, grant in zip(integrations, found, strict=True):
        assert grant is not None, integration["name"]
        assert grant.integration_id == integration["id"]
        assert grant.scope.value == integration["scope"]
        assert grant.status.value == integration["status"]
        assert grant.permissions == frozenset(integration["permissions"])
        assert grant.targets.all() == frozenset(integration["targets"])

    def expect(name: str, scope: Scope, status: IntegrationStatus, permissions: set[str]) -> Grant:
        grant = by_name[name]
        assert grant is not None
        assert (grant.scope, grant.status, set(grant.permissions)) == (scope, status, permissions)
        return grant

    every = set(ALL_SLUGS)
    active, inactive = IntegrationStatus.ACTIVE, IntegrationStatus.INACTIVE
    assert not expect("all", Scope.ALL, active, every).targets.all()
    schools = expect("selected-schools", Scope.SELECTED, active, every).targets
    assert len(schools.schools) == len(schools.all()) == 1
    courses = expect("selected-courses", Scope.SELECTED, active, every).targets
    assert len(courses.courses) == len(courses.all()) == 2
    classes = expect("selected-classes", Scope.SELECTED, active, every).targets
    assert len(classes.classes) == len(classes.all()) == 3
    assert not expect("partial-permissions", Scope.ALL, active, every - PRIVATE).targets.all()
    expect("inactive", Scope.ALL, inactive, every)
    expect("disabled", Scope.ALL, IntegrationStatus.DISABLED, every)
    expect("scheduled", Scope.ALL, inactive, every)

    co, c = models.table_of(models.Course), models.table_of(models.Class)
    course_schools = query(url, sa.select(co.c.school_id).where(co.c.id.in_(courses.courses)))
    assert len({row[0] for row in course_schools}) == 2
    picked = query(url, sa.select(c.c.school_id, c.c.course_id).where(c.c.id.in_(classes.classes)))
    assert len({row.school_id for row in picked}) >= 2
    assert any(row.course_id is None for row in picked)
    i = models.table_of(models.Integration)
    start = scalar(url, sa.select(i.c.start_date).where(i.c.name == "scheduled"))
    assert start - datetime.now(UTC) > timedelta(days=360)


def test_cli_demo_json_prints_the_source_and_eight_working_tokens(
    db_url: str, tmp_path: Path
) -> None:
    done = run_cli(db_url, tmp_path, "demo", "--people", str(PEOPLE), "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert set(printed) == {"source", "integrations"}
    assert set(printed["source"]) == {"id", "name"}
    assert printed["source"]["name"] == "Demo District"
    assert [i["name"] for i in printed["integrations"]] == list(demo.DEMO_INTEGRATIONS)
    for integration in printed["integrations"]:
        assert set(integration) == {
            "name",
            "id",
            "status",
            "scope",
            "targets",
            "permissions",
            "token",
        }
        assert len(integration["token"]) >= 43
    assert [i["status"] for i in printed["integrations"]] == [
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "ACTIVE",
        "INACTIVE",
        "DISABLED",
        "INACTIVE",
    ]
    check_grants(db_url, printed["integrations"])
    sources = models.table_of(models.Source)
    assert [tuple(r) for r in query(db_url, sa.select(sources.c.id, sources.c.name))] == [
        (printed["source"]["id"], "Demo District")
    ]


def test_cli_demo_speaks_to_stderr_and_refuses_a_second_run(db_url: str, tmp_path: Path) -> None:
    done = run_cli(db_url, tmp_path, "demo", "--people", "20")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "Loaded the demo source" in done.stderr
    assert "selected-courses" in done.stderr
    again = run_cli(db_url, tmp_path, "demo", "--people", "20", "--json")
    assert again.returncode == 2
    assert again.stdout == ""
    assert again.stderr.startswith("error: this database already holds the demo source")
    assert "Traceback" not in again.stderr


def test_ensure_demo_loads_a_missing_demo(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=True))
    assert result.counts["people"] == demo.DEFAULT_PEOPLE
    check_grants(db_url, result.as_json()["integrations"])
    out, err = capsys.readouterr()
    assert out == ""
    for integration in result.integrations:
        assert integration.name in err
        assert integration.token in err
    assert "curl -s http://127.0.0.1:8000/graphql" in err


def test_ensure_demo_again_keeps_the_integrations_their_ids_and_tokens(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = load(db_url)
    before = every_count(db_url)
    again = run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=True))

    assert every_count(db_url) == before  # not even an audit entry
    check_grants(db_url, first.as_json()["integrations"])
    assert [(i.name, i.id, i.token) for i in again.integrations] == [
        (i.name, i.id, None) for i in first.integrations
    ]
    assert (again.source_id, again.counts) == (first.source_id, first.counts)
    out, err = capsys.readouterr()
    assert out == ""
    assert all(i.token not in err for i in first.integrations)
    assert "kept" in err
    assert "gateway serve --demo --new-demo-tokens" in " ".join(err.split())


def test_ensure_demo_recreates_only_a_demo_integration_that_is_gone(db_url: str) -> None:
    from gateway.admin.service import destroy_integration

    first = load(db_url)
    gone = next(i for i in first.integrations if i.name == "selected-courses")

    async def destroy(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await destroy_integration(conn, gone.id)

    run_db(db_url, destroy)
    again = run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=False))

    assert [i.name for i in again.integrations] == list(demo.DEMO_INTEGRATIONS)
    remade = next(i for i in again.integrations if i.name == "selected-courses")
    assert remade.id != gone.id
    assert remade.token is not None
    (grant,) = grants(db_url, [remade.token])
    assert grant is not None
    assert (grant.integration_id, grant.targets.courses) == (remade.id, frozenset(gone.targets))
    kept = [i for i in first.integrations if i.name != "selected-courses"]
    assert None not in grants(db_url, [i.token for i in kept])
    assert [(i.id, i.token) for i in again.integrations if i.name != "selected-courses"] == [
        (i.id, None) for i in kept
    ]


def test_ensure_demo_with_new_tokens_gives_new_tokens_and_revokes_the_old(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = load(db_url)
    graph_before = {k: v for k, v in every_count(db_url).items() if k in first.counts}
    second = run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=False, new_tokens=True))
    third = run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=False, new_tokens=True))
    assert capsys.readouterr() == ("", "")

    old = [i.token for i in first.integrations + second.integrations]
    assert grants(db_url, old) == [None] * len(old)
    assert (
        len({i.token for i in first.integrations + second.integrations + third.integrations}) == 24
    )
    check_grants(db_url, third.as_json()["integrations"])
    assert third.source_id == first.source_id
    assert third.counts == first.counts
    counts = every_count(db_url)
    assert {k: v for k, v in counts.items() if k in first.counts} == graph_before
    assert counts["integrations"] == 8
    assert counts["integration_permissions"] == sum(len(i.permissions) for i in third.integrations)
    assert counts["integration_targets"] == 6
    log = models.table_of(models.AuditEntry)
    actions = query(db_url, sa.select(log.c.action, sa.func.count()).group_by(log.c.action))
    assert dict(actions) == {
        "source.create": 1,
        "integration.create": 24,
        "integration.destroy": 16,
    }


def test_ensure_demo_keeps_other_integrations_of_the_demo_source(db_url: str) -> None:
    from gateway.admin.service import create_integration

    first = load(db_url)

    async def add(engine: AsyncEngine) -> str:
        async with engine.begin() as conn:
            made = await create_integration(
                conn, source_id=first.source_id, scope=Scope.ALL, permissions=["people:read"]
            )
        return made.token

    token = run_db(db_url, add)
    run_db(db_url, lambda engine: demo.ensure_demo(engine, echo=False, new_tokens=True))
    assert grants(db_url, [token])[0] is not None
    assert every_count(db_url)["integrations"] == 9


def test_every_engine_gets_the_same_demo(any_db_url: str, tmp_path: Path) -> None:
    reference_url = f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}"
    reference = load(reference_url)
    loaded = load(any_db_url)
    assert loaded.counts == reference.counts
    people = models.table_of(models.Person)
    columns = [c for c in people.columns if c.name != "source_id"]
    ordered = sa.select(*columns).order_by(people.c.id)
    assert [tuple(r) for r in query(any_db_url, ordered)] == [
        tuple(r) for r in query(reference_url, ordered)
    ]
    check_grants(any_db_url, loaded.as_json()["integrations"])
    with pytest.raises(ValidationFailed, match="already holds the demo source"):
        load(any_db_url)
    again = run_db(any_db_url, lambda engine: demo.ensure_demo(engine, echo=False, new_tokens=True))
    assert grants(any_db_url, [i.token for i in loaded.integrations]) == [None] * 8
    check_grants(any_db_url, again.as_json()["integrations"])


def test_sis_ids_are_unique_within_each_type(db_url: str) -> None:
    load(db_url)
    for model in GRAPH:
        t = models.table_of(model)
        if "identifiers" not in t.c:
            continue
        sis_ids = [
            identifier["value"]
            for (identifiers,) in query(db_url, sa.select(t.c.identifiers))
            for identifier in identifiers
            if identifier["type"] == "sis_id"
        ]
        assert sis_ids, t.name
        assert len(sis_ids) == len(set(sis_ids)), t.name


def test_properties_hold_no_references_identifiers_or_contacts(db_url: str) -> None:
    load(db_url)
    leaks = {}
    for model in GRAPH:
        t = models.table_of(model)
        if "properties" in t.c:
            found = query(db_url, sa.select(t.c.properties))
            leaks[t.name] = sorted({k for (p,) in found for k in property_leaks(p)})
    assert leaks == {name: [] for name in leaks}


def test_new_demo_tokens_needs_demo(db_url: str, tmp_path: Path) -> None:
    refused = run_cli(db_url, tmp_path, "serve", "--new-demo-tokens")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        "error: --new-demo-tokens recreates the demo integrations of `--demo`; "
        "pass both: gateway serve --demo --new-demo-tokens\n"
    )
