"""The integration lifecycle service: every validation of DESIGN §6, the seed rules of §2, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.access.authentication import load_grant
from gateway.access.grant import IntegrationStatus, Scope
from gateway.access.permissions import BY_SLUG
from gateway.admin import audit, records, service
from gateway.admin.service import KEEP, IntegrationChanges
from gateway.db import create_engine, write_transaction
from gateway.errors import ValidationFailed
from tests.admin_factories import Orgs, make_orgs_in
from tests.conftest import run_db

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=30)
MISSING = "00000000-0000-4000-8000-000000000000"
_NAMES_ONLY = Orgs(*"abcdef")  # placeholder ids, to list the case names at collection time


def in_db(db_url: str, body: Callable[[AsyncEngine, Orgs], Awaitable[Any]]) -> Any:
    """Run `body(engine, orgs)` on a fresh database holding one source's organisations."""

    async def go(engine: AsyncEngine) -> Any:
        orgs = await make_orgs_in(engine)
        return await body(engine, orgs)

    return run_db(db_url, go)


async def audit_actions(conn: AsyncConnection) -> list[str]:
    page = await audit.list_entries(conn, first=500)
    return [e.action for e in reversed(page.entries)]


async def count(conn: AsyncConnection, model: Any) -> int:
    return int(
        (
            await conn.execute(sa.select(sa.func.count()).select_from(models.table_of(model)))
        ).scalar_one()
    )


# ---------------------------------------------------------------- creation


def _create_cases(o: Orgs, other: Orgs) -> dict[str, tuple[dict[str, Any], str]]:
    return {
        "unknown permission": (
            {"permissions": ["people:read", "people:write"]},
            "unknown permission 'people:write'",
        ),
        "unknown permission uuid": (
            {"permissions": [MISSING]},
            f"unknown permission '{MISSING}'",
        ),
        "target of another source": (
            {"scope": Scope.SELECTED, "targets": [other.school]},
            f"target {other.school} is not a school, course or class of source {o.source}",
        ),
        "target that does not exist": (
            {"scope": Scope.SELECTED, "targets": [o.school, MISSING]},
            f"target {MISSING} is not a school, course or class of source {o.source}",
        ),
        "target that is a district": (
            {"scope": Scope.SELECTED, "targets": [o.district]},
            f"target {o.district} is not a school, course or class of source {o.source}",
        ),
        "target that is not a uuid": (
            {"scope": Scope.SELECTED, "targets": ["school-1"]},
            "target 'school-1' is not a UUID",
        ),
        "selected without targets": (
            {"scope": Scope.SELECTED, "targets": []},
            "scope SELECTED needs at least one target",
        ),
        "all with targets": (
            {"scope": Scope.ALL, "targets": [o.school]},
            "scope ALL takes no targets",
        ),
        "unknown source": (
            {"source_id": MISSING},
            f"source {MISSING} does not exist",
        ),
        "inactive after its start date": (
            {"status": IntegrationStatus.INACTIVE, "start_date": PAST},
            "status INACTIVE would have no effect",
        ),
    }


@pytest.mark.parametrize("case", list(_create_cases(_NAMES_ONLY, _NAMES_ONLY)))
def test_create_rejects_with_a_message_naming_the_value(db_url: str, case: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        other = await make_orgs_in(engine, "Shelbyville")
        overrides, message = _create_cases(orgs, other)[case]
        arguments: dict[str, Any] = {
            "source_id": orgs.source,
            "scope": Scope.ALL,
            "permissions": ["people:read"],
            **overrides,
        }
        with pytest.raises(ValidationFailed) as raised:
            async with engine.begin() as conn:
                await service.create_integration(conn, **arguments)
        assert message in str(raised.value)
        async with engine.connect() as conn:
            assert await count(conn, models.Integration) == 0
            assert "integration.create" not in await audit_actions(conn)

    in_db(db_url, body)


def test_create_stores_permissions_targets_and_kinds_and_audits(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        async with engine.begin() as conn:
            created = await service.create_integration(
                conn,
                source_id=orgs.source,
                scope=Scope.SELECTED,
                permissions=["people:read", str(BY_SLUG["organizations:read"].id), "people:read"],
                targets=[orgs.school, orgs.course.upper(), orgs.class_],
                start_date=FUTURE,
                name="  Gradebook  ",
            )
        async with engine.connect() as conn:
            kinds = dict(
                (
                    await conn.execute(
                        sa.select(models.table_of(models.IntegrationTarget).c["target_id", "kind"])
                    )
                ).all()
            )
            (entry,) = (await audit.list_entries(conn, action="integration.create")).entries
            grant = await load_grant(conn, created.token)
        assert kinds == {orgs.school: "SCHOOL", orgs.course: "COURSE", orgs.class_: "CLASS"}
        record = created.integration
        assert record.permissions == ("organizations:read", "people:read")
        assert record.name == "Gradebook"
        assert record.status() is IntegrationStatus.INACTIVE
        assert (entry.actor, entry.admin_key_id, entry.before) == ("cli", None, None)
        assert entry.after == record.as_json()
        assert "token" not in str(entry.after)
        assert created.token not in str(entry.after)
        assert grant is not None
        assert grant.status is IntegrationStatus.INACTIVE

    in_db(db_url, body)


# ---------------------------------------------------------------- updates


async def _selected(engine: AsyncEngine, orgs: Orgs) -> service.CreatedIntegration:
    async with engine.begin() as conn:
        return await service.create_integration(
            conn,
            source_id=orgs.source,
            scope=Scope.SELECTED,
            permissions=["people:read"],
            targets=[orgs.school],
        )


async def _update(engine: AsyncEngine, integration_id: str, **changes: Any) -> records.Integration:
    async with engine.begin() as conn:
        return await service.update_integration(conn, integration_id, IntegrationChanges(**changes))


def test_update_keeps_the_token_and_takes_effect_on_the_next_lookup(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)
        await _update(
            engine,
            created.id,
            permissions=["organizations:read", "emails:read"],
            targets=[orgs.course, orgs.class_],
        )
        async with engine.connect() as conn:
            grant = await load_grant(conn, created.token)
        assert grant is not None
        assert grant.permissions == {"organizations:read", "emails:read"}
        assert (grant.targets.schools, grant.targets.courses, grant.targets.classes) == (
            frozenset(),
            {orgs.course},
            {orgs.class_},
        )

    in_db(db_url, body)


@pytest.mark.parametrize(
    ("changes", "scope", "targets"),
    [
        pytest.param({"scope": Scope.ALL}, Scope.ALL, (), id="to ALL without targets clears them"),
        pytest.param({"scope": Scope.ALL, "targets": []}, Scope.ALL, (), id="to ALL with none"),
        pytest.param(
            {"permissions": ["emails:read"]}, Scope.SELECTED, ("school",), id="targets kept"
        ),
        pytest.param({"scope": Scope.SELECTED}, Scope.SELECTED, ("school",), id="same scope kept"),
    ],
)
def test_update_scope_and_targets(
    db_url: str, changes: dict[str, Any], scope: Scope, targets: tuple[str, ...]
) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)
        updated = await _update(engine, created.id, **changes)
        assert updated.scope is scope
        assert updated.targets == tuple(getattr(orgs, t) for t in targets)

    in_db(db_url, body)


def _update_cases(o: Orgs, other: Orgs) -> dict[str, tuple[dict[str, Any], str]]:
    return {
        "to ALL with targets": (
            {"scope": Scope.ALL, "targets": [o.school]},
            "scope ALL takes no targets",
        ),
        "empty targets under SELECTED": (
            {"targets": []},
            "scope SELECTED needs at least one target",
        ),
        "target of another source": (
            {"targets": [other.class_]},
            f"target {other.class_} is not a school, course or class of source {o.source}",
        ),
        "unknown permission": (
            {"permissions": ["grades:read"]},
            "unknown permission 'grades:read'",
        ),
        "inactive after its start date": (
            {"status": IntegrationStatus.INACTIVE, "start_date": PAST},
            f"start date {PAST.isoformat()} has passed",
        ),
    }


@pytest.mark.parametrize("case", list(_update_cases(_NAMES_ONLY, _NAMES_ONLY)))
def test_update_rejects_and_changes_nothing(db_url: str, case: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        other = await make_orgs_in(engine, "Shelbyville")
        created = await _selected(engine, orgs)
        changes, message = _update_cases(orgs, other)[case]
        with pytest.raises(ValidationFailed) as raised:
            await _update(engine, created.id, **changes)
        assert message in str(raised.value)
        async with engine.connect() as conn:
            assert await service.require_integration(conn, created.id) == created.integration
            assert await audit_actions(conn) == [
                "source.create",
                "source.create",
                "integration.create",
            ]

    in_db(db_url, body)


def test_update_from_all_to_selected_needs_targets(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        async with engine.begin() as conn:
            created = await service.create_integration(
                conn, source_id=orgs.source, scope=Scope.ALL, permissions=[]
            )
        with pytest.raises(ValidationFailed, match="scope SELECTED needs at least one target"):
            await _update(engine, created.id, scope=Scope.SELECTED)
        updated = await _update(engine, created.id, scope=Scope.SELECTED, targets=[orgs.class_])
        assert updated.targets == (orgs.class_,)

    in_db(db_url, body)


def test_an_unknown_or_malformed_integration_is_named(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        with pytest.raises(ValidationFailed, match=f"integration {MISSING} does not exist"):
            await _update(engine, MISSING, status=IntegrationStatus.DISABLED)
        with pytest.raises(ValidationFailed, match="integration 'nope' is not a UUID"):
            async with engine.begin() as conn:
                await service.destroy_integration(conn, "nope")

    in_db(db_url, body)


def test_an_update_that_changes_nothing_is_not_audited(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)
        same = await _update(
            engine,
            created.id,
            permissions=["people:read"],
            targets=[orgs.school],
            scope=Scope.SELECTED,
            status=IntegrationStatus.ACTIVE,
            start_date=None,
            name=None,
        )
        assert same == created.integration
        async with engine.connect() as conn:
            assert "integration.update" not in await audit_actions(conn)

    in_db(db_url, body)


def test_moving_the_start_date_of_an_inactive_integration_into_the_past_is_refused(
    db_url: str,
) -> None:
    # INACTIVE with a start date that has passed would be ACTIVE: the admin's INACTIVE would
    # be overridden without a word.
    async def body(engine: AsyncEngine, orgs: Orgs) -> str:
        async with engine.begin() as conn:
            created = await service.create_integration(
                conn,
                source_id=orgs.source,
                scope=Scope.ALL,
                permissions=["people:read"],
                status=IntegrationStatus.INACTIVE,
                start_date=FUTURE,
            )
        with pytest.raises(ValidationFailed, match="status INACTIVE would have no effect"):
            async with engine.begin() as conn:
                await service.update_integration(
                    conn, created.id, IntegrationChanges(start_date=PAST)
                )
        async with engine.connect() as conn:
            (stored,) = await records.load_integrations(conn, ids=[created.id])
        return stored.configured_status.value

    assert in_db(db_url, body) == "INACTIVE"


def test_start_date_can_be_set_kept_and_cleared(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)
        naive = FUTURE.replace(tzinfo=None, microsecond=0)
        scheduled = await _update(engine, created.id, start_date=naive)
        assert scheduled.start_date == naive.replace(tzinfo=UTC)
        assert scheduled.status() is IntegrationStatus.INACTIVE
        kept = await _update(engine, created.id, name="renamed", start_date=KEEP)
        assert kept.start_date == scheduled.start_date
        cleared = await _update(engine, created.id, start_date=None)
        assert (cleared.start_date, cleared.status()) == (None, IntegrationStatus.ACTIVE)

    in_db(db_url, body)


def test_disable_enable_destroy_and_create_again(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        first = await _selected(engine, orgs)

        async def grant(token: str) -> Any:
            async with engine.connect() as conn:
                return await load_grant(conn, token)

        async with engine.begin() as conn:
            disabled = await service.disable_integration(conn, first.id)
        assert disabled.status() is IntegrationStatus.DISABLED
        assert (await grant(first.token)).status is IntegrationStatus.DISABLED
        async with engine.begin() as conn:
            await service.enable_integration(conn, first.id)
        assert (await grant(first.token)).status is IntegrationStatus.ACTIVE
        async with engine.begin() as conn:
            destroyed = await service.destroy_integration(conn, first.id)
        assert destroyed.id == first.id
        assert await grant(first.token) is None
        second = await _selected(engine, orgs)
        assert (second.id, second.token) != (first.id, first.token)
        assert await grant(first.token) is None
        assert (await grant(second.token)).integration_id == second.id
        async with engine.connect() as conn:
            for model in (models.IntegrationPermission, models.IntegrationTarget):
                rows = await conn.execute(
                    sa.select(models.table_of(model).c.integration_id).distinct()
                )
                assert rows.scalars().all() == [second.id]
            page = await audit.list_entries(conn, subject_id=first.id)
        assert [(e.action, e.before is None, e.after is None) for e in reversed(page.entries)] == [
            ("integration.create", True, False),
            ("integration.disable", False, False),
            ("integration.enable", False, False),
            ("integration.destroy", False, True),
        ]
        disable = page.entries[2]
        assert disable.before is not None
        assert disable.after is not None
        assert (disable.before["configuredStatus"], disable.after["configuredStatus"]) == (
            "ACTIVE",
            "DISABLED",
        )

    in_db(db_url, body)


def test_a_change_and_its_audit_entry_commit_together(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("audit log unavailable")

        monkeypatch.setattr(audit, "record", broken)
        with pytest.raises(RuntimeError):
            await _update(engine, created.id, permissions=["emails:read"])
        async with engine.connect() as conn:
            assert (await service.require_integration(conn, created.id)).permissions == (
                "people:read",
            )

    in_db(db_url, body)


# ---------------------------------------------------------------- the audit log


def test_audit_pages_walk_every_entry_once_newest_first(db_url: str) -> None:
    async def body(engine: AsyncEngine, orgs: Orgs) -> None:
        created = await _selected(engine, orgs)
        for i in range(5):
            await _update(engine, created.id, name=f"name {i}")
        seen: list[audit.Entry] = []
        after = None
        async with engine.connect() as conn:
            everything = (await audit.list_entries(conn)).entries
            while True:
                page = await audit.list_entries(conn, first=2, after=after)
                seen.extend(page.entries)
                if not page.has_next_page:
                    break
                after = page.end_cursor
            updates = await audit.list_entries(
                conn, subject_id=created.id, action="integration.update"
            )
        assert seen == everything
        assert len(seen) == 7
        assert [e.at for e in seen] == sorted((e.at for e in seen), reverse=True)
        assert [e.after and e.after["name"] for e in updates.entries] == [
            f"name {i}" for i in reversed(range(5))
        ]

    in_db(db_url, body)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"first": 0}, "page size 0 is not between 1 and 500", id="first 0"),
        pytest.param({"first": 501}, "page size 501 is not between 1 and 500", id="first 501"),
        pytest.param(
            {"after": "bm9wZQ"}, "cursor 'bm9wZQ' is not an audit log cursor", id="cursor"
        ),
    ],
)
def test_audit_rejects_bad_paging(db_url: str, arguments: dict[str, Any], message: str) -> None:
    async def body(engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            with pytest.raises(ValidationFailed) as raised:
                await audit.list_entries(conn, **arguments)
        assert message in str(raised.value)

    run_db(db_url, body)


def test_concurrent_changes_do_not_undo_each_other(any_db_url: str) -> None:
    # Two administrators at once: one disables, the other edits permissions. Each change must
    # read what the other wrote; a stale read written back would re-enable the integration.
    async def trial(engines: list[AsyncEngine], orgs: Orgs) -> tuple[str, list[str]]:
        async with write_transaction(engines[0]) as conn:
            created = await service.create_integration(
                conn, source_id=orgs.source, scope=Scope.ALL, permissions=["people:read"]
            )

        async def disable(engine: AsyncEngine) -> None:
            async with write_transaction(engine) as conn:
                await service.disable_integration(conn, created.id)

        async def edit(engine: AsyncEngine) -> None:
            async with write_transaction(engine) as conn:
                changes = IntegrationChanges(permissions=["people:read", "emails:read"])
                await service.update_integration(conn, created.id, changes)

        await asyncio.gather(disable(engines[1]), edit(engines[2]), edit(engines[3]))
        async with engines[0].connect() as conn:
            (stored,) = await records.load_integrations(conn, ids=[created.id])
        return stored.configured_status.value, sorted(stored.permissions)

    async def body(engine: AsyncEngine) -> list[tuple[str, list[str]]]:
        orgs = await make_orgs_in(engine)
        engines = [create_engine(any_db_url) for _ in range(4)]
        try:
            return [await trial(engines, orgs) for _ in range(8)]
        finally:
            for each in engines:
                await each.dispose()

    outcomes = run_db(any_db_url, body)
    assert outcomes == [("DISABLED", ["emails:read", "people:read"])] * 8
