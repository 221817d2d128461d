"""Benchmark of the change feed's cost on imports: OneRoster import throughput with 0, 1 and 10
integrations on the source, and the storage each event takes.

    .venv/bin/python benchmarks/events_import.py --users 5000 --enrollments 50000

For each integration count it generates the deterministic folder of `import_oneroster.py`
into a fresh SQLite file (or a fresh PostgreSQL database with --postgres URL), imports it,
creates the integrations (half of scope ALL, half SELECTED on one school, every permission;
their first materialization is timed), then times three imports that each write the feeds in
their transaction: a bulk re-import in which 2% of the users changed their name, the same
folder again (a no-op), and a delta folder changing 1% of the users. It prints rows per
second, the events written, and the events table's size per event (SQLite: its pages in
`dbstat`; PostgreSQL: `pg_total_relation_size`, indexes included).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_oneroster import generate

from gateway import models
from gateway.access.grant import Scope
from gateway.access.permissions import ALL_SLUGS
from gateway.admin import service
from gateway.db import engine_for, write_transaction
from gateway.importers.oneroster import import_oneroster

EVENTS = models.table_of(models.Event)


def _rewrite_users(source: Path, target: Path, every: int, delta: bool) -> int:
    """Copy the folder, renaming every `every`-th user; a delta folder holds only those users.
    Returns how many users changed."""
    target.mkdir(parents=True, exist_ok=True)
    with (source / "users.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    changed = []
    for n, row in enumerate(rows):
        if n % every == 0:
            row["givenName"] = row["givenName"] + "-renamed"
            changed.append(row)
    kept = changed if delta else rows
    with (target / "users.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    if delta:
        with (source / "manifest.csv").open(newline="", encoding="utf-8") as handle:
            manifest = [row for row in csv.reader(handle) if not row[0].startswith("file.")]
        with (target / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([*manifest, ["file.users", "delta"]])
    else:
        for path in source.iterdir():
            if path.name != "users.csv":
                shutil.copy(path, target / path.name)
    return len(changed)


@asynccontextmanager
async def _database(postgres: str | None, scratch: Path, label: str) -> AsyncIterator[str]:
    if postgres is None:
        yield f"sqlite+aiosqlite:///{scratch / f'{label}.db'}"
        return
    name = f"events_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(sa.engine.make_url(postgres).set(database=name).render_as_string(False))
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _events(engine: AsyncEngine) -> tuple[int, int]:
    """How many events are stored, and the bytes the events table takes."""
    async with engine.connect() as conn:
        counted = await conn.execute(sa.select(sa.func.count()).select_from(EVENTS))
        count = int(counted.scalar_one())
        if conn.dialect.name == "sqlite":
            size = sa.text(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'events' "
                "OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'events')"
            )
        else:
            size = sa.text("SELECT pg_total_relation_size('events')")
        return count, int((await conn.execute(size)).scalar_one() or 0)


async def _timed_import(engine: AsyncEngine, folder: Path, rows: int, what: str) -> None:
    before, _ = await _events(engine)
    started, cpu = time.perf_counter(), time.process_time()
    await import_oneroster(engine, folder, source_name="Benchmark")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after, _ = await _events(engine)
    print(
        f"  {what}: {seconds:.2f} s = {rows / seconds:,.0f} rows/s ({cpu:.2f} CPU s, the "
        f"fairer measure on a busy machine), {after - before:,} events written"
    )


async def _one(count: int, folders: dict[str, Path], rows: int, delta_rows: int, url: str) -> None:
    async with engine_for(url) as engine:
        started = time.perf_counter()
        result = await import_oneroster(engine, folders["bulk"], source_name="Benchmark")
        print(f"{count} integrations: first import {time.perf_counter() - started:.2f} s")
        schools = models.table_of(models.School)
        async with engine.connect() as conn:
            query = sa.select(schools.c.id).where(schools.c.source_id == result.source_id)
            school = str((await conn.execute(query.order_by(schools.c.id))).scalars().first())
        started = time.perf_counter()
        for n in range(count):
            async with write_transaction(engine) as conn:
                await service.create_integration(
                    conn,
                    source_id=result.source_id,
                    scope=Scope.ALL if n % 2 == 0 else Scope.SELECTED,
                    permissions=sorted(ALL_SLUGS),
                    targets=[] if n % 2 == 0 else [school],
                )
        if count:
            events, _ = await _events(engine)
            print(
                f"  first materialization of {count}: {time.perf_counter() - started:.2f} s, "
                f"{events:,} events"
            )
        await _timed_import(engine, folders["changed"], rows, "bulk, 2% of users renamed")
        await _timed_import(engine, folders["changed"], rows, "bulk again (no-op)")
        await _timed_import(engine, folders["delta"], delta_rows, "delta, 1% of users renamed")
        events, size = await _events(engine)
        if events:
            print(
                f"  storage: {events:,} events, {size / 2**20:.1f} MiB, "
                f"{size / events:,.0f} bytes per event"
            )


def main() -> None:
    """Parse the arguments, generate, run each integration count, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--enrollments", type=int, default=50_000)
    parser.add_argument("--integrations", type=int, nargs="+", default=[0, 1, 10])
    parser.add_argument("--postgres", help="A PostgreSQL URL to create scratch databases on.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="events-bench-") as name:
        scratch = Path(name)
        bulk = scratch / "bulk"
        bulk.mkdir()
        rows = generate(bulk, args.users, args.enrollments, "1.2")
        renamed = _rewrite_users(bulk, scratch / "changed", 50, delta=False)
        delta = _rewrite_users(scratch / "changed", scratch / "delta", 100, delta=True)
        print(
            f"{args.users:,} users, {args.enrollments:,} enrollments, {rows:,} rows; "
            f"{renamed:,} users renamed in the bulk copy, {delta:,} in the delta"
        )
        folders = {"bulk": bulk, "changed": scratch / "changed", "delta": scratch / "delta"}

        async def run_all() -> None:
            for count in args.integrations:
                async with _database(args.postgres, scratch, f"n{count}") as url:
                    await _one(count, folders, rows, delta, url)

        asyncio.run(run_all())


if __name__ == "__main__":
    main()
