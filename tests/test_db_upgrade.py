"""A database made before applications had keys (issue #16) opens, gains the new columns and
table, and keeps working: old tokens, old free-text applications, new grants."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gateway import models
from gateway.access.grant import Scope
from gateway.access.tokens import digest
from gateway.admin import applications, records, service
from gateway.coltypes import utcnow
from gateway.db import write_transaction
from gateway.vault import Vault, generate_key
from tests.admin_factories import make_orgs
from tests.conftest import run_db

# What the previous release's schema lacked.
_DOWNGRADE = [
    "DROP TABLE application_permissions",
    "DROP INDEX ix_applications_key_digest",
    "ALTER TABLE applications DROP COLUMN key_digest",
    "ALTER TABLE applications DROP COLUMN description",
    "ALTER TABLE integrations DROP COLUMN token_ciphertext",
    # the link indexes before they held the link's source (issue #12)
    "DROP INDEX ix_person_schools_person",
    "DROP INDEX ix_person_schools_school",
    "CREATE INDEX ix_person_schools_school_id ON person_schools (school_id, person_id)",
    "DROP INDEX ix_class_sessions_class",
    "DROP INDEX ix_class_sessions_session",
    "CREATE INDEX ix_class_sessions_session_id ON class_sessions (session_id, class_id)",
    # the section index of every enrollment, most of them in no section
    "DROP INDEX ix_enrollments_section_id_id_set",
    "CREATE INDEX ix_enrollments_section_id_id ON enrollments (section_id, id)",
]


def _index_names(conn: sa.Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(conn).get_indexes(table)}


def _columns(conn: sa.Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(conn).get_columns(table)}


def test_an_earlier_database_is_upgraded_when_opened(any_db_url: str) -> None:
    async def make_old(engine: Any) -> dict[str, str]:
        async with write_transaction(engine) as conn:
            orgs = await make_orgs(conn)
            for statement in _DOWNGRADE:
                await conn.exec_driver_sql(statement)
            # The previous release's free-text application and an integration granted to it.
            # Only the columns it had (the statements name no others).
            await conn.execute(
                sa.insert(models.table_of(models.Application)).values(
                    id="11111111-1111-4111-8111-111111111111",
                    created_date=utcnow(),
                    updated_date=utcnow(),
                    name="Legacy app",
                )
            )
            i = models.table_of(models.Integration)
            await conn.execute(
                sa.insert(i).values(
                    id="22222222-2222-4222-8222-222222222222",
                    created_date=utcnow(),
                    updated_date=utcnow(),
                    source_id=orgs.source,
                    application_id="11111111-1111-4111-8111-111111111111",
                    scope="ALL",
                    status="ACTIVE",
                    token_digest=digest("old-token"),
                )
            )
        async with engine.connect() as conn:
            assert "key_digest" not in await conn.run_sync(_columns, "applications")
            assert "ix_person_schools_school_id" in await conn.run_sync(
                _index_names, "person_schools"
            )
        return {"source": orgs.source}

    old = run_db(any_db_url, make_old)

    async def reopened(engine: Any) -> None:
        async with engine.connect() as conn:
            assert {"key_digest", "description"} <= await conn.run_sync(_columns, "applications")
            assert "token_ciphertext" in await conn.run_sync(_columns, "integrations")
            links = await conn.run_sync(_index_names, "person_schools")
            links |= await conn.run_sync(_index_names, "class_sessions")
            assert {
                "ix_person_schools_person",
                "ix_person_schools_school",
                "ix_class_sessions_class",
                "ix_class_sessions_session",
            } <= links
            assert not links & {"ix_person_schools_school_id", "ix_class_sessions_session_id"}
            enrollments = await conn.run_sync(_index_names, "enrollments")
            assert "ix_enrollments_section_id_id_set" in enrollments
            assert "ix_enrollments_section_id_id" not in enrollments
            indexes = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("applications"))
            assert {"name": "ix_applications_key_digest", "unique": True} in [
                {"name": ix["name"], "unique": bool(ix["unique"])} for ix in indexes
            ]
            (legacy,) = await records.load_applications(conn)
            assert (legacy.name, legacy.has_key, legacy.permissions) == ("Legacy app", False, ())
            (integration,) = await records.load_integrations(conn)
            assert integration.application == "Legacy app"
        async with write_transaction(engine) as conn:
            await applications.update_application(
                conn, legacy.id, applications.ApplicationChanges(permissions=["people:read"])
            )
            rotated = await applications.rotate_application_key(conn, legacy.id)
            created = await service.create_integration(
                conn,
                source_id=old["source"],
                scope=Scope.ALL,
                permissions=(),
                application_id=legacy.id,
                vault=Vault(generate_key(), None, any_db_url),
            )
        assert created.integration.permissions == ("people:read",)
        async with engine.connect() as conn:
            found = await applications.authenticate_application_key(conn, rotated.key)
        assert found is not None
        assert found.id == legacy.id

    run_db(any_db_url, reopened)
    run_db(any_db_url, reopened_again)


async def reopened_again(engine: Any) -> None:
    """A second opening finds nothing to add."""
    async with engine.connect() as conn:
        assert len(await records.load_applications(conn)) == 1
