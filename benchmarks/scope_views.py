"""SELECTED against ALL at district scale: what the stored scope views cost and save (a
benchmark, not a test).

For each `--people` size it loads the demo into a SQLite file (kept in `--cache`, so a second
run skips the load; the demo's integrations are created again for fresh tokens), then prints:

- the time and storage to materialize one integration (each SELECTED demo integration: its
  view is emptied and written again from the closure), and to refresh every integration of the
  source after an import-like change (1% of the students move school) and after none;
- median milliseconds per Graph API request through the whole ASGI stack, ALL and the three
  SELECTED integrations (school, course, class targets) interleaved in the same minute, and the
  ratio SELECTED/ALL: a flat page, a nested page, `totalCount`, a lookup, a deep page (keyset
  cursor 90% of the way through the integration's people), and 30 lookups of invisible ids
  against 30 of missing ids (SELECTED only; the ratio there is invisible/missing);
- the ratio of each SELECTED request at the largest size to the same at the smallest.

    .venv/bin/python benchmarks/scope_views.py [--people 10000 100000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import models
from gateway.access import views
from gateway.app import create_app
from gateway.db import engine_for, write_transaction
from gateway.demo import ensure_demo
from gateway.demo.results import DemoIntegration
from gateway.graph.pagination import encode_cursor
from gateway.settings import Settings

SELECTED = ("selected-schools", "selected-courses", "selected-classes")
FLAT = "{ people(first: 100) { nodes { id firstName lastName email } } }"
NESTED = (
    "{ classes(first: 50) { nodes { id name school { name } "
    "enrollments(first: 10) { nodes { id role person { displayName } } } } } }"
)
COUNT = "{ people(first: 1) { totalCount } }"
LOOKUP = "query($id: ID!) { person(id: $id) { id displayName } }"
DEEP = "query($after: String) { people(first: 100, after: $after) { nodes { id firstName } } }"
ALIASES = 30
MANY = "query(" + ", ".join(f"$i{n}: ID!" for n in range(ALIASES)) + ") { "
MANY += " ".join(f"a{n}: person(id: $i{n}) {{ id }}" for n in range(ALIASES)) + " }"

PEOPLE = models.table_of(models.Person)
PERSON_SCHOOLS = models.table_of(models.PersonSchool)
PEOPLE_VIEW = views.view_of(PEOPLE)
_integrations = models.table_of(models.Integration)

Call = Callable[[], Awaitable[httpx.Response]]


@dataclass
class Case:
    """One request of one integration."""

    query: str
    variables: dict[str, Any]


async def _ids(engine: AsyncEngine, integration: str | None, source_id: str) -> list[str]:
    async with engine.connect() as conn:
        if integration is None:
            stmt = sa.select(PEOPLE.c.id).where(PEOPLE.c.source_id == source_id)
        else:
            stmt = sa.select(PEOPLE_VIEW.c.id).where(PEOPLE_VIEW.c.integration_id == integration)
        return sorted((await conn.execute(stmt)).scalars())


async def materialize(engine: AsyncEngine, integration: DemoIntegration) -> tuple[float, int]:
    """Seconds to write one integration's view from scratch, and its rows."""
    async with write_transaction(engine) as conn:
        await views.forget(conn, integration.id)
    start = time.perf_counter()
    async with write_transaction(engine) as conn:
        done = await views.refresh(conn, integration.id)
    return time.perf_counter() - start, sum(done.added.values())


async def view_bytes(engine: AsyncEngine) -> tuple[int, int]:
    """Bytes of the view tables with their keys (SQLite's dbstat), and their rows."""
    dbstat = sa.table("dbstat", sa.column("name"), sa.column("pgsize"))
    names = [view.name for view in views.VIEWS.values()]
    async with engine.connect() as conn:
        size = (
            await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(dbstat.c.pgsize), 0)).where(
                    dbstat.c.name.in_(names)
                )
            )
        ).scalar_one()
        rows = 0
        for view in views.VIEWS.values():
            count = sa.select(sa.func.count()).select_from(view)
            rows += (await conn.execute(count)).scalar_one()
    return int(size), int(rows)


async def refresh_after_change(engine: AsyncEngine, source_id: str, share: float) -> float:
    """Seconds to refresh every view of the source after `share` of the students moved to
    another school (in the same transaction, as an import does); 0 moves none."""
    async with write_transaction(engine) as conn:
        start = time.perf_counter()
        if share:
            in_source = PERSON_SCHOOLS.c.source_id == source_id
            schools = sorted(
                (
                    await conn.execute(
                        sa.select(PERSON_SCHOOLS.c.school_id).where(in_source).distinct()
                    )
                ).scalars()
            )
            members = (  # people of one school, so that the move never meets a duplicate
                await conn.execute(
                    sa.select(PERSON_SCHOOLS.c.person_id, sa.func.min(PERSON_SCHOOLS.c.school_id))
                    .where(in_source)
                    .group_by(PERSON_SCHOOLS.c.person_id)
                    .having(sa.func.count() == 1)
                )
            ).all()
            rng = random.Random(7)
            moved = rng.sample(members, int(len(members) * share))
            for person_id, school_id in moved:
                other = schools[(schools.index(school_id) + 1) % len(schools)]
                await conn.execute(
                    PERSON_SCHOOLS.update()
                    .where(
                        PERSON_SCHOOLS.c.person_id == person_id,
                        PERSON_SCHOOLS.c.school_id == school_id,
                    )
                    .values(school_id=other)
                )
            start = time.perf_counter()
        await views.refresh_source(conn, source_id)
        return time.perf_counter() - start


async def timed(call: Call, rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls, after a warm-up call."""
    (await call()).raise_for_status()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = await call()
        out.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        assert "errors" not in response.json(), response.text
    return out


async def measure_size(people: int, cache: Path, rounds: int) -> dict[tuple[str, str], float]:
    """Print one size's table; return its medians by (integration, request)."""
    url = f"sqlite+aiosqlite:///{cache / f'demo-{people}.db'}"
    medians: dict[tuple[str, str], float] = {}
    async with engine_for(url) as engine:
        async with engine.connect() as conn:
            has_demo = (
                await conn.execute(sa.select(sa.func.count()).select_from(PEOPLE))
            ).scalar_one() == people
        if not has_demo:
            print(f"loading the demo with {people:,} people into {cache} …", flush=True)
            from gateway.demo import load_demo

            demo = await load_demo(engine, people=people)
        else:
            demo = await ensure_demo(engine, echo=False, new_tokens=True)  # it sends them
        by_name = {i.name: i for i in demo.integrations}

        print(f"\n## {people:,} people\n")
        print("| materialize | seconds | rows |")
        print("|---|---:|---:|")
        for name in SELECTED:
            seconds, rows = await materialize(engine, by_name[name])
            print(f"| {name} | {seconds:.2f} | {rows:,} |")
        size, rows = await view_bytes(engine)
        print(f"\nview storage: {size / 2**20:.1f} MiB for {rows:,} rows of 3 integrations")
        for share in (0.0, 0.01):
            seconds = await refresh_after_change(engine, demo.source_id, share)
            what = f"{share:.0%} of the students moved school" if share else "nothing changed"
            print(f"refresh of every integration of the source ({what}): {seconds:.2f} s")

        everyone = await _ids(engine, None, demo.source_id)
        cases: dict[str, dict[str, Case]] = {}
        rng = random.Random(1)
        for name in ("all", *SELECTED):
            integration = by_name[name]
            ids = everyone if name == "all" else await _ids(engine, integration.id, demo.source_id)
            deep = ids[int(len(ids) * 0.9)]
            cases[name] = {
                "flat page": Case(FLAT, {}),
                "nested page": Case(NESTED, {}),
                "totalCount": Case(COUNT, {}),
                "lookup": Case(LOOKUP, {"id": ids[len(ids) // 2]}),
                "deep page": Case(DEEP, {"after": encode_cursor("people", deep)}),
            }
            if name != "all":
                seen = set(ids)
                hidden = [
                    i for i in rng.sample(everyone, min(len(everyone), 5000)) if i not in seen
                ]
                missing = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(ALIASES)]
                cases[name]["30 invisible ids"] = Case(
                    MANY, {f"i{n}": hidden[n] for n in range(ALIASES)}
                )
                cases[name]["30 missing ids"] = Case(
                    MANY, {f"i{n}": missing[n] for n in range(ALIASES)}
                )

    settings = Settings(
        database_url=url,
        max_cost=10**9,
        rate_limit_per_second=10**6,
        rate_limit_burst=10**6,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as http,
    ):

        def call(name: str, case: Case) -> Call:
            headers = {"Authorization": f"Bearer {by_name[name].token}"}
            body = {"query": case.query, "variables": case.variables}
            return lambda: http.post("/graphql", json=body, headers=headers)

        requests = list(cases["selected-schools"])
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(3):  # interleaved, so that every integration sees the same machine load
            for request in requests:
                for name in cases:
                    if request in cases[name]:
                        key = (name, request)
                        samples.setdefault(key, []).extend(
                            await timed(call(name, cases[name][request]), rounds // 3 or 1)
                        )
        medians = {key: statistics.median(values) for key, values in samples.items()}

    print(f"\nmedian ms per request ({rounds} rounds each); in brackets SELECTED/ALL\n")
    print("| request | ALL | " + " | ".join(SELECTED) + " |")
    print("|---|---:|" + "---:|" * len(SELECTED))
    for request in requests:
        base = medians.get(("all", request))
        cells = [f"{base:.1f}" if base else "—"]
        for name in SELECTED:
            ms = medians[(name, request)]
            if base:
                cells.append(f"{ms:.1f} ({ms / base:.2f})")
            elif request == "30 invisible ids":
                cells.append(f"{ms:.1f} ({ms / medians[(name, '30 missing ids')]:.2f} x missing)")
            else:
                cells.append(f"{ms:.1f}")
        print(f"| {request} | " + " | ".join(cells) + " |")
    return medians


async def main(sizes: list[int], cache: Path, rounds: int) -> None:
    results = {people: await measure_size(people, cache, rounds) for people in sizes}
    if len(sizes) > 1:
        small, large = results[min(sizes)], results[max(sizes)]
        print(f"\nSELECTED at {max(sizes):,} people ÷ the same at {min(sizes):,}\n")
        print("| request | " + " | ".join(SELECTED) + " |")
        print("|---|" + "---:|" * len(SELECTED))
        for request in sorted(
            {r for _, r in large}, key=list(dict.fromkeys(r for _, r in large)).index
        ):
            cells = [
                f"{large[(n, request)] / small[(n, request)]:.2f}"
                for n in SELECTED
                if (n, request) in large
            ]
            print(f"| {request} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "gateway-bench-scope",
        help="folder for the demo databases (kept between runs)",
    )
    arguments = parser.parse_args()
    arguments.cache.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(arguments.people, arguments.cache, arguments.rounds))
