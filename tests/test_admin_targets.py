"""Targets by name: a source's schools, courses and classes, filtered by kind and by name, and
the names of the targets an integration already has (also after an import removed one)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import models
from gateway.access import views
from gateway.access.grant import Scope
from gateway.admin import records, service
from gateway.admin.targets import TargetKind, list_targets, parse_kind
from gateway.errors import ValidationFailed
from tests.admin_factories import Orgs, make_orgs_in
from tests.conftest import run_db


def _listed(db_url: str, source: str, **options: Any) -> list[dict[str, Any]]:
    async def body(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            return [t.as_json() for t in await list_targets(conn, source, **options)]

    return run_db(db_url, body)


@pytest.fixture
def orgs(any_db_url: str) -> Orgs:
    found = run_db(any_db_url, make_orgs_in)
    run_db(any_db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))  # never listed

    async def district_course(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            course = models.Course(
                source_id=found.source, district_id=found.district, name="Civics 100%"
            )
            await conn.execute(
                sa.insert(models.table_of(models.Course)).values(course.model_dump())
            )

    run_db(any_db_url, district_course)
    return found


def test_every_target_of_the_source_schools_then_courses_then_classes(
    any_db_url: str, orgs: Orgs
) -> None:
    listed = _listed(any_db_url, orgs.source)
    civics = next(t["id"] for t in listed if t["name"] == "Civics 100%")
    assert listed == [
        {
            "id": orgs.other_school,
            "kind": "SCHOOL",
            "name": "Springfield Elementary",
            "school": None,
        },
        {"id": orgs.school, "kind": "SCHOOL", "name": "Springfield High", "school": None},
        {"id": civics, "kind": "COURSE", "name": "Civics 100%", "school": None},
        {"id": orgs.course, "kind": "COURSE", "name": "Algebra", "school": "Springfield High"},
        {"id": orgs.class_, "kind": "CLASS", "name": "Algebra 1A", "school": "Springfield High"},
    ]


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"kind": TargetKind.SCHOOL}, ["Springfield Elementary", "Springfield High"]),
        ({"kind": TargetKind.CLASS}, ["Algebra 1A"]),
        ({"search": "ALGEBRA"}, ["Algebra", "Algebra 1A"]),
        ({"search": " high "}, ["Springfield High"]),
        ({"search": "algebra", "kind": TargetKind.COURSE}, ["Algebra"]),
        ({"search": "0%"}, ["Civics 100%"]),
        ({"search": "_"}, []),
        ({"search": "Shelbyville"}, []),
    ],
    ids=[
        "schools",
        "classes",
        "search ignores case",
        "search is trimmed",
        "search and kind",
        "a percent sign is literal",
        "an underscore is literal",
        "another source",
    ],
)
def test_kind_and_search_narrow_the_list(
    any_db_url: str, orgs: Orgs, options: dict[str, Any], names: list[str]
) -> None:
    assert [t["name"] for t in _listed(any_db_url, orgs.source, **options)] == names


def test_a_kind_is_parsed_in_any_case_or_refused() -> None:
    assert parse_kind(" Class ") is TargetKind.CLASS
    with pytest.raises(ValidationFailed, match="kind 'room' is not school, course or class"):
        parse_kind("room")


def test_an_integration_shows_its_targets_by_name_also_once_one_is_removed(
    any_db_url: str, orgs: Orgs
) -> None:
    async def body(engine: AsyncEngine) -> list[Any]:
        async with engine.begin() as conn:
            created = await service.create_integration(
                conn,
                source_id=orgs.source,
                scope=Scope.SELECTED,
                permissions=["people:read"],
                targets=[orgs.class_, orgs.other_school],
            )
        async with engine.begin() as conn:  # as an import that drops the class does
            classes = models.table_of(models.Class)
            await conn.execute(classes.delete().where(classes.c.id == orgs.class_))
            await views.refresh_source(conn, orgs.source)
        async with engine.connect() as conn:
            return [created.integration, *await records.load_integrations(conn)]

    created, loaded = run_db(any_db_url, body)
    expected = sorted(
        [
            {
                "id": orgs.class_,
                "kind": "CLASS",
                "name": "Algebra 1A",
                "school": "Springfield High",
            },
            {
                "id": orgs.other_school,
                "kind": "SCHOOL",
                "name": "Springfield Elementary",
                "school": None,
            },
        ],
        key=lambda t: t["id"],
    )
    assert created.as_json()["targetDetails"] == expected
    removed = {"id": orgs.class_, "kind": "CLASS", "name": None, "school": None}
    assert loaded.as_json()["targetDetails"] == [
        removed if t["id"] == orgs.class_ else t for t in expected
    ]
