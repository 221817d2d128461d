"""The stored scope views (gateway/access/views.py) always equal the closure predicates.

A property test drives random sequences of administrative changes (targets of every kind,
ALL <-> SELECTED, destroy) and OneRoster imports (a generated bulk folder, then changed copies:
students move school, a class changes course, guardian links removed, rows dropped from a bulk
file, `tobedeleted` rows in a delta) through the real service and importer, and after every step
compares each integration's stored view with the closure computed by `gateway.access.scope`
directly, type by type, on both engines.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.access import views
from gateway.access.authentication import load_grant_by_id
from gateway.access.grant import Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin import service
from gateway.db import write_transaction
from gateway.errors import ValidationFailed
from gateway.importers.oneroster import import_oneroster
from tests.conftest import ENGINES, fresh_database, run_db
from tests.reporting import SUMMARY
from tests.test_importers_oneroster import write_folder

EXAMPLES = 25
STEPS = 8
TODAY = date(2025, 10, 1)
META = {"status": "", "dateLastModified": "2025-09-01T00:00:00Z"}

Files = dict[str, list[dict[str, str]]]


# ---------------------------------------------------------------- a OneRoster district


@dataclass
class District:
    """A OneRoster 1.1 bulk folder as rows, changed step by step like a real SIS export."""

    rng: random.Random
    files: Files = field(default_factory=dict)

    @classmethod
    def generate(cls, seed: int) -> District:
        rng = random.Random(seed)
        district = cls(rng)
        schools = [f"S{n}" for n in range(1, 4)]
        courses = [f"C{n}" for n in range(1, 5)]
        classes = [f"K{n}" for n in range(1, 9)]
        students = [f"U{n}" for n in range(1, 13)]
        teachers = [f"TE{n}" for n in range(1, 4)]
        guardians = [f"G{n}" for n in range(1, 5)]
        org = {"identifier": "", "parentSourcedId": "D1"}
        district.files = {
            "orgs": [{"sourcedId": "D1", **META, "name": "D", "type": "district", **org}]
            + [
                {"sourcedId": s, **META, "name": f"School {s}", "type": "school", **org}
                for s in schools
            ],
            "academicSessions": [
                {
                    "sourcedId": "Y1",
                    **META,
                    "title": "2025",
                    "type": "schoolYear",
                    "startDate": "2025-08-15",
                    "endDate": "2026-06-15",
                    "parentSourcedId": "",
                    "schoolYear": "2026",
                },
                {
                    "sourcedId": "T1",
                    **META,
                    "title": "Fall",
                    "type": "term",
                    "startDate": "2025-08-15",
                    "endDate": "2025-12-20",
                    "parentSourcedId": "Y1",
                    "schoolYear": "2026",
                },
            ],
            "courses": [
                {
                    "sourcedId": c,
                    **META,
                    "schoolYearSourcedId": "Y1",
                    "title": f"Course {c}",
                    "courseCode": c,
                    "grades": "09",
                    "orgSourcedId": rng.choice(schools),
                    "subjects": "",
                    "subjectCodes": "",
                }
                for c in courses
            ],
            "classes": [
                {
                    "sourcedId": k,
                    **META,
                    "title": f"Class {k}",
                    "grades": "09",
                    "courseSourcedId": rng.choice(courses),
                    "classCode": k,
                    "classType": "scheduled",
                    "location": "",
                    "schoolSourcedId": rng.choice(schools),
                    "termSourcedIds": "T1",
                    "subjects": "",
                    "subjectCodes": "",
                    "periods": "1",
                }
                for k in classes
            ],
            "users": [],
            "enrollments": [],
        }
        for sid in students:
            district._add_user(sid, "student", rng.choice(schools))
        for sid in teachers:
            district._add_user(sid, "teacher", rng.choice(schools))
        for sid in guardians:
            wards = rng.sample(students, rng.randint(1, 2))
            district._add_user(
                sid, rng.choice(["parent", "guardian"]), rng.choice(["D1", *schools])
            )
            district._user(sid)["agentSourcedIds"] = ",".join(wards)
            for ward in wards:
                if rng.random() < 0.5:  # OneRoster lists a link on both rows, or on one
                    district._link(ward, sid)
        school_of = {k["sourcedId"]: k["schoolSourcedId"] for k in district.files["classes"]}
        for n, sid in enumerate(itertools.chain(students, students, teachers)):
            class_ = rng.choice(classes)
            district.files["enrollments"].append(
                {
                    "sourcedId": f"E{n}",
                    **META,
                    "classSourcedId": class_,
                    "schoolSourcedId": school_of[class_],
                    "userSourcedId": sid,
                    "role": "teacher" if sid.startswith("TE") else "student",
                    "primary": "false",
                    "beginDate": "",
                    "endDate": "",
                }
            )
        district._dedupe_enrollments()
        return district

    def _add_user(self, sid: str, role: str, org: str) -> None:
        self.files["users"].append(
            {
                "sourcedId": sid,
                **META,
                "enabledUser": "true",
                "orgSourcedIds": org,
                "role": role,
                "username": sid.lower(),
                "givenName": sid,
                "familyName": "Doe",
                "agentSourcedIds": "",
            }
        )

    def _user(self, sid: str) -> dict[str, str]:
        return next(u for u in self.files["users"] if u["sourcedId"] == sid)

    def _link(self, sid: str, other: str) -> None:
        row = self._user(sid)
        row["agentSourcedIds"] = ",".join(filter(None, [row["agentSourcedIds"], other]))

    def _dedupe_enrollments(self) -> None:
        seen: set[tuple[str, str]] = set()
        kept = []
        for row in self.files["enrollments"]:
            key = (row["classSourcedId"], row["userSourcedId"])
            if key not in seen:
                seen.add(key)
                kept.append(row)
        self.files["enrollments"] = kept

    def ids(self, stem: str, role: str | None = None) -> list[str]:
        rows = self.files[stem]
        return [r["sourcedId"] for r in rows if role is None or r.get("role") == role]

    # -------------------------------------------------------- changes (each returns a folder)

    def move_student(self, pick: int) -> Files:
        students = self.ids("users", "student")
        if students:
            user = self._user(students[pick % len(students)])
            schools = [s for s in self.ids("orgs") if s != "D1" and s != user["orgSourcedIds"]]
            user["orgSourcedIds"] = schools[pick % len(schools)]
        return self.files

    def change_course(self, pick: int) -> Files:
        if self.files["classes"]:
            row = self.files["classes"][pick % len(self.files["classes"])]
            courses = [c for c in self.ids("courses") if c != row["courseSourcedId"]]
            row["courseSourcedId"] = courses[pick % len(courses)]
        return self.files

    def remove_guardian_links(self, pick: int) -> Files:
        guardians = [u for u in self.files["users"] if u["role"] in ("parent", "guardian")]
        if guardians:
            guardian = guardians[pick % len(guardians)]
            guardian["agentSourcedIds"] = ""
            for user in self.files["users"]:
                links = [s for s in user["agentSourcedIds"].split(",") if s]
                user["agentSourcedIds"] = ",".join(s for s in links if s != guardian["sourcedId"])
        return self.files

    def drop_class(self, pick: int) -> Files:
        if len(self.files["classes"]) > 1:
            gone = self.files["classes"].pop(pick % len(self.files["classes"]))["sourcedId"]
            self.files["enrollments"] = [
                e for e in self.files["enrollments"] if e["classSourcedId"] != gone
            ]
        return self.files

    def _forget_user(self, sid: str) -> None:
        self.files["users"] = [u for u in self.files["users"] if u["sourcedId"] != sid]
        self.files["enrollments"] = [
            e for e in self.files["enrollments"] if e["userSourcedId"] != sid
        ]
        for user in self.files["users"]:
            links = [s for s in user["agentSourcedIds"].split(",") if s and s != sid]
            user["agentSourcedIds"] = ",".join(links)

    def drop_user(self, pick: int) -> Files:
        users = self.ids("users")
        if len(users) > 1:
            self._forget_user(users[pick % len(users)])
        return self.files

    def delta_delete(self, pick: int) -> Files:
        """A delta folder: one enrollment, and every other time one user, `tobedeleted`."""
        delta: Files = {}
        if self.files["enrollments"]:
            row = self.files["enrollments"].pop(pick % len(self.files["enrollments"]))
            delta["enrollments"] = [{**row, "status": "tobedeleted"}]
        users = self.ids("users")
        if pick % 2 and len(users) > 1:
            user = dict(self._user(users[pick % len(users)]))
            self._forget_user(user["sourcedId"])
            delta["users"] = [{**user, "status": "tobedeleted"}]
        return delta


CHANGES = {
    "move_student": District.move_student,
    "change_course": District.change_course,
    "remove_guardian_links": District.remove_guardian_links,
    "drop_class": District.drop_class,
    "drop_user": District.drop_user,
    "delta_delete": District.delta_delete,
}

# ---------------------------------------------------------------- steps

Step = tuple[str, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["import", "create", "retarget", "rescope", "destroy"]),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=STEPS,
)


@dataclass
class Run:
    """One example: its source, its district, and the folders it has written."""

    district: District
    source_name: str
    folder: Iterator[Path]
    source_id: str = ""
    integrations: list[str] = field(default_factory=list)
    checks: int = 0


async def _import(engine: AsyncEngine, run: Run, files: Files, mode: str) -> None:
    path = write_folder(next(run.folder), files, version="1.1", mode=mode)
    result = await import_oneroster(engine, path, source_name=run.source_name, today=TODAY)
    run.source_id = result.source_id


async def _targets(conn: AsyncConnection, source_id: str, pick: int) -> list[str]:
    """One to three schools, courses or classes of the source, in any mix."""
    found: list[str] = []
    for model in (models.School, models.Course, models.Class):
        table = models.table_of(model)
        query = sa.select(table.c.id).where(table.c.source_id == source_id).order_by(table.c.id)
        found += list((await conn.execute(query)).scalars())
    rng = random.Random(pick)
    return rng.sample(found, min(len(found), rng.randint(1, 3)))


async def _apply(engine: AsyncEngine, run: Run, step: Step) -> None:
    action, pick, choice = step
    if action == "import":
        name = sorted(CHANGES)[choice % len(CHANGES)]
        files = CHANGES[name](run.district, pick)
        await _import(engine, run, files, "delta" if name == "delta_delete" else "bulk")
        return
    async with write_transaction(engine) as conn:
        if action == "create" or not run.integrations:
            selected = choice % 3 != 0
            created = await service.create_integration(
                conn,
                source_id=run.source_id,
                scope=Scope.SELECTED if selected else Scope.ALL,
                permissions=sorted(ALL_SLUGS),
                targets=await _targets(conn, run.source_id, pick) if selected else (),
            )
            run.integrations.append(created.id)
            return
        integration = run.integrations[choice % len(run.integrations)]
        before = await service.require_integration(conn, integration)
        if action == "destroy":
            await service.destroy_integration(conn, integration)
            run.integrations.remove(integration)
        elif action == "rescope" and before.scope is Scope.SELECTED:
            changes = service.IntegrationChanges(scope=Scope.ALL)
            await service.update_integration(conn, integration, changes)
        else:  # retarget, or rescope from ALL to SELECTED
            targets = await _targets(conn, run.source_id, pick)
            changes = service.IntegrationChanges(scope=Scope.SELECTED, targets=targets)
            await service.update_integration(conn, integration, changes)


async def _stored_and_expected(
    conn: AsyncConnection, integration_id: str
) -> list[tuple[sa.Table, set[str], set[str]]]:
    """Per graph table: the integration's stored view, and what it should be (its closure
    computed by the predicates directly; nothing for an integration of scope ALL)."""
    grant = await load_grant_by_id(conn, integration_id)
    assert grant is not None
    return [
        (
            table,
            await views.stored_ids(conn, integration_id, table),
            set() if grant.scope is Scope.ALL else await views.closure_ids(conn, grant, table),
        )
        for table in views.GRAPH_TABLES
    ]


async def _check(engine: AsyncEngine, run: Run, after: str) -> None:
    """Every integration's stored view equals its closure, type by type; nothing else is
    stored (ALL integrations and destroyed ones have no rows)."""
    async with engine.connect() as conn:
        integrations = models.table_of(models.Integration)
        ids = (
            await conn.execute(
                sa.select(integrations.c.id).where(integrations.c.source_id == run.source_id)
            )
        ).scalars()
        for integration_id in ids:
            for table, stored, expected in await _stored_and_expected(conn, integration_id):
                assert stored == expected, (
                    f"after {after}: {table.name} of integration {integration_id}: "
                    f"stored - closure = {sorted(stored - expected)[:3]}, "
                    f"closure - stored = {sorted(expected - stored)[:3]}"
                )
                run.checks += 1
        for view in views.VIEWS.values():
            orphans = sa.select(sa.func.count()).select_from(view)
            orphans = orphans.where(~view.c.integration_id.in_(sa.select(integrations.c.id)))
            found = (await conn.execute(orphans)).scalar_one()
            assert found == 0, f"after {after}: orphan rows in {view.name}"


stats: dict[str, int] = {"examples": 0, "steps": 0, "checks": 0}


@pytest.fixture(scope="module", params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One database per engine for the whole property test; each example has its own source."""
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database(request.param, Path(folder), "views_property") as url,
    ):
        before = dict(stats)
        yield url
    SUMMARY.append(
        f"stored views property test on {request.param}: "
        f"{stats['examples'] - before['examples']} examples, "
        f"{stats['steps'] - before['steps']} random steps, "
        f"{stats['checks'] - before['checks']} view/closure comparisons"
    )


counter = itertools.count()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32), plan=steps)
def test_stored_views_equal_the_closure_after_every_change(
    engine_url: str, seed: int, plan: list[Step]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        folders = (Path(folder) / f"f{n}" for n in itertools.count())
        run = Run(District.generate(seed), f"Example {next(counter)}", folders)

        async def body(engine: AsyncEngine) -> None:
            await _import(engine, run, run.district.files, "bulk")
            for selected in (True, True, False):  # two SELECTED integrations and one ALL
                await _apply(engine, run, ("create", seed, 1 if selected else 0))
            await _check(engine, run, "the first import")
            for step in plan:
                await _apply(engine, run, step)
                await _check(engine, run, f"{step} of {plan}")

        run_db(engine_url, body)
    stats["examples"] += 1
    stats["steps"] += len(plan)
    stats["checks"] += run.checks


# ---------------------------------------------------------------- transactions and upgrades


async def _views_and_closures(engine: AsyncEngine, integration_id: str) -> list[tuple[Any, Any]]:
    async with engine.connect() as conn:
        found = await _stored_and_expected(conn, integration_id)
    return [(stored, expected) for _, stored, expected in found]


def test_a_failed_import_leaves_the_views_as_they_were(any_db_url: str, tmp_path: Path) -> None:
    district = District.generate(5)
    run = Run(district, "Failing", (tmp_path / f"f{n}" for n in itertools.count()))

    async def body(engine: AsyncEngine) -> None:
        await _import(engine, run, district.files, "bulk")
        await _apply(engine, run, ("create", 3, 1))
        before = await _views_and_closures(engine, run.integrations[0])
        assert all(stored == closure for stored, closure in before)
        assert sum(len(stored) for stored, _ in before) > 1
        broken = district.drop_class(0)  # then a user enrolled in a class that does not exist
        broken["enrollments"].append({**broken["enrollments"][0], "classSourcedId": "nowhere"})
        with pytest.raises(ValidationFailed):
            await _import(engine, run, broken, "bulk")
        assert await _views_and_closures(engine, run.integrations[0]) == before

    run_db(any_db_url, body)


async def _with_one_integration(engine: AsyncEngine, run: Run) -> None:
    """The run's district imported, and one SELECTED integration of it with targets."""
    await _import(engine, run, run.district.files, "bulk")
    await _apply(engine, run, ("create", 4, 1))


def test_a_database_from_before_the_views_gets_them_when_opened(
    any_db_url: str, tmp_path: Path
) -> None:
    run = Run(District.generate(6), "Upgraded", (tmp_path / f"f{n}" for n in itertools.count()))

    async def before_views(engine: AsyncEngine) -> None:
        await _with_one_integration(engine, run)
        async with engine.begin() as conn:  # as an older version left it: no view table
            for view in views.VIEWS.values():
                await conn.execute(sa.text(f"DROP TABLE {view.name}"))

    async def reopened(engine: AsyncEngine) -> list[tuple[Any, Any]]:
        return await _views_and_closures(engine, run.integrations[0])

    run_db(any_db_url, before_views)
    found = run_db(any_db_url, reopened)  # engine_for runs create_schema, as `serve` does
    assert all(stored == closure for stored, closure in found)
    assert sum(len(stored) for stored, _ in found) > 1


async def _the_table_of_the_release_before(conn: AsyncConnection) -> None:
    """`visible_rows` as the release before made it, in place of this release's stand-in."""
    await conn.execute(sa.text("DROP VIEW visible_rows"))
    await conn.execute(
        sa.text(
            "CREATE TABLE visible_rows (integration_id VARCHAR(36) NOT NULL, "
            "kind VARCHAR(16) NOT NULL, id VARCHAR(36) NOT NULL, "
            "PRIMARY KEY (integration_id, kind, id))"
        )
    )


def test_a_database_with_one_view_table_for_every_kind_gets_one_per_kind_when_opened(
    any_db_url: str, tmp_path: Path
) -> None:
    """The release before this one kept every view in `visible_rows` (integration, kind, id):
    opening its database writes the per-kind tables from the closure and drops the old one."""
    run = Run(District.generate(6), "One table", (tmp_path / f"f{n}" for n in itertools.count()))

    async def as_the_release_before(engine: AsyncEngine) -> None:
        await _with_one_integration(engine, run)
        async with engine.begin() as conn:
            await _the_table_of_the_release_before(conn)
            for view in views.VIEWS.values():
                kind = view.name.removeprefix("visible_")
                await conn.execute(
                    sa.text(
                        f"INSERT INTO visible_rows SELECT integration_id, '{kind}', id "
                        f"FROM {view.name}"
                    )
                )
                await conn.execute(sa.text(f"DROP TABLE {view.name}"))

    async def reopened(engine: AsyncEngine) -> tuple[list[tuple[Any, Any]], bool]:
        async with engine.connect() as conn:
            old = await conn.run_sync(
                lambda sync: "visible_rows" in sa.inspect(sync).get_table_names()
            )
        return await _views_and_closures(engine, run.integrations[0]), old

    run_db(any_db_url, as_the_release_before)
    found, old_table_left = run_db(any_db_url, reopened)
    assert all(stored == closure for stored, closure in found)
    assert sum(len(stored) for stored, _ in found) > 1
    assert not old_table_left


def test_the_release_before_cannot_leave_the_views_stale(any_db_url: str, tmp_path: Path) -> None:
    """A process of the release before that still runs on an upgraded database (a rolling
    deploy, a rollback) would write only `visible_rows`: that name is an empty SQL view, so its
    scoped reads find nothing and its writes fail; and if that table is back when this release
    opens the database again (someone dropped the view), the views are written again from the
    closure, stale as they may be."""
    run = Run(District.generate(6), "Mixed", (tmp_path / f"f{n}" for n in itertools.count()))

    async def upgraded(engine: AsyncEngine) -> None:
        await _with_one_integration(engine, run)
        async with engine.connect() as conn:
            kinds = await conn.run_sync(lambda sync: sa.inspect(sync).get_view_names())
            assert "visible_rows" in kinds
            assert (await conn.execute(sa.text("SELECT count(*) FROM visible_rows"))).scalar() == 0
        with pytest.raises(sa.exc.DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("INSERT INTO visible_rows VALUES (:i, 'people', :i)"),
                    {"i": run.integrations[0]},
                )

    async def written_by_the_release_before(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:  # its table back, and this release's views stale
            await _the_table_of_the_release_before(conn)
            for view in views.VIEWS.values():
                await conn.execute(view.delete())

    async def reopened(engine: AsyncEngine) -> list[tuple[Any, Any]]:
        return await _views_and_closures(engine, run.integrations[0])

    run_db(any_db_url, upgraded)
    run_db(any_db_url, written_by_the_release_before)
    found = run_db(any_db_url, reopened)
    assert all(stored == closure for stored, closure in found)
    assert sum(len(stored) for stored, _ in found) > 1


def test_an_import_and_a_narrowing_of_targets_at_once_leave_the_views_equal_to_the_closure(
    tmp_path: Path,
) -> None:
    """On PostgreSQL (READ COMMITTED) an import's refresh read an integration's targets, the
    administrator narrowed them and committed, and the import wrote the views of the wider
    targets back: a SELECTED token read the schools taken away (found by a review). The
    writers of one source's scope now run one after another (`views.lock_source`). SQLite's
    writers always did (`BEGIN IMMEDIATE`)."""
    import asyncio

    from gateway.events import feed
    from tests.factories import make_source

    async def body(engine: AsyncEngine) -> None:
        made = await make_source(engine, 61, "race")
        wide = made.ids("schools")[:3]
        async with engine.begin() as conn:
            integration = await service.create_integration(
                conn,
                source_id=made.source.id,
                scope=Scope.SELECTED,
                permissions=sorted(ALL_SLUGS),
                targets=wide,
            )
        real = views.load_grant_by_id
        read, go = asyncio.Event(), asyncio.Event()
        importing_conn = await engine.connect()

        async def paused(conn: AsyncConnection, integration_id: str) -> Any:
            grant = await real(conn, integration_id)
            if conn is importing_conn:
                read.set()  # the import has read the wide targets: the administrator acts
                await go.wait()
            return grant

        async def narrow() -> None:
            async with engine.begin() as conn:
                changes = service.IntegrationChanges(targets=[wide[0]])
                await service.update_integration(conn, integration.id, changes)

        views.load_grant_by_id = paused  # type: ignore[assignment]
        try:
            await importing_conn.begin()
            importing = asyncio.create_task(feed.refresh_source(importing_conn, made.source.id))
            await read.wait()
            narrowing = asyncio.create_task(narrow())
            # it waits for the import (or, before the fix, commits while the import is paused)
            await asyncio.wait({narrowing}, timeout=2)
            go.set()
            await importing
            await importing_conn.commit()
            await narrowing
        finally:
            views.load_grant_by_id = real
            await importing_conn.close()
        async with engine.connect() as conn:
            grant = await real(conn, integration.id)
            assert grant is not None
            assert grant.targets.all() == {wide[0]}
            for table in views.GRAPH_TABLES:
                stored = await views.stored_ids(conn, integration.id, table)
                assert stored == await views.closure_ids(conn, grant, table), table.name

    with fresh_database("postgres", tmp_path, "import-narrow race") as url:
        run_db(url, body)


def test_an_integration_destroyed_during_an_import_waits_for_it(tmp_path: Path) -> None:
    """On PostgreSQL an import's feed refresh holds the source, then the feed's row, then writes
    events that refer to the integration; destroying the integration took its row, then deleted
    the feed's: a deadlock (found by a review). It now takes the source's lock first, and
    waits."""
    import asyncio

    from gateway.events import feed
    from tests.factories import make_integration, make_source

    async def body(engine: AsyncEngine) -> None:
        made = await make_source(engine, 1, "destroy race")
        await make_integration(engine, made.source.id)
        integrations = models.table_of(models.Integration)
        async with engine.connect() as conn:
            integration_id = (await conn.execute(sa.select(integrations.c.id))).scalar_one()
        real = feed._current
        paused, go = asyncio.Event(), asyncio.Event()

        async def slow(conn: AsyncConnection, grant: Any, kinds: Any) -> Any:
            paused.set()
            await go.wait()
            return await real(conn, grant, kinds)

        async def importing() -> None:
            async with engine.begin() as conn:
                schools = models.table_of(models.School)
                await conn.execute(
                    schools.update()
                    .where(schools.c.source_id == made.source.id)
                    .values(name=schools.c.name + " (renamed)")
                )
                await feed.refresh_source(conn, made.source.id)

        async def destroying() -> None:
            await paused.wait()
            async with engine.begin() as conn:
                await service.destroy_integration(conn, integration_id)

        feed._current = slow  # type: ignore[assignment]
        try:
            tasks = [asyncio.create_task(importing()), asyncio.create_task(destroying())]
            await asyncio.wait(tasks, timeout=1)  # the destroy is under way, or waiting
            go.set()
            await asyncio.gather(*tasks)  # a deadlock raised here
        finally:
            feed._current = real
        async with engine.connect() as conn:
            assert (
                await conn.execute(sa.select(sa.func.count()).select_from(integrations))
            ).scalar() == 0

    with fresh_database("postgres", tmp_path, "destroy race") as url:
        run_db(url, body)
