"""Importing a OneRoster 1.1 or 1.2 CSV folder, bulk or delta, into a source: all of it in one
transaction, so a folder that fails leaves the database exactly as it was.

Files are read in dependency order (orgs, academicSessions, courses, classes, roles and
demographics, users, agents, enrollments), each in batches, and every row's id is a UUID v5 of
(source, kind, sourcedId), so importing into the same source again maps onto the same rows.
Bulk files make the source's rows of their kind equal to the file; delta files upsert and
delete (`tobedeleted`). Rows whose content is unchanged are not written at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway import models
from gateway.admin import audit
from gateway.admin.service import CreatedSource, create_source, lock_source_name
from gateway.coltypes import utcnow
from gateway.db import refresh_statistics, write_transaction
from gateway.errors import ValidationFailed
from gateway.events import feed
from gateway.importers.agents import import_agents
from gateway.importers.apart import parse_apart
from gateway.importers.enrollments import import_enrollments
from gateway.importers.manifest import read_manifest
from gateway.importers.orgs import PLACEHOLDER, import_orgs
from gateway.importers.people import import_users, update_other_people
from gateway.importers.reading import Folder, Progress, Warnings
from gateway.importers.run import (
    CLASSES,
    COUNTED,
    COURSES,
    DISTRICTS,
    KINDS,
    PEOPLE,
    SCHOOLS,
    SESSIONS,
    Run,
    table_of,
)
from gateway.importers.schedule import import_classes, import_courses, import_sessions
from gateway.importers.staging import check_staged_users, stage_demographics, stage_roles
from gateway.importers.store import Store
from gateway.runtime import paced_for_import

BATCH_SIZE = 2000
SQLITE_CACHE_KIB = 32 * 1024
"""SQLite's page cache during an import: the people, classes and seen rows are written in
random id order, and with the default 2 MiB cache each insert reads its index pages from disk
again. Capped, because SQLite also sorts (the enrollments in id order, rebuilt indexes) in up to
this much memory: at 256 MiB the peak RSS was 370 MiB at 20,000 users and 200,000 enrollments
and 677 MiB at five times that; at 32 MiB it is about 210 MiB at both sizes, and no slower."""


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the source, the resulting counts, and the warnings."""

    source_id: str
    source_name: str
    created_source: bool
    version: str
    modes: dict[str, str]
    counts: dict[str, int]
    warnings: list[str]
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `--json` object of DESIGN §7."""
        return {
            "source": {"id": self.source_id, "name": self.source_name},
            "counts": dict(self.counts),
            "warnings": list(self.warnings),
        }


async def import_oneroster(
    engine: AsyncEngine,
    path: Path,
    *,
    source_name: str,
    provider_name: str = "OneRoster",
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    today: date | None = None,
) -> ImportResult:
    """Import the folder (or zip) at `path` into the source named `source_name`, creating the
    source when no source has that name; raise ValidationFailed (a OneRosterError naming file,
    line and column) and change nothing when the folder is bad."""
    folder = Folder(path)
    try:
        with paced_for_import():
            async with write_transaction(engine) as conn:
                sqlite = conn.dialect.name == "sqlite"
                if sqlite:
                    cache = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
                    await conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                try:
                    return await import_folder(
                        conn,
                        folder,
                        source_name=source_name,
                        provider_name=provider_name,
                        progress=progress,
                        batch_size=batch_size,
                        today=today,
                    )
                finally:
                    if sqlite and not conn.invalidated:  # (as when interrupted by Ctrl-C)
                        await conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")
    finally:
        folder.close()


async def import_folder(
    conn: AsyncConnection,
    folder: Folder,
    *,
    source_name: str,
    provider_name: str = "OneRoster",
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    today: date | None = None,
) -> ImportResult:
    """Import `folder` inside the caller's transaction (the caller commits or rolls back)."""
    warnings = Warnings()
    manifest = read_manifest(folder, warnings)
    source, created = await find_or_create_source(conn, source_name, provider_name)
    now = utcnow()
    store = Store(conn, source.id, now)
    await store.create_temp_tables()
    await store.note_empty(kind.table for kind in KINDS.values())
    run = Run(
        conn=conn,
        store=store,
        folder=folder,
        manifest=manifest,
        warnings=warnings,
        source_id=source.id,
        source_name=source.name,
        today=today or now.date(),
        batch_size=batch_size,
        progress=progress,
    )
    await import_orgs(run)
    apart = parse_apart(run)  # on another core while the files before it are imported
    try:
        await import_sessions(run)
        await import_courses(run)
        await import_classes(run)
        await stage_roles(run)
        await stage_demographics(run)
        await import_users(run)
        await check_staged_users(run)
        await update_other_people(run)
        await import_agents(run)
        await import_enrollments(run, apart)
    finally:
        if apart is not None:
            apart.close()
    await _finish(run)
    if store.inserted or store.updated or store.deleted or store.relinked:
        # Every SELECTED integration of the source sees the new rows in the same commit.
        await refresh_statistics(conn)
        changes = feed.Changes(store.inserted, store.updated, store.deleted, store.relinked)
        await feed.refresh_source(conn, source.id, changes)  # the stored views, then each feed
    counts = {name: await store.count(table) for name, table in COUNTED.items()}
    await store.drop_temp_tables()
    if created or store.inserted or store.updated or store.deleted:  # like admin changes
        await audit.record(
            conn,
            audit.CLI,
            "source.import",
            "source",
            source.id,
            before=None,
            after={
                "oneroster": manifest.version,
                "modes": dict(manifest.modes),
                "counts": counts,
                # table names are SQLAlchemy's `quoted_name`, a str subclass JSON refuses
                **{
                    change: {str(name): n for name, n in rows.items()}
                    for change, rows in (
                        ("inserted", store.inserted),
                        ("updated", store.updated),
                        ("deleted", store.deleted),
                    )
                },
                "warnings": len(warnings.as_list()),
            },
        )
    return ImportResult(
        source_id=source.id,
        source_name=source.name,
        created_source=created,
        version=manifest.version,
        modes=dict(manifest.modes),
        counts=counts,
        warnings=warnings.as_list(),
        inserted=dict(store.inserted),
        updated=dict(store.updated),
        deleted=dict(store.deleted),
    )


async def find_or_create_source(
    conn: AsyncConnection, name: str, provider_name: str
) -> tuple[CreatedSource, bool]:
    """The source named `name` (re-imports go into it), or a new OneRoster source; and whether
    it was created."""
    table = table_of(models.Source)
    providers = table_of(models.Provider)
    await lock_source_name(conn, name.strip())  # a concurrent first import waits, then finds it
    rows = (
        await conn.execute(
            sa.select(table.c.id, table.c.name, providers.c.application)
            .join(providers, providers.c.id == table.c.provider_id)
            .where(table.c.name == name.strip())
        )
    ).all()
    if len(rows) > 1:
        raise ValidationFailed(
            f"{len(rows)} sources are named {name.strip()!r} "
            f"({', '.join(str(row.id) for row in rows)}); an import goes into the one source of "
            "its name: import under another --source-name (`gateway sources list` shows them)"
        )
    if rows:
        if rows[0].application != "oneroster":
            # Its rows would be replaced by the folder's, under every grant on that source.
            raise ValidationFailed(
                f"source {rows[0].name!r} ({rows[0].id}) is fed by provider "
                f"{rows[0].application!r}, not by OneRoster imports; import into another "
                "source name (a new one is created)"
            )
        return CreatedSource(id=rows[0].id, name=rows[0].name), False
    source = await create_source(
        conn, name, provider_name=provider_name, provider_application="oneroster"
    )
    return source, True


async def _finish(run: Run) -> None:
    """Drop what the folder no longer has: a placeholder school that is not needed any more,
    any district but the one, and (bulk files) the rows of their kind that they did not list."""
    conn, source_id, district_id = run.conn, run.source_id, run.district_id
    placeholder = run.id("school", PLACEHOLDER)
    if run.placeholder_school is None and not run.bulk("school"):
        used = sa.select(CLASSES.c.id).where(CLASSES.c.school_id == placeholder).exists()
        await conn.execute(SCHOOLS.delete().where(SCHOOLS.c.id == placeholder, ~used))
    for table in (SCHOOLS, SESSIONS, COURSES, PEOPLE):
        if table.name in run.store.empty:
            continue  # only this import's rows, each written with the district
        await conn.execute(
            table.update()
            .where(table.c.source_id == source_id, table.c.district_id != district_id)
            .values(district_id=district_id, updated_date=run.store.now)
        )
    await conn.execute(
        DISTRICTS.delete().where(DISTRICTS.c.source_id == source_id, DISTRICTS.c.id != district_id)
    )
    for kind in ("agent", "enrollment", "class", "course", "session", "person", "school"):
        if run.bulk(kind) and kind not in run.pruned:
            await run.store.delete_unseen(KINDS[kind].table, kind)
